"""The wire codec: every encoding round-trips within its documented bound;
messages parse back; malformed control bytes get typed errors."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models.face import synthface_template
from runtime import protocol as P

TEMPLATE = synthface_template()


def _face_like(offsets: np.ndarray) -> np.ndarray:
    return (TEMPLATE.vertices[: len(offsets)] + offsets).astype(np.float32)


offsets = arrays(np.float32, st.tuples(st.integers(1, 300), st.just(3)),
                 elements=st.floats(-0.0625, 0.0625, width=32))


@settings(max_examples=60, deadline=None)
@given(offsets)
@pytest.mark.parametrize("enc", P.ENCODINGS)
def test_encodings_round_trip_within_their_bound(enc, offsets):
    v = _face_like(offsets)
    template = TEMPLATE.vertices[: len(v)]
    payload, extra = P.encode_vertices(v, enc, template)
    back = P.decode_vertices(payload, {"enc": enc, "n": len(v), **extra}, template)
    err = np.abs(back - v)
    assert (err <= P.error_bound(v, enc, template)).all(), float(err.max())


def test_q16_is_finer_than_f16_on_a_face():
    v = TEMPLATE.vertices + np.float32(0.01)
    errs = {}
    for enc in ("f16", "q16"):
        payload, extra = P.encode_vertices(v, enc, TEMPLATE.vertices)
        errs[enc] = np.abs(P.decode_vertices(payload, {"enc": enc, "n": len(v), **extra}, TEMPLATE.vertices) - v).max()
    assert errs["q16"] < errs["f16"] / 10


def test_a_frame_equal_to_the_template_decodes_in_q16():
    payload, extra = P.encode_vertices(TEMPLATE.vertices, "q16", TEMPLATE.vertices)
    back = P.decode_vertices(payload, {"enc": "q16", "n": TEMPLATE.n_vertices, **extra}, TEMPLATE.vertices)
    np.testing.assert_array_equal(back, TEMPLATE.vertices)


def test_frame_message_parses_back_from_zmq_parts_and_websocket_bytes():
    lm = TEMPLATE.landmark_points().astype(np.float32)
    weights = np.linspace(0, 1, 52, dtype=np.float32)
    m = P.frame_message("s000001", 7, 0.25, TEMPLATE.vertices, "f32", TEMPLATE.topology_id, TEMPLATE.vertices,
                        wall_ns=123, tick_ns=100, fps=60.0, landmarks=lm, weights=weights, label="high_smile")
    for raw in (m.zmq_parts(), m.ws_bytes()):
        header, payload = P.parse_data(raw)
        assert header["type"] == "frame" and header["seq"] == 7 and header["stream"] == "s000001"
        assert header["v"] == P.VERSION and header["label"] == "high_smile"
        np.testing.assert_array_equal(P.decode_vertices(payload, header), TEMPLATE.vertices)
        np.testing.assert_array_equal(P.header_array(header, "lm", 3), lm)
        np.testing.assert_array_equal(P.header_array(header, "bs", 1), weights)
    assert m.zmq_parts()[0] == b"frame/s000001"


def test_topology_message_carries_faces_template_and_landmarks():
    lmk = TEMPLATE.landmarks
    m = P.topology_message("s1", TEMPLATE.topology_id, TEMPLATE.name, TEMPLATE.faces, TEMPLATE.vertices,
                           lmk.face_idx, lmk.bary)
    header, payload = P.parse_data(m.ws_bytes())
    topo = P.decode_topology(header, payload)
    np.testing.assert_array_equal(topo.faces, TEMPLATE.faces)
    np.testing.assert_array_equal(topo.template, TEMPLATE.vertices)
    corners = topo.template[topo.faces[topo.landmark_faces]]
    np.testing.assert_allclose(np.einsum("lkc,lk->lc", corners, topo.landmark_bary),
                               TEMPLATE.landmark_points(), atol=1e-6)


def test_another_protocol_version_is_refused_clearly():
    m = P.end_message("s1", "closed", 3)
    header = dict(m.header, v=2)
    parts = [m.topic, msgpack.packb(header), b""]
    with pytest.raises(P.ProtocolError, match="protocol version 2"):
        P.parse_data(parts)


@pytest.mark.parametrize("raw,codec,code", [
    (b"\xc1", "msgpack", P.BAD_REQUEST),                   # never-used msgpack byte
    (msgpack.packb([1, 2]), "msgpack", P.BAD_REQUEST),
    (msgpack.packb({"cmd": 3}), "msgpack", P.BAD_REQUEST),
    ("{not json", "json", P.BAD_REQUEST),
    (json.dumps({"no": "cmd"}), "json", P.BAD_REQUEST),
    (b"x" * (P.MAX_CONTROL_BYTES + 1), "msgpack", P.TOO_LARGE),
])
def test_malformed_control_messages_get_typed_errors(raw, codec, code):
    with pytest.raises(P.ProtocolError) as info:
        P.parse_command(raw, codec)
    assert info.value.code == code


def test_replies_echo_the_request_id_and_pack_numpy_figures():
    reply = P.ok({"cmd": "ping", "id": 9}, figure=np.float32(1.5), counts=np.arange(3))
    assert reply["id"] == 9
    assert msgpack.unpackb(P.pack_reply(reply, "msgpack"))["counts"] == [0, 1, 2]
    assert json.loads(P.pack_reply(reply, "json"))["figure"] == 1.5
    assert P.error(P.NOT_FOUND, "gone", {"id": "a"}) == {"ok": False, "id": "a",
                                                         "error": {"code": P.NOT_FOUND, "message": "gone"}}
