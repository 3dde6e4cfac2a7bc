// A small msgpack decoder: what facecast's headers use (maps, arrays,
// strings, bin, ints, floats, nil, booleans). Ext types are refused.
//
// bin values come back as Uint8Array views into the input (no copy).
// 64-bit integers come back as Numbers: exact up to 2^53, and within a few
// hundred units beyond (a `wall` time in ns keeps sub-microsecond precision).

const utf8 = new TextDecoder();

export function decode(bytes) {
  const reader = new Reader(bytes);
  const value = reader.value();
  if (reader.pos !== bytes.length) throw new Error(`msgpack: ${bytes.length - reader.pos} bytes after the value`);
  return value;
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  // Advance over n bytes; returns where they start.
  take(n) {
    const at = this.pos;
    if (at + n > this.bytes.length) throw new Error("msgpack: truncated");
    this.pos += n;
    return at;
  }

  u8() { return this.view.getUint8(this.take(1)); }
  u16() { return this.view.getUint16(this.take(2)); }
  u32() { return this.view.getUint32(this.take(4)); }
  u64() { const at = this.take(8); return this.view.getUint32(at) * 2 ** 32 + this.view.getUint32(at + 4); }
  i64() { const at = this.take(8); return this.view.getInt32(at) * 2 ** 32 + this.view.getUint32(at + 4); }

  raw(n) { const at = this.take(n); return this.bytes.subarray(at, at + n); }
  str(n) { return utf8.decode(this.raw(n)); }

  array(n) {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.value();
    return out;
  }

  map(n) {
    const out = {};
    for (let i = 0; i < n; i++) {
      const key = this.value();
      out[key] = this.value();
    }
    return out;
  }

  value() {
    const b = this.u8();
    if (b <= 0x7f) return b;                          // positive fixint
    if (b >= 0xe0) return b - 0x100;                  // negative fixint
    if (b >= 0x80 && b <= 0x8f) return this.map(b & 0x0f);
    if (b >= 0x90 && b <= 0x9f) return this.array(b & 0x0f);
    if (b >= 0xa0 && b <= 0xbf) return this.str(b & 0x1f);
    const v = this.view;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.raw(this.u8());
      case 0xc5: return this.raw(this.u16());
      case 0xc6: return this.raw(this.u32());
      case 0xca: return v.getFloat32(this.take(4));
      case 0xcb: return v.getFloat64(this.take(8));
      case 0xcc: return this.u8();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: return this.u64();
      case 0xd0: return v.getInt8(this.take(1));
      case 0xd1: return v.getInt16(this.take(2));
      case 0xd2: return v.getInt32(this.take(4));
      case 0xd3: return this.i64();
      case 0xd9: return this.str(this.u8());
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      case 0xdc: return this.array(this.u16());
      case 0xdd: return this.array(this.u32());
      case 0xde: return this.map(this.u16());
      case 0xdf: return this.map(this.u32());
      default: throw new Error(`msgpack: unsupported type byte 0x${b.toString(16)}`);
    }
  }
}
