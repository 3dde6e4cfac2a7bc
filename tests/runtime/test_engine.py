"""The engine, sans I/O: fed control maps and a fake clock, asserted on the
messages it returns (no sockets, no sleeps)."""

from __future__ import annotations

import base64

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.face import synthface_template
from runtime import protocol as P
from runtime.engine import Engine, EngineConfig
from runtime.registry import LOADERS, Registry

PERIOD = 1 / 60


@pytest.fixture(scope="module")
def registry():
    return Registry.discover(synthface_template())


@pytest.fixture
def engine(registry):
    return Engine(registry, EngineConfig(), epoch=0.0, wall=lambda: 0)


def run(engine: Engine, seconds: float, start: float = 0.0) -> tuple[list[P.Message], float]:
    """Tick at every deadline for ``seconds`` of fake time; returns the messages and the time reached."""
    out, now = [], start
    while True:
        d = engine.next_deadline()
        if d is None or d > start + seconds:
            return out, start + seconds
        now = max(now, d)
        out += engine.tick(now)


def frames(messages, stream=None):
    return [m for m in messages if m.header["type"] == "frame" and (stream is None or m.stream == stream)]


def vertices(engine: Engine, m: P.Message) -> np.ndarray:
    return P.decode_vertices(m.payload, m.header, engine.template)


def test_open_list_close(engine):
    reply = engine.handle({"cmd": "open", "kind": "generate", "label": "high_smile", "id": 4}, 0.0)
    assert reply["ok"] and reply["id"] == 4 and reply["fps"] == 60.0 and reply["n"] == 5229
    sid = reply["stream"]
    listed = engine.handle({"cmd": "list"}, 0.0)["streams"]
    assert [s["stream"] for s in listed] == [sid] and listed[0]["kind"] == "generate"
    closed = engine.handle({"cmd": "close", "stream": sid}, 0.1)
    assert closed["ok"] and not engine.sessions
    out = engine.tick(0.2)
    assert [m.header["type"] for m in out] == ["topology", "end"]
    assert engine.handle({"cmd": "close", "stream": sid}, 0.3)["error"]["code"] == P.NOT_FOUND


def test_topology_reaches_subscribers_before_the_first_frame(engine):
    sid = engine.open("generate", 0.0, label="eyebrow", loop=True)
    out, _ = run(engine, 0.1)
    kinds = [m.header["type"] for m in out if m.stream == sid]
    assert kinds[0] == "topology" and set(kinds[1:]) == {"frame"}
    assert out[0].header["topology"] == frames(out)[0].header["topology"] == engine.registry.template.topology_id


def test_every_decode_of_a_tick_is_one_batched_forward(engine, monkeypatch):
    calls = []
    decoder = engine.decoder
    real = decoder.decode

    def spy(neutral, nl, target):
        calls.append(len(neutral))
        return real(neutral, nl, target)

    monkeypatch.setattr(decoder, "decode", spy)
    ids = [engine.open("generate", 0.0, label=lab, loop=True, mode="live", identity=i)
           for i, lab in enumerate(["high_smile", "eyebrow", "mouth_open"])]
    engine.tick(0.0)                                             # media time 0: the neutral, nothing to decode
    for k in range(1, 6):
        calls.clear()
        out = engine.tick(k * PERIOD)
        assert len(frames(out)) == 3
        assert len(calls) == 1 and calls[0] >= 3        # three live rows (plus any bake rows) in ONE forward
    assert all(engine.sessions[s].frames == 6 for s in ids)


def test_streams_of_several_rates_share_one_clock(engine):
    fast = engine.open("generate", 0.0, label="high_smile", loop=True, fps=60)
    slow = engine.open("generate", 0.0, label="eyebrow", loop=True, fps=30)
    out, _ = run(engine, 1.0 - 1e-6)
    assert len(frames(out, fast)) == 60 and len(frames(out, slow)) == 30
    assert engine.stats(1.0)["dropped"] == 0
    slow_ticks = {m.header["seq"] for m in frames(out, slow)}
    assert slow_ticks == set(range(30))


def test_a_generated_clip_rises_holds_returns_and_ends(engine):
    sid = engine.open("generate", 0.0, label="mouth_open", duration=1.0)
    out, _ = run(engine, 3.0)
    fr = frames(out, sid)
    playing = [m for m in fr if m.header["t"] > 0 or m.header["seq"] > 0]
    first_playing = next(i for i, m in enumerate(fr) if m.header["t"] > 0) - 1
    neutral = vertices(engine, fr[0])
    motion = [np.abs(vertices(engine, m) - neutral).max() for m in fr[first_playing:]]
    apex = int(np.argmax(motion))
    assert motion[0] < 1e-5 and motion[apex] > 0.003              # neutral start, millimetres of motion
    assert motion[-1] < motion[apex] / 10                         # back towards neutral at the end
    assert out[-1].header["type"] == "end" and out[-1].header["reason"] == "finished"
    assert sid not in engine.sessions and playing


def test_baked_frames_match_live_decoding(engine):
    args = dict(label="high_smile", loop=True, identity=3, seed=11)
    baked = engine.open("generate", 0.0, **args)
    live = engine.open("generate", 0.0, mode="live", **args)
    out, _ = run(engine, 1.5)
    b = {m.header["t"]: m for m in frames(out, baked) if m.header["t"] > 0}
    lv = {m.header["t"]: m for m in frames(out, live)}
    common = sorted(set(b) & set(lv))
    assert len(common) > 20
    err = max(np.abs(vertices(engine, b[t]) - vertices(engine, lv[t])).max() for t in common)
    assert err < 2e-4                                            # 0.2 mm: interpolating 30 decoded keyframes
    assert engine.stats(1.5)["cache"]["clips"] >= 1


def test_a_label_change_mid_stream_blends_to_the_new_label(engine):
    sid = engine.open("generate", 0.0, label="high_smile", loop=True, duration=2.0, blend=0.5)
    out, now = run(engine, 1.0)
    assert engine.handle({"cmd": "set", "stream": sid, "label": "eyebrow"}, now)["ok"]
    out, _ = run(engine, 1.0, start=now)
    labels = [m.header["label"] for m in frames(out, sid)]
    assert labels[0] == "high_smile" and labels[-1] == "eyebrow"
    switch = labels.index("eyebrow")
    assert 10 < switch < 25                                      # halfway through the 0.5 s blend
    steps = [np.abs(vertices(engine, a) - vertices(engine, b)).max()
             for a, b in zip(frames(out, sid)[:-1], frames(out, sid)[1:])]
    assert max(steps) < 0.003                                    # no jump: under 3 mm between frames


def test_a_playlist_plays_its_labels_in_turn(engine):
    sid = engine.open("playlist", 0.0, items=["bareteeth", {"label": "lips_up", "duration": 1.0}], duration=1.0,
                      blend=0.3)
    out, _ = run(engine, 2.5)
    labels = [m.header["label"] for m in frames(out, sid) if m.header["t"] > 0]
    assert labels[0] == "bareteeth" and "lips_up" in labels
    assert out[-1].header["type"] == "end"


@pytest.mark.parametrize("identity", [5, {"index": 5}, {"params": [0.5] * 35}])
def test_identities_from_the_population_or_parameters(engine, identity):
    reply = engine.handle({"cmd": "open", "kind": "generate", "label": "eyebrow", "identity": identity}, 0.0)
    assert reply["ok"], reply
    out = engine.tick(0.0)
    neutral = vertices(engine, frames(out)[0])
    assert np.abs(neutral - engine.template).max() > 1e-3         # not the template: that person's face


def test_an_uploaded_neutral_mesh_drives_the_stream(engine):
    mesh = (engine.template * np.float32(1.05)).astype("<f4")
    for form in (mesh.tobytes(), base64.b64encode(mesh.tobytes()).decode(), mesh.tolist()):
        reply = engine.handle({"cmd": "open", "kind": "generate", "label": "eyebrow", "identity": {"mesh": form}}, 0.0)
        assert reply["ok"], reply
    out = engine.tick(0.0)
    np.testing.assert_allclose(vertices(engine, frames(out)[0]), mesh, atol=2e-6)
    bad = engine.handle({"cmd": "open", "kind": "generate", "label": "eyebrow",
                         "identity": {"mesh": mesh[:-1].tobytes()}}, 0.0)
    assert bad["error"]["code"] == P.BAD_ARGUMENT and "5229 vertices" in bad["error"]["message"]


@pytest.mark.parametrize("msg,code", [
    ({"cmd": "launch"}, P.UNKNOWN_COMMAND),
    ({"cmd": "open"}, P.BAD_ARGUMENT),
    ({"cmd": "open", "kind": "generate"}, P.BAD_ARGUMENT),
    ({"cmd": "open", "kind": "generate", "label": "grin"}, P.NOT_FOUND),
    ({"cmd": "open", "kind": "generate", "label": "eyebrow", "fps": 1e9}, P.BAD_ARGUMENT),
    ({"cmd": "open", "kind": "generate", "label": "eyebrow", "fps": "60"}, P.BAD_ARGUMENT),
    ({"cmd": "open", "kind": "generate", "label": "eyebrow", "identity": {"index": -1}}, P.BAD_ARGUMENT),
    ({"cmd": "open", "kind": "playlist", "items": []}, P.BAD_ARGUMENT),
    ({"cmd": "set", "stream": "s999999", "label": "eyebrow"}, P.NOT_FOUND),
])
def test_bad_commands_get_error_codes(engine, msg, code):
    reply = engine.handle(msg, 0.0)
    assert reply["ok"] is False and reply["error"]["code"] == code, reply


def test_a_token_is_required_when_configured(registry):
    eng = Engine(registry, EngineConfig(token="s3cret"), epoch=0.0)
    assert eng.handle({"cmd": "ping"}, 0.0)["error"]["code"] == P.UNAUTHORIZED
    assert eng.handle({"cmd": "ping", "token": "wrong"}, 0.0)["error"]["code"] == P.UNAUTHORIZED
    assert eng.handle({"cmd": "ping", "token": "s3cret"}, 0.0)["ok"]


def test_the_stream_limit_is_enforced(registry):
    eng = Engine(registry, EngineConfig(max_streams=2), epoch=0.0)
    for _ in range(2):
        eng.open("generate", 0.0, label="eyebrow")
    assert eng.handle({"cmd": "open", "kind": "generate", "label": "eyebrow"}, 0.0)["error"]["code"] == P.LIMIT


def test_without_a_decoder_streams_are_refused_but_the_engine_answers(tmp_path):
    reg = Registry.discover(synthface_template(), [tmp_path / "missing"], shipped=False)
    eng = Engine(reg, EngineConfig(), epoch=0.0)
    assert eng.handle({"cmd": "ping"}, 0.0)["ok"]
    reply = eng.handle({"cmd": "open", "kind": "generate", "label": "eyebrow"}, 0.0)
    assert reply["error"]["code"] == P.UNAVAILABLE and "missing" in reply["error"]["message"]
    assert eng.handle({"cmd": "models"}, 0.0)["missing"] == list(LOADERS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.floats(allow_nan=True) | st.text(max_size=20)
    | st.binary(max_size=64),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20)
commands = st.fixed_dictionaries(
    {"cmd": st.sampled_from(["open", "close", "set", "list", "ping", "models", "stats", "bogus"])},
    optional={k: json_values for k in ("kind", "label", "identity", "fps", "enc", "mode", "loop", "blend", "seed",
                                       "duration", "items", "stream", "reset", "id")})


@pytest.fixture(scope="module")
def fuzz_engine(registry):
    eng = Engine(registry, EngineConfig(max_streams=64), epoch=0.0)
    keeper = eng.open("generate", 0.0, label="high_smile", loop=True)
    return eng, keeper, {"now": 0.0}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(msg=commands | st.binary(max_size=200).map(lambda b: ("raw", b)))
def test_fuzzed_control_messages_get_a_reply_and_the_engine_keeps_ticking(fuzz_engine, msg):
    eng, keeper, clock = fuzz_engine
    if isinstance(msg, tuple):
        reply = msgpack.unpackb(eng.handle_raw(msg[1], "msgpack", clock["now"]))
    else:
        if msg.get("cmd") == "close" and msg.get("stream") == keeper:
            msg = {**msg, "stream": "s999999"}
        reply = msgpack.unpackb(eng.handle_raw(msgpack.packb(msg, use_bin_type=True), "msgpack", clock["now"]))
    assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool)
    if not reply["ok"]:
        assert reply["error"]["code"] in P.ERROR_CODES and reply["error"]["code"] != P.INTERNAL, reply
    for sid in [s for s in eng.sessions if s != keeper][32:]:
        eng.handle({"cmd": "close", "stream": sid}, clock["now"])
    before = eng.sessions[keeper].frames
    eng.tick(clock["now"])                                       # what waits to be sent (ends of closed streams)
    clock["now"] = max(clock["now"], eng.next_deadline())
    eng.tick(clock["now"])
    assert keeper in eng.sessions and eng.sessions[keeper].frames > before


def test_seq_counts_on_across_a_rate_change_and_gaps_mark_skipped_periods(engine):
    sid = engine.open("generate", 0.0, label="eyebrow", loop=True)
    out, now = run(engine, 0.5)
    assert engine.handle({"cmd": "set", "stream": sid, "fps": 30}, now)["ok"]
    more, now = run(engine, 0.5, start=now)
    seqs = [m.header["seq"] for m in frames(out + more, sid)]
    assert seqs == list(range(len(seqs)))
    engine.tick(now + 0.2)                                        # a 200 ms stall: six 30 fps periods missed
    late = frames(engine.tick(engine.next_deadline()), sid) or frames(engine.tick(engine.next_deadline()), sid)
    assert late[0].header["seq"] - seqs[-1] > 5
    assert engine.handle({"cmd": "close", "stream": sid}, now + 1)["ok"]
    assert engine.next_deadline() == -float("inf")                # the end goes out at once
    assert [m.header["type"] for m in engine.tick(now + 1)] == ["end"]
    assert engine.next_deadline() is None
