"""``neutral`` and ``transfer`` streams: they follow another stream in the
engine's tick (sans I/O, fake clock), with the shipped S2D-Dec and the
shipped S2D neutralization estimator."""

from __future__ import annotations

import numpy as np
import pytest

from models.constants import MM_PER_M
from models.face import synthface_template
from models.paths import CHECKPOINTS, S2D_SYNTHFACE
from runtime import protocol as P
from runtime.animation import make_identity
from runtime.engine import Engine, EngineConfig
from runtime.registry import Registry

PERIOD = 1 / 60


@pytest.fixture(scope="module")
def registry():
    return Registry.discover(synthface_template())


@pytest.fixture
def engine(registry):
    return Engine(registry, EngineConfig(), epoch=0.0, wall=lambda: 0)


def tick_for(engine: Engine, seconds: float, start: float = 0.0) -> list[P.Message]:
    out = []
    for k in range(int(round(seconds / PERIOD))):
        out += engine.tick(start + k * PERIOD)
    return out


def meshes(engine: Engine, messages, stream: str) -> list[np.ndarray]:
    return [P.decode_vertices(m.payload, m.header, engine.template) for m in messages
            if m.header["type"] == "frame" and m.stream == stream]


def mm(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=-1).mean() * MM_PER_M)


def test_a_neutral_stream_sends_the_followed_face_neutralized_every_tick(engine):
    src = engine.open("generate", 0.0, label="mouth_open", duration=2.0, loop=True, mode="live", identity=3)
    neu = engine.open("neutral", 0.0, of=src)
    out = tick_for(engine, 1.0)
    shown, neutral = meshes(engine, out, src), meshes(engine, out, neu)
    assert len(shown) == len(neutral) == 60                        # one frame each per tick, from the same tick
    truth = make_identity(3, engine.face).neutral
    apex = int(np.argmax([mm(m, truth) for m in shown]))
    assert mm(shown[apex], truth) > 0.5                              # the mouth is open ...
    assert mm(neutral[apex], truth) < 0.3 * mm(shown[apex], truth)   # ... and neutralized
    headers = [m.header for m in out if m.header["type"] == "frame" and m.stream == neu]
    assert {h["label"] for h in headers} == {"neutral"} and headers[0]["identity"] == "synth:3"
    assert engine.handle({"cmd": "list"}, 1.0)["streams"][1]["of"] == src
    assert engine.stats(1.0)["derive_ms"]["mean"] > 0


def test_a_transfer_stream_moves_the_expression_onto_another_identity(engine):
    src = engine.open("generate", 0.0, label="mouth_open", duration=2.0, loop=True, mode="live", identity=3)
    dst = engine.open("transfer", 0.0, of=src, identity=11)
    out = tick_for(engine, 1.0)
    shown, moved = meshes(engine, out, src), meshes(engine, out, dst)
    a, b = make_identity(3, engine.face), make_identity(11, engine.face)
    apex = int(np.argmax([mm(m, a.neutral) for m in shown]))
    face = engine.face.landmarks(np.stack([shown[apex], moved[apex]]))
    motion_a, motion_b = face[0] - a.landmarks, face[1] - b.landmarks
    assert mm(moved[apex], b.neutral) > 0.5 * mm(shown[apex], a.neutral)   # B's face moves as much ...
    assert np.linalg.norm(motion_a - motion_b, axis=-1).mean() < 0.25 * np.linalg.norm(motion_a, axis=-1).mean()
    assert mm(moved[apex], shown[apex]) > 1.0                               # ... and stays B
    reply = engine.handle({"cmd": "set", "stream": dst, "identity": 12}, 1.0)
    assert reply["ok"] and reply["identity"] == "synth:12"


def test_followers_end_with_the_stream_they_follow(engine):
    src = engine.open("generate", 0.0, label="eyebrow", loop=True, mode="live")
    neu = engine.open("neutral", 0.0, of=src)
    dst = engine.open("transfer", 0.0, of=src)
    tick_for(engine, 0.1)
    assert engine.handle({"cmd": "close", "stream": src}, 0.1)["ok"]
    ends = [m.header for m in engine.tick(0.1 + PERIOD) if m.header["type"] == "end"]
    assert [(h["stream"], h["reason"]) for h in ends] == [(src, "closed"), (neu, "source_ended"),
                                                          (dst, "source_ended")]
    assert not engine.sessions


def test_follow_arguments_are_checked(engine):
    src = engine.open("generate", 0.0, label="eyebrow", loop=True)
    bad = [({"kind": "neutral"}, P.BAD_ARGUMENT), ({"kind": "neutral", "of": "s999999"}, P.NOT_FOUND),
           ({"kind": "neutral", "of": src, "method": "magic"}, P.BAD_ARGUMENT),
           ({"kind": "transfer", "of": src, "method": "classical"}, P.BAD_ARGUMENT),
           ({"kind": "transfer", "of": src, "identity": {"index": -1}}, P.BAD_ARGUMENT)]
    for args, code in bad:
        reply = engine.handle({"cmd": "open", **args}, 0.0)
        assert not reply["ok"] and reply["error"]["code"] == code, (args, reply)
    neu = engine.open("neutral", 0.0, of=src)
    for change in ({"label": "mouth_open"}, {"identity": 2}):
        reply = engine.handle({"cmd": "set", "stream": neu, **change}, 0.0)
        assert not reply["ok"] and reply["error"]["code"] == P.BAD_ARGUMENT
    assert len(engine.sessions) == 2


def test_a_method_that_did_not_load_is_unavailable():
    motion = CHECKPOINTS / "motion3dgan_synthface.safetensors"
    registry = Registry.discover(synthface_template(), [S2D_SYNTHFACE, motion], shipped=False)
    engine = Engine(registry, EngineConfig(), epoch=0.0, wall=lambda: 0)
    src = engine.open("generate", 0.0, label="eyebrow", loop=True)
    for kind, method in (("neutral", "s2d"), ("neutral", "latent_gan"), ("transfer", "vae")):
        reply = engine.handle({"cmd": "open", "kind": kind, "of": src, "method": method}, 0.0)
        assert not reply["ok"] and reply["error"]["code"] == P.UNAVAILABLE
        assert "neutral_" in reply["error"]["message"]
    assert list(engine.sessions) == [src]
