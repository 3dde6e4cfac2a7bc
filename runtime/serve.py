"""``facecast serve``, ``facecast demo`` and ``facecast stats``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

from runtime import protocol as P

#: entry-point group of packages that ship a static web client (name -> callable returning its folder)
WEB = "facecast.web"
#: how long ``facecast stats`` waits for an answer (s)
STATS_TIMEOUT = 3.0


def add_serve_flags(p: argparse.ArgumentParser) -> None:
    from runtime.server import DEFAULT_CONTROL, DEFAULT_WS, DEFAULT_ZMQ

    p.add_argument("--zmq", default=DEFAULT_ZMQ, metavar="tcp://HOST:PORT",
                   help=f"ZeroMQ data endpoint, or 'off' (default {DEFAULT_ZMQ})")
    p.add_argument("--control", default=DEFAULT_CONTROL, metavar="tcp://HOST:PORT",
                   help=f"ZeroMQ control endpoint, or 'off' (default {DEFAULT_CONTROL})")
    p.add_argument("--ws", default=DEFAULT_WS, metavar="HOST:PORT",
                   help=f"WebSocket + web page, or 'off' (default {DEFAULT_WS})")
    p.add_argument("--models", action="append", default=[], metavar="DIR|FILE",
                   help="checkpoints to load before the shipped ones (repeatable)")
    p.add_argument("--no-shipped", action="store_true", help="do not fall back to the shipped checkpoints")
    p.add_argument("--fps", type=float, default=60.0, help="default stream frame rate (default 60)")
    p.add_argument("--encoding", choices=P.ENCODINGS, default=P.DEFAULT_ENCODING,
                   help=f"default frame encoding (default {P.DEFAULT_ENCODING})")
    p.add_argument("--token", default=os.environ.get("FACECAST_TOKEN"),
                   help="control commands must carry this token (required to bind beyond loopback; "
                        "default $FACECAST_TOKEN)")
    p.add_argument("--web", type=Path, help="static web client folder to serve over HTTP (default: the installed one)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the decoder (default 1)")
    p.add_argument("--max-streams", type=int, default=256, help="most streams open at once (default 256)")
    p.add_argument("--bake-budget-ms", type=float, default=8.0,
                   help="most decoder time per tick spent baking clips (default 8)")


def _off(value: str | None) -> str | None:
    return None if value in (None, "", "off", "none") else value


def web_folder() -> Path | None:
    """The static web client an installed package registers, if any."""
    for ep in entry_points(group=WEB):
        try:
            folder = Path(ep.load()())
        except Exception as exc:
            print(f"facecast: web client {ep.name!r} ({ep.value}) is unavailable: {exc}", file=sys.stderr)
            continue
        if folder.is_dir():
            return folder
    return None


def build(args: argparse.Namespace, clock_now: float):
    """The engine and server config the flags describe."""
    import torch

    from models.face import synthface_template
    from runtime.engine import Engine, EngineConfig
    from runtime.registry import Registry
    from runtime.server import ServeConfig, check_binds

    config = ServeConfig(zmq=_off(args.zmq), control=_off(args.control), ws=_off(args.ws),
                         web=args.web or web_folder(), token=args.token)
    check_binds(config)
    torch.set_num_threads(max(1, args.threads))
    registry = Registry.discover(synthface_template(), args.models, shipped=not args.no_shipped)
    engine = Engine(registry, EngineConfig(fps=args.fps, encoding=args.encoding, max_streams=args.max_streams,
                                           bake_budget_ms=args.bake_budget_ms, token=args.token), epoch=clock_now)
    engine.warm_up()
    return engine, config


def _announce(engine, config) -> None:
    print("facecast runtime: models")
    for line in engine.registry.summary().splitlines():
        print(f"  {line}")
    if config.zmq:
        print(f"  data     {config.zmq}  (ZeroMQ PUB, topics frame/<stream>)")
    if config.control:
        print(f"  control  {config.control}  (ZeroMQ ROUTER, msgpack)")
    if config.ws:
        print(f"  web      http://{config.ws}/  (WebSocket ws://{config.ws}/, JSON control)"
              + ("" if config.web else "  [no web client installed]"))
    sys.stdout.flush()


def serve(args: argparse.Namespace) -> int:
    from runtime.server import ServeError, serve_forever

    try:
        engine, config = build(args, time.monotonic())
        serve_forever(engine, config, on_ready=lambda server: (_announce(engine, config),
                                                                print("serving; Ctrl-C stops", flush=True)))
    except ServeError as exc:
        print(f"facecast serve: {exc}", file=sys.stderr)
        return 2
    print("facecast serve: stopped", flush=True)
    return 0


def register_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the runtime: stream faces over ZeroMQ and WebSocket")
    add_serve_flags(p)
    p.set_defaults(func=serve)


# ---------------------------------------------------------------- demo
def demo(args: argparse.Namespace) -> int:
    from runtime.server import ServeError, serve_forever

    try:
        engine, config = build(args, time.monotonic())
    except ServeError as exc:
        print(f"facecast demo: {exc}", file=sys.stderr)
        return 2
    opened: dict = {}
    viewer: list[subprocess.Popen] = []

    def start(server) -> None:
        _announce(engine, config)
        labels = list(engine.animator.labels) if "motion3dgan" in engine.registry.loaded else []
        reply = engine.handle({"cmd": "open", "kind": "playlist", "items": labels, "loop": True,
                               "identity": args.identity, "duration": args.item_seconds, "token": args.token},
                              server.clock())
        if not reply["ok"]:
            raise SystemExit(f"facecast demo: cannot open the demo stream: {reply['error']['message']}")
        opened["stream"] = reply["stream"]
        print(f"demo stream {reply['stream']}: the {len(labels)} expression labels in turn, blended at the apex, "
              f"on SynthFace identity {args.identity}, {reply['fps']:g} fps, {reply['enc']} frames", flush=True)
        if config.ws:
            print(f"open http://{config.ws}/ in a browser to watch it", flush=True)
        if not args.headless:
            viewer.extend(open_viewer(config))

    async def report(server) -> None:
        t0 = server.clock()
        seconds = args.seconds if args.seconds is not None else float("inf")
        while server.clock() - t0 < seconds:
            await asyncio.sleep(min(1.0, max(0.0, seconds - (server.clock() - t0))))
            if args.headless or args.seconds is not None:
                print(_live_line(engine, server.clock(), server.clock() - t0), flush=True)
            if viewer and viewer[0].poll() is not None and args.seconds is None:
                return                                   # the window was closed: the demo is over

    try:
        serve_forever(engine, config, on_ready=start, until=report)
    except ServeError as exc:
        print(f"facecast demo: {exc}", file=sys.stderr)
        return 2
    finally:
        close_viewers(viewer)
    print(_summary(engine), flush=True)
    return 0


def open_viewer(config) -> list[subprocess.Popen]:
    """``facecast view`` on the runtime's ZeroMQ endpoint in its own process, when there is one and a
    display to show it on: ``[the process]``, else ``[]``."""
    if not (config.zmq and _has_display()):
        return []
    cmd = [sys.executable, "-m", "runtime.cli", "view", config.zmq]
    print(f"viewer window: {' '.join(cmd[2:])}", flush=True)
    return [subprocess.Popen(cmd)]


def close_viewers(viewers: list[subprocess.Popen]) -> None:
    """Stop the viewer windows still open."""
    for v in viewers:
        if v.poll() is None:
            v.terminate()


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _live_line(engine, now: float, elapsed: float) -> str:
    st = engine.stats(now)
    streams = " ".join(f"{sid}: {v['frames']} frames ({v['fps_achieved']:.1f} fps, {v['dropped']} dropped)"
                       for sid, v in st["per_stream"].items())
    return (f"[{elapsed:5.1f} s] {streams or 'no streams'} | tick p50 {st['tick_ms']['p50']:.2f} ms "
            f"p99 {st['tick_ms']['p99']:.2f} ms | baked clips {st['cache'].get('clips', 0)}")


def _summary(engine) -> str:
    st = engine.stats_
    per = ", ".join(f"{s.id} sent {s.frames} frames" for s in engine.sessions.values())
    return f"demo: {st.frames} frames in {st.ticks} ticks; {per or 'no stream open'}"


def register_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="serve the shipped models and stream the 12 expressions on a SynthFace face")
    add_serve_flags(p)
    p.add_argument("--headless", action="store_true", help="no viewer window; print live stats")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    p.add_argument("--identity", type=int, default=0, help="SynthFace population index (default 0)")
    p.add_argument("--item-seconds", type=float, default=2.5, help="seconds per expression (default 2.5)")
    p.set_defaults(func=demo)


# ---------------------------------------------------------------- stats
def query(endpoint: str, command: dict, timeout: float = STATS_TIMEOUT) -> dict:
    """Send one control command to a running runtime and return its reply.

    Raises:
        ConnectionError: nothing answered within ``timeout`` seconds.
    """
    import msgpack
    import zmq

    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(msgpack.packb(command, use_bin_type=True))
        if not sock.poll(int(timeout * 1000)):
            raise ConnectionError(f"no facecast runtime answered on {endpoint} within {timeout:g} s "
                                  f"(is `facecast serve` running there?)")
        return msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
    finally:
        sock.close()


def stats(args: argparse.Namespace) -> int:
    from runtime.server import DEFAULT_CONTROL

    command = {"cmd": args.cmd}
    if args.token:
        command["token"] = args.token
    try:
        reply = query(args.control or DEFAULT_CONTROL, command, args.timeout)
    except ConnectionError as exc:
        print(f"facecast stats: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(reply, indent=1))
    return 0 if reply.get("ok") else 1


def register_stats(sub: argparse._SubParsersAction) -> None:
    from runtime.server import DEFAULT_CONTROL

    p = sub.add_parser("stats", help="ask a running runtime for its figures (JSON)")
    p.add_argument("--control", default=DEFAULT_CONTROL, help=f"its control endpoint (default {DEFAULT_CONTROL})")
    p.add_argument("--token", default=os.environ.get("FACECAST_TOKEN"), help="its token, if it has one")
    p.add_argument("--cmd", default="stats", choices=("stats", "list", "models", "ping"),
                   help="what to ask (default stats)")
    p.add_argument("--timeout", type=float, default=STATS_TIMEOUT, help="seconds to wait (default 3)")
    p.set_defaults(func=stats)
