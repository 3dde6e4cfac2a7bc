"""``facecast bench runtime``: concurrent 60 fps streams through a real runtime.

A ``facecast serve`` process on loopback ports (its own process, as a user
runs it), and in this process a ZeroMQ subscriber to every stream and a
WebSocket client subscribed to one stream (what a browser showing one face
does). For each session count and each decode path:

* ``baked`` (what ``generate`` streams use): each (identity, motion) clip is
  decoded once, then frames interpolate decoded keyframes;
* ``live`` (what live sources need): every frame of every stream is a row of
  the tick's one batched S2D-Dec forward;

it opens that many ``generate`` streams (a different SynthFace identity
each, the 12 labels in turn, looping), waits until every clip is baked,
then measures for ``--seconds``: achieved fps per stream, the tick's time
split (model / engine / send, from the runtime's own ``stats``), and the
latency from tick start (the header's ``tick``) to arrival at each client.
The raw batched decoder forward for the same number of meshes is timed in
this process beforehand, with the server's thread count, and
``overhead_ratio`` is the whole tick over it.

Following streams (``--follow``, default every neutralization method and
both transfer methods, for 8 sessions): that many baked ``generate``
streams plus as many ``neutral`` or ``transfer`` streams following them, one
each; the row's fps and latency are the followers', and ``derive_ms`` (the
tick's time making their frames, one batched call per method) is the
latency they add; ``holds_60fps`` says the followers kept the rate (the
slowest at 59 fps or more, no deadline skipped). A method whose checkpoint
is not loaded is reported as such and skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from trainers.bench import best_of, emit, machine
from trainers.progress import progress

SESSIONS = (1, 8, 32, 64)
PATHS = ("baked", "live")
FOLLOW = ("neutral:s2d", "neutral:classical", "neutral:latent_gan", "neutral:pointnet_vae",
          "transfer:s2d", "transfer:vae")
#: a row holds 60 fps when its slowest stream reaches this rate and no deadline is skipped
HOLD_FPS = 59.0
FOLLOW_SESSIONS = (8,)
#: clients connect and subscribe for this long before measuring (s)
SETTLE_S = 0.75
#: how long to wait for a path's clips to bake (s)
PREPARE_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bytes_per_frame() -> dict:
    """Header + payload bytes of one frame (with landmarks) in each encoding."""
    from models.face import synthface
    from runtime import protocol as P
    from runtime.animation import make_identity

    face = synthface()
    ident = make_identity(1, face)
    out = {}
    for enc in P.ENCODINGS:
        m = P.frame_message("s000001", 1, 0.0, ident.neutral, enc, face.template.topology_id,
                            face.template.vertices, time.time_ns(), time.time_ns(), 60.0,
                            landmarks=ident.landmarks, label="high_smile", identity="synth:1")
        out[enc] = len(m.header_bytes) + len(m.payload)
    return out


def raw_forward_ms(counts: tuple[int, ...], threads: int) -> dict[int, float]:
    """The batched S2D-Dec forward alone for each batch size (best of 3, ms)."""
    import torch

    from models.face import synthface
    from models.paths import S2D_SYNTHFACE
    from models.s2d import load_s2d
    from runtime.animation import make_identity

    torch.set_num_threads(threads)
    face = synthface()
    dec, _ = load_s2d(S2D_SYNTHFACE, face.template.topology_id)
    ident = make_identity(1, face)
    out = {}
    for n in counts:
        neutral = np.repeat(ident.neutral[None], n, 0)
        lm = np.repeat(ident.landmarks[None], n, 0)
        target = lm + np.float32(0.002)
        dec.decode(neutral, lm, target)
        out[n] = best_of(lambda: dec.decode(neutral, lm, target), 3) * 1e3
    return out


class Probe:
    """A ZeroMQ subscriber to every stream and a WebSocket client on one."""

    def __init__(self, zmq_endpoint: str, ws_url: str) -> None:
        self.zmq_endpoint, self.ws_url = zmq_endpoint, ws_url

    async def measure(self, ws_stream: str, seconds: float,
                      only: set[str] | None = None) -> tuple[list[float], list[float]]:
        """Latencies (ms) of frames to the ZeroMQ subscriber (of the streams in
        ``only``, default all) and to the WebSocket client (``ws_stream``)."""
        import msgpack
        import websockets
        import zmq
        import zmq.asyncio

        from runtime import protocol as P

        ctx = zmq.asyncio.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 100000)
        sub.connect(self.zmq_endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, P.TOPIC_PREFIX.encode())
        zmq_lat: list[float] = []
        ws_lat: list[float] = []
        settle = time.monotonic() + SETTLE_S             # connections and subscriptions settle; not measured
        end = settle + seconds

        async def zmq_loop() -> None:
            while time.monotonic() < end:
                try:
                    parts = await asyncio.wait_for(sub.recv_multipart(copy=False), max(0.01, end - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                now = time.time_ns()
                header = msgpack.unpackb(parts[1].bytes, raw=False)
                if (header.get("type") == "frame" and time.monotonic() > settle
                        and (only is None or header["stream"] in only)):
                    zmq_lat.append((now - header["tick"]) / 1e6)

        async def ws_loop() -> None:
            async with websockets.connect(self.ws_url, compression=None, max_size=None) as ws:
                await ws.send('{"cmd": "subscribe", "streams": ["%s"]}' % ws_stream)
                while time.monotonic() < end:
                    try:
                        msg = await asyncio.wait_for(ws.recv(), max(0.01, end - time.monotonic()))
                    except asyncio.TimeoutError:
                        break
                    now = time.time_ns()
                    if isinstance(msg, bytes):
                        header, _ = P.parse_data(msg)
                        if header.get("type") == "frame" and time.monotonic() > settle:
                            ws_lat.append((now - header["tick"]) / 1e6)

        try:
            await asyncio.gather(zmq_loop(), ws_loop())
        finally:
            sub.close(linger=0)
            ctx.term()
        return zmq_lat, ws_lat


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def run(args: argparse.Namespace) -> int:
    from runtime.serve import query

    counts = tuple(args.sessions)
    forward = raw_forward_ms(tuple(sorted(set(counts) | set(args.follow_sessions))), args.threads)
    sizes = bytes_per_frame()
    rows = []
    skipped: list[str] = []
    with served("--threads", str(args.threads), "--encoding", args.encoding) as (zmq_ep, control, ws_url):
        probe = Probe(zmq_ep, ws_url)
        plan = [(path, n) for path in args.paths for n in counts]
        plan += [(follow, n) for follow in args.follow for n in args.follow_sessions]
        bar = progress(plan, desc="bench runtime", unit="run")
        for path, n in bar:  # one run per (path, sessions)
            if ":" in path:
                opened = open_followers(control, n, *path.split(":"))
                if opened is None:
                    skipped.append(path)
                    continue
                followed, streams = opened
            else:
                followed, streams = [], open_streams(control, n, mode=path)
            query(control, {"cmd": "stats", "reset": True})
            t0 = time.monotonic()
            before = {s["stream"]: s for s in query(control, {"cmd": "list"})["streams"]}
            zmq_lat, ws_lat = asyncio.run(probe.measure(streams[0], args.seconds, only=set(streams)))
            st = query(control, {"cmd": "stats"})
            after = {s["stream"]: s for s in query(control, {"cmd": "list"})["streams"]}
            elapsed = time.monotonic() - t0
            for s in followed + streams:
                query(control, {"cmd": "close", "stream": s})
            fps = [(after[s]["frames"] - before[s]["frames"]) / elapsed for s in streams]
            dropped = sum(after[s]["dropped"] - before[s]["dropped"] for s in streams)
            tick, model, send = st["tick_ms"]["mean"], st["model_ms"]["mean"], st["send_ms"]["mean"]
            row = {
                "path": path, "sessions": n, "fps": round(float(np.mean(fps)), 2), "fps_min": round(min(fps), 2),
                "tick_ms": tick, "model_ms": model, "engine_ms": round(tick - model, 3), "send_ms": send,
                "derive_ms": st["derive_ms"]["mean"], "derive_p99_ms": st["derive_ms"]["p99"],
                "tick_p99_ms": st["tick_ms"]["p99"], "late_p99_ms": st["lateness_ms"]["p99"],
                "dropped": dropped,
                "p50_zmq_ms": _pct(zmq_lat, 50), "p99_zmq_ms": _pct(zmq_lat, 99),
                "p50_ws_ms": _pct(ws_lat, 50), "p99_ws_ms": _pct(ws_lat, 99),
                "zmq_frames": len(zmq_lat), "ws_frames": len(ws_lat),
                "raw_forward_ms": round(forward[n], 3),
                "overhead_ratio": round((tick + send) / forward[n], 3),
            }
            row["holds_60fps"] = row["fps_min"] >= HOLD_FPS and dropped == 0
            rows.append(row)
    holding = [r["sessions"] for r in rows if r["path"] == "baked" and r["fps_min"] >= HOLD_FPS
               and (r["p99_zmq_ms"] or 1e9) < 20.0]
    result = {"benchmark": "runtime", "machine": machine(), "threads": args.threads, "encoding": args.encoding,
              "seconds": args.seconds, "vertices": _vertices(), "rows": rows, "bytes_per_frame": sizes,
              "largest_holding_60fps": max(holding) if holding else 0,
              "follow_unavailable": skipped}
    emit(result, args.json)
    followers = [f"{r['path']} x{r['sessions']}" for r in rows if ":" in r["path"] and r["holds_60fps"]]
    print(f"bench runtime: {len(rows)} runs; 60 fps with p99 ZeroMQ latency < 20 ms held up to "
          f"{result['largest_holding_60fps']} baked streams"
          + (f"; followers holding 60 fps: {', '.join(followers) or 'none'}" if args.follow else ""),
          file=sys.stderr)
    return 0


def _vertices() -> int:
    from models.face import synthface_template

    return synthface_template().n_vertices


@contextmanager
def served(*flags: str) -> Iterator[tuple[str, str, str]]:
    """A ``facecast serve`` process on free loopback ports (its own process, as
    a user runs it); yields its (ZeroMQ data, control, WebSocket URL)."""
    zp, cp, wp = free_port(), free_port(), free_port()
    zmq_ep, control = f"tcp://127.0.0.1:{zp}", f"tcp://127.0.0.1:{cp}"
    server = subprocess.Popen([sys.executable, "-m", "runtime.cli", "serve", "--zmq", zmq_ep, "--control", control,
                               "--ws", f"127.0.0.1:{wp}", *flags], stdout=subprocess.DEVNULL)
    try:
        _wait_for(control, server)
        yield zmq_ep, control, f"ws://127.0.0.1:{wp}/"
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()


def open_streams(control: str, n: int, **args) -> list[str]:
    """Open ``n`` looping 60 fps ``generate`` streams (the labels in turn, an identity each)
    and wait until every clip is baked; returns their ids."""
    from runtime.serve import query

    labels = query(control, {"cmd": "models"})["labels"]
    streams = []
    for i in range(n):
        reply = query(control, {"cmd": "open", "kind": "generate", "label": labels[i % len(labels)],
                                "identity": i, "loop": True, "fps": 60, "seed": i, **args})
        if not reply["ok"]:
            raise RuntimeError(f"open failed: {reply['error']}")
        streams.append(reply["stream"])
    _wait_playing(control, streams)
    return streams


def open_followers(control: str, n: int, kind: str, method: str) -> tuple[list[str], list[str]] | None:
    """``n`` baked generate streams and a ``kind`` stream (``neutral`` or
    ``transfer``, by ``method``) following each; None when the method is not
    loaded. Returns (followed, followers)."""
    from runtime.serve import query

    followed = open_streams(control, n)
    followers = []
    for i, sid in enumerate(followed):
        args = {"identity": n + i} if kind == "transfer" else {}
        reply = query(control, {"cmd": "open", "kind": kind, "of": sid, "method": method, **args})
        if not reply["ok"]:
            for s in followed + followers:
                query(control, {"cmd": "close", "stream": s})
            if reply["error"]["code"] == "unavailable":
                return None
            raise RuntimeError(f"open {kind} failed: {reply['error']}")
        followers.append(reply["stream"])
    return followed, followers


def _wait_for(control: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    from runtime.serve import query

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            raise RuntimeError(f"facecast serve exited with code {server.returncode}")
        try:
            query(control, {"cmd": "ping"}, timeout=1.0)
            return
        except ConnectionError:
            continue
    raise RuntimeError(f"facecast serve did not answer on {control} within {timeout:g} s")


def _wait_playing(control: str, streams: list[str]) -> None:
    from runtime.serve import query

    end = time.monotonic() + PREPARE_TIMEOUT
    wanted = set(streams)
    while time.monotonic() < end:
        listed = query(control, {"cmd": "list"})["streams"]
        if all(s["state"] == "playing" for s in listed if s["stream"] in wanted):
            return
        time.sleep(0.25)
    raise RuntimeError(f"streams still baking after {PREPARE_TIMEOUT:g} s")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runtime", help="concurrent 60 fps streams: fps, tick split, ZeroMQ/WebSocket latency")
    p.add_argument("--json", help="also write the JSON here")
    p.add_argument("--sessions", type=int, nargs="+", default=list(SESSIONS), help="session counts (default 1 8 32 64)")
    p.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS), help="decode paths (default both)")
    p.add_argument("--follow", nargs="*", default=list(FOLLOW),
                   help="following streams as KIND:METHOD (default %(default)s; none: --follow)")
    p.add_argument("--follow-sessions", type=int, nargs="+", default=list(FOLLOW_SESSIONS),
                   help="how many of each (default 8: 8 followed and 8 following streams)")
    p.add_argument("--seconds", type=float, default=5.0, help="measuring window per run (default 5)")
    p.add_argument("--threads", type=int, default=1, help="the server's torch threads (default 1)")
    p.add_argument("--encoding", default="q16", help="frame encoding (default q16)")
    p.set_defaults(func=run)
