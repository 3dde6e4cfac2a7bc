"""Wire protocol v1: the frame codec and the control-message codec, sans I/O.

Nothing here touches a socket. ``docs/PROTOCOL.md`` is the prose version of
this module, for people writing a client in another language.

Data messages (ZeroMQ PUB multipart ``[topic, header, payload]``; over a
WebSocket one binary message ``uint32-LE header length | header | payload``):

    topic    ``frame/<stream>`` (topology and end messages use the same topic,
             so one subscription gets all three)
    header   a msgpack map; ``type`` is ``"frame"``, ``"topology"`` or ``"end"``
    payload  raw little-endian bytes described by the header

Frame payload encodings (vertices ``float32 [N, 3]`` in metres):

    f32  the vertices as float32                      exact
    f16  the vertices as IEEE half floats             |error| <= |v| * 2**-11 per coordinate
    q16  int16 offsets from the topology's template,  |error| <= scale / 2 per coordinate,
         ``v = template + q * scale``, header ``scale`` = max |v - template| / 32767

Control messages are maps with a ``cmd`` key (msgpack over ZeroMQ ROUTER,
JSON text over WebSocket); replies are ``{"ok": true, ...}`` or
``{"ok": false, "error": {"code": CODE, "message": TEXT}}``, with the
request's ``id`` echoed when it had one.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import msgpack
import numpy as np

from models.face.expression import ARKIT_NAMES

VERSION = 1
ENCODINGS = ("f32", "f16", "q16")
DEFAULT_ENCODING = "q16"
#: largest q16 code; offsets are scaled so the largest lands on it
Q16_MAX = 32767
#: relative rounding error of a half float (11 significant bits)
F16_RELATIVE = 2.0 ** -11
#: relative rounding error of float32 arithmetic (one unit in the last place, twice)
F32_RELATIVE = 2.0 ** -23
#: smallest q16 scale (metres per step), so a frame equal to the template still decodes
Q16_MIN_SCALE = 1e-9
#: control messages larger than this get a ``too_large`` error (bytes)
MAX_CONTROL_BYTES = 8 * 1024 * 1024
#: WebSocket data messages start with the header length as this struct
WS_PREFIX = struct.Struct("<I")

TOPIC_PREFIX = "frame/"
#: what a stream id may look like (the runtime's own are ``s`` + 6 digits)
STREAM_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
#: the order of a frame's ``bs`` weights: ARKit's 52 blendshape names
BLENDSHAPE_NAMES: tuple[str, ...] = ARKIT_NAMES

# error codes of control replies
BAD_REQUEST = "bad_request"        #: not a map / not msgpack or JSON / no "cmd"
UNKNOWN_COMMAND = "unknown_command"
BAD_ARGUMENT = "bad_argument"      #: a field of the wrong type, range or value
NOT_FOUND = "not_found"            #: no such stream / expression label
UNAUTHORIZED = "unauthorized"      #: missing or wrong token
TOO_LARGE = "too_large"            #: message over MAX_CONTROL_BYTES
UNAVAILABLE = "unavailable"        #: the model a command needs did not load
LIMIT = "limit"                    #: too many streams
INTERNAL = "internal"              #: a bug: the message says what failed; the runtime keeps going
ERROR_CODES = (BAD_REQUEST, UNKNOWN_COMMAND, BAD_ARGUMENT, NOT_FOUND, UNAUTHORIZED, TOO_LARGE,
               UNAVAILABLE, LIMIT, INTERNAL)


class ProtocolError(Exception):
    """A message that breaks the protocol; ``code`` is one of ``ERROR_CODES``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class VersionMismatch(ProtocolError):
    """A data message of another protocol version (``version`` is what it said)."""

    def __init__(self, version) -> None:
        super().__init__(BAD_REQUEST, f"facecast protocol version {version!r}; this client speaks v{VERSION}")
        self.version = version


# ------------------------------------------------------------------ encodings
def encode_vertices(vertices: np.ndarray, enc: str, template: np.ndarray | None = None) -> tuple[bytes, dict]:
    """``float [N, 3]`` metres -> (payload bytes, extra header fields).

    ``template`` (``float32 [N, 3]``) is needed for ``q16``.
    """
    v = np.asarray(vertices, dtype=np.float32)
    if enc == "f32":
        return v.astype("<f4", copy=False).tobytes(), {}
    if enc == "f16":
        return v.astype("<f2").tobytes(), {}
    if enc == "q16":
        if template is None:
            raise ValueError("q16 needs the topology's template")
        offset = v - template
        scale = max(float(np.abs(offset).max(initial=0.0)) / Q16_MAX, Q16_MIN_SCALE)
        q = np.rint(offset / np.float32(scale)).astype("<i2")
        return q.tobytes(), {"scale": scale}
    raise ProtocolError(BAD_ARGUMENT, f"unknown encoding {enc!r}; use one of {', '.join(ENCODINGS)}")


def decode_vertices(payload: bytes | memoryview, header: dict, template: np.ndarray | None = None) -> np.ndarray:
    """A frame's payload -> ``float32 [N, 3]`` (``template`` for ``q16``)."""
    enc, n = header.get("enc"), int(header.get("n", -1))
    dtype = {"f32": "<f4", "f16": "<f2", "q16": "<i2"}.get(enc)
    if dtype is None:
        raise ProtocolError(BAD_REQUEST, f"unknown encoding {enc!r}")
    raw = np.frombuffer(payload, dtype=dtype)
    if raw.size != n * 3:
        raise ProtocolError(BAD_REQUEST, f"a {enc} frame of {n} vertices needs {n * 3 * raw.itemsize} "
                                         f"payload bytes, got {len(payload)}")
    raw = raw.reshape(n, 3)
    if enc == "q16":
        if template is None:
            raise ProtocolError(BAD_REQUEST, "a q16 frame arrived before its topology (no template)")
        return template + raw.astype(np.float32) * np.float32(header["scale"])
    return raw.astype(np.float32)


def error_bound(vertices: np.ndarray, enc: str, template: np.ndarray | None = None) -> np.ndarray:
    """The documented per-coordinate bound on ``|decode(encode(v)) - v|`` (metres)."""
    v = np.asarray(vertices, dtype=np.float32)
    if enc == "f32":
        return np.zeros_like(v)
    if enc == "f16":
        return np.abs(v) * F16_RELATIVE + 2.0 ** -25    # plus half the smallest subnormal step
    scale = max(float(np.abs(v - template).max(initial=0.0)) / Q16_MAX, Q16_MIN_SCALE)
    # plus the float32 rounding of the decoder's ``template + q * scale``
    return scale / 2 + (np.abs(v) + np.abs(template)) * F32_RELATIVE


# ------------------------------------------------------------------ messages
@dataclass(frozen=True)
class Message:
    """One data message: its stream, header map and payload."""

    stream: str
    header: dict
    payload: bytes = b""

    @property
    def topic(self) -> bytes:
        return topic(self.stream)

    @cached_property
    def header_bytes(self) -> bytes:
        """The packed header: packed once, shared by every transport."""
        return msgpack.packb(self.header, use_bin_type=True)

    def zmq_parts(self) -> list:
        """``[topic, header, payload]`` for a ZeroMQ PUB socket."""
        return [self.topic, self.header_bytes, self.payload]

    def ws_bytes(self) -> bytes:
        """One WebSocket binary message: header length, header, payload."""
        h = self.header_bytes
        return WS_PREFIX.pack(len(h)) + h + self.payload


def topic(stream: str) -> bytes:
    return (TOPIC_PREFIX + stream).encode()


def frame_message(stream: str, seq: int, t: float, vertices: np.ndarray, enc: str, topology_id: str,
                  template: np.ndarray | None, wall_ns: int, tick_ns: int, fps: float,
                  landmarks: np.ndarray | None = None, weights: np.ndarray | None = None,
                  label: str | None = None, identity: str | None = None, meta: dict | None = None) -> Message:
    """A ``frame`` message (see the module docstring for the fields)."""
    payload, extra = encode_vertices(vertices, enc, template)
    header: dict[str, Any] = {"v": VERSION, "type": "frame", "stream": stream, "seq": int(seq), "t": float(t),
                              "wall": int(wall_ns), "tick": int(tick_ns), "enc": enc, "n": len(vertices),
                              "topology": topology_id, "fps": float(fps), **extra}
    if landmarks is not None:
        header["lm"] = np.asarray(landmarks, dtype="<f4").tobytes()
    if weights is not None:
        header["bs"] = np.asarray(weights, dtype="<f4").tobytes()
    if label is not None:
        header["label"] = label
    if identity is not None:
        header["identity"] = identity
    if meta is not None:
        header["track"] = meta
    return Message(stream, header, payload)


#: the sections of a topology payload, in order
TOPOLOGY_SECTIONS = ("faces", "template", "landmark_faces", "landmark_bary")


def topology_message(stream: str, topology_id: str, name: str, faces: np.ndarray, template: np.ndarray,
                     landmark_faces: np.ndarray, landmark_bary: np.ndarray) -> Message:
    """A ``topology`` message: faces ``int32 [F, 3]``, template ``float32 [N, 3]``,
    the 68 landmarks as ``int32 [68]`` face indices and ``float32 [68, 3]``
    barycentric weights, concatenated in that order."""
    parts = [np.asarray(faces, "<i4"), np.asarray(template, "<f4"), np.asarray(landmark_faces, "<i4"),
             np.asarray(landmark_bary, "<f4")]
    sections = [[name_, "i32" if p.dtype.kind == "i" else "f32", list(p.shape)]
                for name_, p in zip(TOPOLOGY_SECTIONS, parts)]
    header = {"v": VERSION, "type": "topology", "stream": stream, "topology": topology_id, "name": name,
              "n": int(template.shape[0]), "f": int(faces.shape[0]), "sections": sections}
    return Message(stream, header, b"".join(p.tobytes() for p in parts))


def end_message(stream: str, reason: str, seq: int) -> Message:
    """An ``end`` message: the stream stopped (its clip ended, or it was closed)."""
    return Message(stream, {"v": VERSION, "type": "end", "stream": stream, "reason": reason, "seq": int(seq)})


@dataclass(frozen=True)
class TopologyData:
    """A decoded topology message."""

    id: str
    name: str
    faces: np.ndarray            #: int32 [F, 3]
    template: np.ndarray         #: float32 [N, 3]
    landmark_faces: np.ndarray   #: int32 [68]
    landmark_bary: np.ndarray    #: float32 [68, 3]


def decode_topology(header: dict, payload: bytes | memoryview) -> TopologyData:
    out, offset = {}, 0
    buf = memoryview(payload).cast("B")
    try:
        for name, dtype, shape in header["sections"]:
            count = int(np.prod(shape))
            dt = np.dtype("<i4" if dtype == "i32" else "<f4")
            out[name] = np.frombuffer(buf[offset:offset + count * 4], dtype=dt).reshape(shape)
            offset += count * 4
        return TopologyData(header["topology"], header.get("name", ""), out["faces"], out["template"],
                            out["landmark_faces"], out["landmark_bary"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ProtocolError(BAD_REQUEST, f"malformed topology message ({exc})") from exc


def parse_data(parts: list[bytes] | bytes) -> tuple[dict, memoryview]:
    """A received data message (ZeroMQ parts, or one WebSocket binary message)
    -> (header, payload). Checks the protocol version."""
    if isinstance(parts, (bytes, bytearray, memoryview)):
        raw = memoryview(parts)
        if len(raw) < WS_PREFIX.size:
            raise ProtocolError(BAD_REQUEST, "data message shorter than its length prefix")
        (hlen,) = WS_PREFIX.unpack_from(raw)
        head, payload = raw[WS_PREFIX.size:WS_PREFIX.size + hlen], raw[WS_PREFIX.size + hlen:]
    else:
        if len(parts) != 3:
            raise ProtocolError(BAD_REQUEST, f"a data message has 3 parts, got {len(parts)}")
        head, payload = parts[1], memoryview(parts[2])
    try:
        header = msgpack.unpackb(head, raw=False)
    except Exception as exc:
        raise ProtocolError(BAD_REQUEST, f"data header is not msgpack ({exc})") from exc
    if not isinstance(header, dict):
        raise ProtocolError(BAD_REQUEST, "data header is not a map")
    if header.get("v") != VERSION:
        raise VersionMismatch(header.get("v"))
    return header, payload


def header_array(header: dict, key: str, width: int) -> np.ndarray | None:
    """An optional float32 array field of a frame header (``lm`` -> [68, 3], ``bs`` -> [52])."""
    raw = header.get(key)
    if raw is None:
        return None
    a = np.frombuffer(raw, dtype="<f4")
    return a.reshape(-1, width) if width > 1 else a


# ------------------------------------------------------------------ control
def parse_command(raw: bytes | str, codec: str) -> dict:
    """Control bytes -> a command map. ``codec`` is ``"msgpack"`` or ``"json"``.

    Raises:
        ProtocolError: too large, undecodable, not a map, or no string ``cmd``.
    """
    if len(raw) > MAX_CONTROL_BYTES:
        raise ProtocolError(TOO_LARGE, f"control message of {len(raw)} bytes; the limit is {MAX_CONTROL_BYTES}")
    try:
        msg = msgpack.unpackb(raw, raw=False, strict_map_key=False) if codec == "msgpack" else json.loads(raw)
    except Exception as exc:
        raise ProtocolError(BAD_REQUEST, f"control message is not {codec} ({type(exc).__name__}: "
                                         f"{str(exc)[:200]})") from exc
    if not isinstance(msg, dict):
        raise ProtocolError(BAD_REQUEST, f"a control message is a map with a 'cmd' key, got {type(msg).__name__}")
    if not isinstance(msg.get("cmd"), str):
        raise ProtocolError(BAD_REQUEST, "control message has no string 'cmd'")
    return msg


def ok(request: dict | None = None, **fields) -> dict:
    reply = {"ok": True, **fields}
    return _echo(reply, request)


def error(code: str, message: str, request: dict | None = None) -> dict:
    return _echo({"ok": False, "error": {"code": code, "message": message}}, request)


def _echo(reply: dict, request: dict | None) -> dict:
    if isinstance(request, dict) and isinstance(request.get("id"), (str, int)) and not isinstance(
            request.get("id"), bool):
        reply["id"] = request["id"]
    return reply


def pack_reply(reply: dict, codec: str) -> bytes | str:
    if codec == "msgpack":
        return msgpack.packb(reply, use_bin_type=True, default=_plain)
    return json.dumps(reply, default=_plain)


def _plain(obj):
    """numpy scalars and arrays as Python numbers and lists (replies carry figures)."""
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} cannot go into a reply")
