// The facecast wire protocol, version 1 (docs/PROTOCOL.md): data messages
// over WebSocket, topologies, and the f32 / f16 / q16 vertex encodings.
//
// Typed arrays use the platform's byte order; every browser with WebGL2 runs
// little-endian, which is the protocol's order.

import { decode } from "./msgpack.js";

export const VERSION = 1;

// A message of another protocol version: the page must stop, not guess.
export class VersionError extends Error {
  constructor(version) {
    super(`facecast protocol version ${version}; this page speaks v${VERSION}`);
    this.name = "VersionError";
  }
}

// A binary message: uint32-LE header length H | msgpack header | payload.
// The payload is a view into `buffer`, generally not 4-byte aligned.
export function parseMessage(buffer) {
  const bytes = new Uint8Array(buffer);
  const length = new DataView(buffer).getUint32(0, true);
  if (4 + length > bytes.length) throw new Error(`data message: header of ${length} B in a ${bytes.length} B message`);
  const header = decode(bytes.subarray(4, 4 + length));
  if (header === null || typeof header !== "object") throw new Error("data message: the header is not a map");
  if (header.v !== VERSION) throw new VersionError(header.v);
  return { header, payload: bytes.subarray(4 + length) };
}

// A topology message's payload: its sections, walked in order, each copied so
// that it is aligned. Returns {id, n, f, faces: Uint32Array [F*3], template: Float32Array [N*3]}.
export function decodeTopology(header, payload) {
  const sections = {};
  let offset = 0;
  for (const [name, dtype, shape] of header.sections) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    const copy = payload.slice(offset, offset + bytes).buffer;
    if (copy.byteLength !== bytes) throw new Error(`topology ${header.topology}: section ${name} is truncated`);
    sections[name] = dtype === "i32" ? new Int32Array(copy) : new Float32Array(copy);
    offset += bytes;
  }
  const { faces, template } = sections;
  if (!faces || !template || faces.length !== 3 * header.f || template.length !== 3 * header.n) {
    throw new Error(`topology ${header.topology}: faces [${header.f}, 3] and template [${header.n}, 3] expected`);
  }
  // indices are non-negative, so the int32 bits read as uint32 (WebGL's index type)
  return { id: header.topology, n: header.n, f: header.f, faces: new Uint32Array(faces.buffer), template };
}

// binary16 -> float32 for every bit pattern, built on first use
let halfTable = null;

function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;              // zero and subnormals
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function halves() {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

// Decodes frame payloads into float32 vertices, reusing one aligned scratch buffer.
export class VertexDecoder {
  constructor() {
    this.scratch = new ArrayBuffer(0);
  }

  // The payload copied to the start of the scratch buffer (aligned).
  aligned(payload) {
    if (this.scratch.byteLength < payload.length) this.scratch = new ArrayBuffer(payload.length);
    new Uint8Array(this.scratch, 0, payload.length).set(payload);
    return this.scratch;
  }

  // Writes the frame's N*3 coordinates (metres) into `out` (Float32Array, N*3).
  decode(header, payload, topology, out) {
    const count = 3 * header.n;
    const size = header.enc === "f32" ? 4 : 2;
    if (payload.length !== count * size || out.length !== count) {
      throw new Error(`frame ${header.stream}/${header.seq}: ${payload.length} B for ${header.n} vertices in ${header.enc}`);
    }
    const buffer = this.aligned(payload);
    if (header.enc === "f32") {
      out.set(new Float32Array(buffer, 0, count));
    } else if (header.enc === "f16") {
      const table = halves();
      const h = new Uint16Array(buffer, 0, count);
      for (let i = 0; i < count; i++) out[i] = table[h[i]];
    } else if (header.enc === "q16") {
      const q = new Int16Array(buffer, 0, count);
      const scale = Math.fround(header.scale);
      const t = topology.template;
      for (let i = 0; i < count; i++) out[i] = t[i] + q[i] * scale;   // v = template + q * scale
    } else {
      throw new Error(`frame ${header.stream}: unknown encoding ${header.enc}`);
    }
  }
}
