"""The transports against a live runtime on loopback: control over ZeroMQ and
WebSocket, the late-joiner rule, the static page, slow / vanishing / churning
clients, tokens and binds, and a clean shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import msgpack
import pytest
import websockets
import websockets.sync.client
import zmq

from models.face import synthface_template
from runtime import protocol as P
from runtime.engine import Engine, EngineConfig
from runtime.registry import Registry
from runtime.serve import query
from runtime.server import ServeConfig, ServeError, Server, check_binds
from trainers.bench.runtime import free_port


@pytest.fixture
def live(tmp_path, serve_runtime):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>facecast</title>")
    (tmp_path / "secret.txt").write_text("not for the web")
    return serve_runtime(web=web)


def subscriber(endpoint: str, topic: bytes = b"frame/"):
    s = zmq.Context.instance().socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    s.setsockopt(zmq.SUBSCRIBE, topic)
    return s


def drain(sock, seconds: float) -> list[dict]:
    headers, end = [], time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if sock.poll(int(left * 1000) + 1):
            headers.append(P.parse_data(sock.recv_multipart())[0])
    return headers


def test_zmq_control_with_dealer_and_req(live):
    assert live.call(cmd="ping")["v"] == P.VERSION
    req = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(live.control)
    req.send(msgpack.packb({"cmd": "list", "id": 5}))
    assert req.poll(5000)
    reply = msgpack.unpackb(req.recv())
    req.close()
    assert reply == {"ok": True, "streams": [], "id": 5}
    bad = live.call(cmd="open", kind="generate", label="nope")
    assert bad["error"]["code"] == P.NOT_FOUND


def test_a_late_zmq_subscriber_gets_the_topology_before_any_frame(live):
    sid = live.open()
    live.wait_playing()
    sub = subscriber(live.zmq, P.topic(sid))
    headers = drain(sub, 1.0)
    sub.close()
    assert headers[0]["type"] == "topology" and headers[0]["n"] == 5229
    frames = [h for h in headers if h["type"] == "frame"]
    assert len(frames) > 40 and all(h["stream"] == sid for h in frames)


def test_websocket_control_subscription_and_topology_first(live):
    a = live.open()
    b = live.open(label="eyebrow")
    live.wait_playing()
    with websockets.sync.client.connect(live.ws_url, compression=None) as ws:
        ws.send(json.dumps({"cmd": "subscribe", "streams": [b], "id": 1}))
        ws.send(b"\x81binary control")
        kinds, replies = [], []
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            msg = ws.recv(timeout=1.0)
            if isinstance(msg, str):
                replies.append(json.loads(msg))
            else:
                header, _ = P.parse_data(msg)
                if replies:                      # a new connection gets every stream until the subscribe reply
                    assert header["stream"] == b
                if header["stream"] == b:
                    kinds.append(header["type"])
        assert replies[0] == {"ok": True, "streams": [b], "id": 1}
        assert replies[1]["error"]["code"] == P.BAD_REQUEST
        assert kinds[0] == "topology" and kinds.count("frame") > 40
        ws.send(json.dumps({"cmd": "close", "stream": a}))
        assert json.loads(_next_text(ws))["ok"]


def _next_text(ws) -> str:
    while True:
        msg = ws.recv(timeout=5)
        if isinstance(msg, str):
            return msg


def test_the_web_folder_is_served_over_http_on_the_websocket_port(live):
    page = urllib.request.urlopen(f"http://127.0.0.1:{live.ws_port}/", timeout=5)
    assert page.headers["Content-Type"] == "text/html" and b"facecast" in page.read()
    for path in ("/missing.js", "/../secret.txt", "/%2e%2e/secret.txt"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{live.ws_port}{path}", timeout=5)
        assert info.value.code == 404


def _rate(live, sid: str, seconds: float = 2.0) -> float:
    sub = subscriber(live.zmq, P.topic(sid))
    time.sleep(0.3)
    n = sum(h["type"] == "frame" for h in drain(sub, seconds))
    sub.close()
    return n / seconds


def test_a_client_that_never_reads_slows_nobody(live):
    sid = live.open()
    live.wait_playing()
    stalled = socket.create_connection(("127.0.0.1", live.ws_port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    time.sleep(1.0)                                               # it fills its buffers, never reading
    assert _rate(live, sid) > 50                                  # a reader elsewhere still gets ~60 fps
    clients = live.call(cmd="stats")["transports"]["ws"]["per_client"]
    assert clients and clients[0]["dropped"] > 30                 # the stalled one drops, newest frame wins
    assert clients[0]["queued"] <= 2                              # ... and holds at most one frame per stream
    stalled.close()


def test_clients_vanishing_and_churning_keep_memory_bounded(live):
    sid = live.open()
    live.wait_playing()

    def rss_mb() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20

    with websockets.sync.client.connect(live.ws_url, compression=None) as ws:  # disconnects mid-stream
        ws.recv(timeout=2)
    base = rss_mb()
    rates = []

    def churn():
        for _ in range(100):
            with websockets.sync.client.connect(live.ws_url, compression=None) as ws:
                ws.recv(timeout=2)
            sub = subscriber(live.zmq)
            sub.close()

    worker = threading.Thread(target=churn)
    worker.start()
    while worker.is_alive():
        rates.append(_rate(live, sid, 1.0))
    worker.join()
    assert min(rates) > 45                                        # others keep (nearly) full rate meanwhile
    time.sleep(0.3)
    ws_stats = live.call(cmd="stats")["transports"]["ws"]
    assert ws_stats["clients"] == 0 and ws_stats["clients_total"] >= 101
    assert rss_mb() - base < 40


def test_every_subscription_is_applied_while_others_come_and_go(live):
    """In manual mode libzmq forgets the pipe a subscription belongs to when
    another subscriber leaves; the runtime must apply each one atomically."""
    sid = live.open()
    live.wait_playing()
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            sub = subscriber(live.zmq)
            time.sleep(0.002)
            sub.close()

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        silent = 0
        for _ in range(40):
            sub = subscriber(live.zmq, P.topic(sid))
            silent += not sub.poll(1500)
            sub.close()
    finally:
        stop.set()
        worker.join()
    assert silent == 0


def test_the_token_guards_the_wire(serve_runtime):
    rt = serve_runtime(token="s3cret")
    assert rt.call(cmd="ping")["error"]["code"] == P.UNAUTHORIZED
    assert rt.call(cmd="ping", token="s3cret")["ok"]
    with websockets.sync.client.connect(rt.ws_url) as ws:
        ws.send(json.dumps({"cmd": "subscribe", "streams": "*"}))
        assert json.loads(_next_text(ws))["error"]["code"] == P.UNAUTHORIZED


@pytest.mark.parametrize("cfg", [ServeConfig(zmq="tcp://0.0.0.0:5555"), ServeConfig(ws="0.0.0.0:8765"),
                                 ServeConfig(control="tcp://*:5556"), ServeConfig(ws="192.168.1.5:8765")])
def test_binding_beyond_loopback_needs_a_token(cfg):
    with pytest.raises(ServeError, match="needs --token"):
        check_binds(cfg)
    check_binds(ServeConfig(zmq=cfg.zmq, control=cfg.control, ws=cfg.ws, token="t"))


def test_a_busy_port_is_a_clear_error(live):
    engine = Engine(Registry.discover(synthface_template()), EngineConfig())
    server = Server(engine, ServeConfig(zmq=live.zmq, control=None, ws=None))
    with pytest.raises(ServeError, match=f"cannot bind --zmq {live.zmq}"):
        asyncio.run(server.run())


def _serve_process(*extra: str) -> tuple[subprocess.Popen, str, str]:
    control, data = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    ws = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", *extra, "--zmq", data, "--control", control,
                             "--ws", ws], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, control, ws


def test_sigterm_shuts_down_within_a_second_and_frees_the_ports():
    proc, control, ws = _serve_process("serve")
    try:
        end = time.monotonic() + 60
        while True:
            try:
                query(control, {"cmd": "ping"}, timeout=1.0)
                break
            except ConnectionError:
                assert proc.poll() is None and time.monotonic() < end, proc.stdout.read()
        assert query(control, {"cmd": "open", "kind": "generate", "label": "eyebrow", "loop": True})["ok"]
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
        assert time.monotonic() - t0 < 1.0 and proc.returncode == 0
        assert "stopped" in proc.stdout.read()
        host, port = ws.split(":")
        with socket.socket() as s:                                # the port is free again
            s.bind((host, int(port)))
    finally:
        if proc.poll() is None:
            proc.kill()


def test_demo_headless_prints_frames_sent_per_stream():
    proc, _, _ = _serve_process("demo", "--headless", "--seconds", "3")
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    assert "demo stream s000001" in out and "s000001 sent" in out
    sent = int(out.split("s000001 sent ")[1].split()[0])
    assert sent > 120                                             # three seconds at ~60 fps
