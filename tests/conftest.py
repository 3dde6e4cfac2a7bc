"""Shared fixtures: the reference head beside the project, small data folders,
and a live runtime on loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference (the CoMA/FLAME head); tests that need it skip without it."""
    if not (REFERENCE / "coma_template.obj").is_file():
        pytest.skip(f"reference head not available: {REFERENCE} has no coma_template.obj "
                    "(it lives beside the project for developers and CI, never in it)")
    return REFERENCE


@pytest.fixture(scope="session")
def flame_template(reference_dir):
    from models.face import load_template

    return load_template(reference_dir / "coma_template.obj",
                         reference_dir / "flame68_landmark_embedding.json")


@pytest.fixture(scope="session")
def ict_dir() -> Path:
    """../shared/reference/ict (ICT-FaceKit's reference arrays and a subset of its
    FaceXModel folder); tests that need it skip without it."""
    ict = REFERENCE / "ict"
    if not (ict / "FaceXModel" / "generic_neutral_mesh.obj").is_file() or not (ict / "ict_expressions.npz").is_file():
        pytest.skip(f"ICT-FaceKit reference not available: {ict} (it lives beside the project for "
                    "developers and CI, never in it)")
    return ict


@pytest.fixture(scope="session")
def ict_shapes(ict_dir):
    """ICT-FaceKit's shapes on its mean face (normalised), their names, and the
    correspondence of SynthFace's template to ICT's head."""
    from models.face import synthface_template
    from trainers.face.calibrate import load_ict, reference_fields
    from trainers.face.correspond import correspond

    ict = load_ict(ict_dir)
    names, fields = reference_fields(ict)
    return names, fields, correspond(synthface_template(), ict.template)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """A small SynthFace data folder with its PLY tree: 3 subjects x 4 labels."""
    from trainers.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("synth") / "data"
    cfg = SynthConfig(identities=3, labels=("mouth_open", "eyebrow", "high_smile", "bareteeth"), seed=7)
    generate(cfg, out, show_progress=False, report=False)
    return out


@pytest.fixture(scope="session")
def tracking_model(tmp_path_factory):
    """A small bilinear tracking model (40 SynthFace identities x 77 expressions), built once."""
    from models.face import synthface
    from models.tracking.bilinear import BilinearConfig, load_bilinear

    return load_bilinear(synthface(), BilinearConfig(identities=40), cache=tmp_path_factory.mktemp("bilinear"))


@pytest.fixture
def broken_plugin(monkeypatch):
    """``broken_plugin(module, group, name, value)``: ``module.entry_points``
    also lists an entry point ``name`` of ``group`` that cannot load."""
    from importlib.metadata import EntryPoint

    def add(module, broken_group: str, name: str, value: str) -> None:
        real = module.entry_points

        def with_broken(group: str):  # called as entry_points(group=...)
            found = list(real(group=group))
            if group == broken_group:
                found.append(EntryPoint(name, value, group))
            return found

        monkeypatch.setattr(module, "entry_points", with_broken)

    return add


class LiveRuntime:
    """A runtime (engine + ZeroMQ data and control + WebSocket/HTTP) serving on
    free loopback ports, run by an asyncio loop in a background thread."""

    def __init__(self, web=None, token=None, ports: tuple[int, int, int] | None = None) -> None:
        from models.face import synthface_template
        from runtime.engine import Engine, EngineConfig
        from runtime.registry import Registry
        from runtime.server import ServeConfig, Server
        from trainers.bench.runtime import free_port

        # (data, control, WebSocket); pass a stopped runtime's ``ports`` to restart it in place
        self.ports = ports or (free_port(), free_port(), free_port())
        self.zmq = f"tcp://127.0.0.1:{self.ports[0]}"
        self.control = f"tcp://127.0.0.1:{self.ports[1]}"
        self.ws_port = self.ports[2]
        self.engine = Engine(Registry.discover(synthface_template()), EngineConfig(token=token),
                             epoch=time.monotonic())
        self.server = Server(self.engine, ServeConfig(zmq=self.zmq, control=self.control,
                                                      ws=f"127.0.0.1:{self.ws_port}", web=web, token=token))
        self.loop = asyncio.new_event_loop()
        self.stop = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not (self.stop and self.server.ready.is_set()):
            assert time.monotonic() < deadline, "the runtime did not start"
            time.sleep(0.02)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main():
            self.stop = asyncio.Event()
            await self.server.run(self.stop)

        self.loop.run_until_complete(main())

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/"

    def call(self, **cmd) -> dict:
        """One command over the ZeroMQ control socket (a DEALER)."""
        from runtime.serve import query

        return query(self.control, cmd, timeout=5.0)

    def open(self, **args) -> str:
        reply = self.call(cmd="open", kind="generate", **{"label": "high_smile", "loop": True, **args})
        assert reply["ok"], reply
        return reply["stream"]

    def wait_playing(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while any(s["state"] != "playing" for s in self.call(cmd="list")["streams"]):
            assert time.monotonic() < end, "streams did not finish baking"
            time.sleep(0.1)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def serve_runtime():
    """``serve_runtime(web=None, token=None, ports=None)`` starts a ``LiveRuntime``; all are stopped after the test."""
    started: list[LiveRuntime] = []

    def start(**kwargs) -> LiveRuntime:
        started.append(LiveRuntime(**kwargs))
        return started[-1]

    yield start
    for rt in started:
        if rt.thread.is_alive():
            rt.close()
