"""clients/python: FacecastClient and AsyncFacecastClient against a live
runtime over ZeroMQ and WebSocket, and their errors: bad addresses, closed
ports, the wrong protocol, and a runtime of another protocol version."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from clients.python import (
    AddressError,
    AsyncFacecastClient,
    CommandError,
    ConnectError,
    FacecastClient,
    MeshFrame,
    VersionError,
    parse_address,
)
from clients.python.core import COMMAND_ERRORS
from runtime import protocol as P
from trainers.bench.runtime import free_port

N_VERTICES = 5229


@pytest.fixture
def live(serve_runtime):
    return serve_runtime()


def _connect(live, kind: str, **kwargs) -> FacecastClient:
    url = live.zmq if kind == "zmq" else live.ws_url
    return FacecastClient(url, control=live.control, **kwargs)


# ------------------------------------------------------------------ addresses
def test_addresses():
    a = parse_address("tcp://127.0.0.1:5555")
    assert (a.url, a.control, a.stream, a.zmq) == ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556", None, True)
    a = parse_address("tcp://localhost:6000/s000007", control="tcp://localhost:7000")
    assert (a.url, a.control, a.stream) == ("tcp://localhost:6000", "tcp://localhost:7000", "s000007")
    assert parse_address("tcp://[::1]:5555", control=False).control is None
    a = parse_address("ws://127.0.0.1:8765/s000001")
    assert (a.url, a.control, a.stream, a.zmq) == ("ws://127.0.0.1:8765/", None, "s000001", False)


@pytest.mark.parametrize("url", ["127.0.0.1:5555", "http://127.0.0.1:5555", "tcp://127.0.0.1", "tcp://:5555",
                                 "tcp://127.0.0.1:port", "tcp://127.0.0.1:0", "tcp://127.0.0.1:99999",
                                 "tcp://*:5555", "ws://0.0.0.0:8765", "tcp://127.0.0.1:5555/a/b",
                                 "ws://127.0.0.1:8765?x=1", "tcp://no-such-host.invalid:5555"])
def test_a_bad_address_is_an_address_error_naming_it(url):
    t0 = time.monotonic()
    with pytest.raises(AddressError) as info:
        FacecastClient(url)
    assert url in str(info.value) and time.monotonic() - t0 < 1.0


# ------------------------------------------------------------------ a runtime
@pytest.mark.parametrize("kind", ["zmq", "ws"])
def test_frames_are_numpy_arrays_with_their_metadata(live, kind):
    with _connect(live, kind) as fc:
        assert fc.info["v"] == P.VERSION and fc.info["pong"]
        sid = fc.open("high_smile", loop=True)
        assert any(s["stream"] == sid for s in fc.list_streams())
        frame = fc.recv()
        assert isinstance(frame, MeshFrame) and frame.stream == sid
        v = frame.vertices
        assert v.shape == (N_VERTICES, 3) and v.dtype == np.float32 and np.isfinite(v).all()
        assert frame.faces.shape[1] == 3 and frame.faces.max() == N_VERTICES - 1
        assert frame.landmarks.shape == (68, 3) and frame.weights is None and frame.blendshapes is None
        assert frame.label == "high_smile" and frame.fps == 60.0 and frame.enc == "q16"
        assert frame.topology.id == live.engine.registry.template.topology_id
        assert 0 < frame.latency_ms < 1000 and frame.tick_ns <= frame.wall_ns <= frame.received_ns
        live.wait_playing()                                 # (frames hold the neutral face while baking)
        fc.latest()                                          # skip what queued meanwhile
        frames = [fc.recv() for _ in range(30)]
        seqs = [f.seq for f in frames]
        assert seqs == sorted(set(seqs)) and seqs[0] > frame.seq
        assert fc.received >= 31
        assert max(np.abs(f.vertices - frames[0].vertices).max() for f in frames) > 1e-4   # the face moves
        fc.close_stream(sid)
        ends = [e for e in _events(fc, 2.0) if not isinstance(e, MeshFrame)]
        assert [(e.stream, e.reason) for e in ends] == [(sid, "closed")] and sid in fc.ended


def _events(fc, seconds: float) -> list:
    out, end = [], time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        event = fc.poll(left)
        if event is not None:
            out.append(event)
    return out


@pytest.mark.parametrize("kind", ["zmq", "ws"])
def test_subscribe_to_one_stream_or_all(live, kind):
    with _connect(live, kind) as fc:
        a, b = fc.open("high_smile", loop=True), fc.open("mouth_open", loop=True)
        fc.subscribe([b])
        time.sleep(0.2)
        fc.latest()                                          # what came before the change
        assert {f.stream for f in _events(fc, 0.5) if isinstance(f, MeshFrame)} == {b}
        fc.subscribe("*")
        newest = fc.latest(timeout=1.0)
        end = time.monotonic() + 3.0
        while set(newest) != {a, b} and time.monotonic() < end:
            newest.update(fc.latest(timeout=0.2))
        assert set(newest) == {a, b}
    with FacecastClient(f"{live.zmq}/{a}", control=live.control) as one:
        assert {one.recv().stream for _ in range(10)} == {a}


@pytest.mark.parametrize("kind", ["zmq", "ws"])
def test_commands_raise_typed_errors(live, kind):
    with _connect(live, kind) as fc:
        with pytest.raises(COMMAND_ERRORS[P.NOT_FOUND]) as info:
            fc.close_stream("s999999")
        assert info.value.code == P.NOT_FOUND and "s999999" in info.value.message
        assert isinstance(info.value, CommandError) and info.value.reply["ok"] is False
        with pytest.raises(COMMAND_ERRORS[P.BAD_ARGUMENT]):
            fc.open("high_smile", fps=10_000)
        with pytest.raises(COMMAND_ERRORS[P.NOT_FOUND]):
            fc.open("no_such_label")
        with pytest.raises(COMMAND_ERRORS[P.UNKNOWN_COMMAND]):
            fc.command("dance")
        assert type(info.value).__name__ == "NotFoundError"
        assert fc.ping()["ok"]                               # still fine after the errors


def test_the_token_goes_with_every_command(serve_runtime):
    live = serve_runtime(token="s3cret")
    for kind in ("zmq", "ws"):
        with pytest.raises(COMMAND_ERRORS[P.UNAUTHORIZED]):
            _connect(live, kind)
        with _connect(live, kind, token="s3cret") as fc:
            assert fc.info["v"] == P.VERSION
            fc.subscribe("*")


@pytest.mark.parametrize("kind", ["zmq", "ws"])
def test_async_client(live, kind):
    async def main():
        url = live.zmq if kind == "zmq" else live.ws_url
        async with await AsyncFacecastClient.connect(url, control=live.control) as fc:
            assert fc.info["v"] == P.VERSION
            sid = await fc.open("mouth_open", loop=True)
            got = []
            async for frame in fc.frames():
                got.append(frame)
                if len(got) == 20:
                    break
            assert {f.stream for f in got} == {sid} and got[-1].vertices.shape == (N_VERTICES, 3)
            with pytest.raises(COMMAND_ERRORS[P.NOT_FOUND]):
                await fc.set("s999999", label="high_smile")
            assert (await fc.set(sid, label="high_smile"))["ok"]
            await fc.close_stream(sid)
            newest = await fc.latest(timeout=0.5)
            assert set(newest) <= {sid} and sid in fc.ended

    asyncio.run(main())


# ------------------------------------------------------------------ failures
@pytest.mark.parametrize("scheme", ["tcp", "ws"])
def test_a_closed_port_is_a_connect_error_not_a_hang(scheme):
    url = f"{scheme}://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(ConnectError, match="nothing is listening") as info:
        FacecastClient(url, timeout=1.0)
    assert url.rstrip("/") in str(info.value) and time.monotonic() - t0 < 1.5

    async def main():
        with pytest.raises(ConnectError, match="nothing is listening"):
            await AsyncFacecastClient.connect(url, timeout=1.0)

    asyncio.run(main())


def test_the_wrong_protocol_on_a_port_is_named(live):
    with pytest.raises(ConnectError, match="does not speak ZeroMQ"):
        FacecastClient(f"tcp://127.0.0.1:{live.ws_port}", control=False, timeout=1.0)
    with pytest.raises(ConnectError, match="a ZeroMQ port"):
        FacecastClient(live.zmq.replace("tcp://", "ws://"), timeout=1.0)


class FakeZmqRuntime:
    """A ROUTER that answers every command as a runtime of protocol ``version``
    would, and an XPUB that sends one frame header of that version per subscription."""

    def __init__(self, version: int) -> None:
        ctx = zmq.Context.instance()
        self.router, self.pub = ctx.socket(zmq.ROUTER), ctx.socket(zmq.XPUB)
        for s in (self.router, self.pub):
            s.setsockopt(zmq.LINGER, 0)
        self.data = f"tcp://127.0.0.1:{free_port()}"
        self.control = f"tcp://127.0.0.1:{free_port()}"
        self.pub.bind(self.data)
        self.router.bind(self.control)
        self.version, self.stop = version, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.pub, zmq.POLLIN)
        while not self.stop.is_set():
            for sock, _ in poller.poll(50):
                if sock is self.router:
                    *ident, raw = self.router.recv_multipart()
                    req = msgpack.unpackb(raw)
                    reply = {"ok": True, "pong": True, "v": self.version, "id": req.get("id")}
                    self.router.send_multipart([*ident, msgpack.packb(reply)])
                else:
                    self.pub.recv()
                    header = {"v": self.version, "type": "frame", "stream": "x"}
                    self.pub.send_multipart([P.topic("x"), msgpack.packb(header), b""])

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.router.close(linger=0)
        self.pub.close(linger=0)


def test_a_runtime_of_another_protocol_version_is_refused_over_zeromq():
    fake = FakeZmqRuntime(version=2)
    try:
        with pytest.raises(VersionError, match="speaks facecast protocol v2; this client speaks v1") as info:
            FacecastClient(fake.data, control=fake.control, timeout=2.0)
        assert (info.value.theirs, info.value.ours) == (2, 1)
        with FacecastClient(fake.data, control=False, timeout=2.0) as data_only:   # no ping: the data say it
            with pytest.raises(VersionError, match="protocol version 2; this client speaks v1"):
                data_only.recv(timeout=2.0)
    finally:
        fake.close()


def test_a_runtime_of_another_protocol_version_is_refused_over_websocket():
    from websockets.sync.server import serve

    def handler(ws):
        for raw in ws:
            req = json.loads(raw)
            ws.send(json.dumps({"ok": True, "pong": True, "v": 2, "id": req.get("id")}))

    port = free_port()
    with serve(handler, "127.0.0.1", port, compression=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with pytest.raises(VersionError, match="v2; this client speaks v1"):
                FacecastClient(f"ws://127.0.0.1:{port}", timeout=2.0)
        finally:
            server.shutdown()
            thread.join(5)
