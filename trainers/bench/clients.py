"""``facecast bench clients``: do the clients keep up with many 60 fps streams?

A ``facecast serve`` process on loopback ports (as a user runs it) with
``--streams`` looping 60 fps ``generate`` streams (baked), then, one after
the other so they do not compete for the CPU:

* the Python client (``clients.python``), blocking and asyncio, over ZeroMQ
  and over WebSocket, subscribed to every stream for ``--seconds``: frames
  per second of each stream (every frame's vertices decoded, as a real
  consumer does), latency from the engine tick that made a frame to its
  arrival (p50 / p99), frames lost (gaps in ``seq``);
* the browser page (``clients/web``) in Debian's headless Chromium
  (Playwright), which receives every stream and draws the one it shows:
  after ``PAGE_SETTLE_S`` (the page picks its render resolution, one step a
  second), once a second for ``--seconds`` it reads the page's own counters
  (``window.facecast``): the shown stream's received fps, the draw fps,
  the slowest stream's received fps, the median latency, dropped frames,
  the page's own JavaScript milliseconds per drawn frame, and the render
  resolution it settled on (1 = the canvas's own pixels); once adapting its
  resolution, once at the full resolution (``?scale=1``).

A client "keeps 60 fps" when its slowest stream's fps is at least 59 over
the window (and, for the page, its draw fps too).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time

import numpy as np

from trainers.bench import emit, machine
from trainers.bench.runtime import open_streams, served
from trainers.progress import progress

#: Debian's Chromium (make system-deps installs it)
CHROMIUM = "/usr/bin/chromium"
#: a client keeps a 60 fps stream when it gets at least this many frames per second
KEEPS_FPS = 59.0
#: clients connect and subscribe for this long before measuring (s)
SETTLE_S = 1.0
#: the page settles its dynamic resolution (a step a second) for this long before measuring (s)
PAGE_SETTLE_S = 10.0
#: the browser window (CSS pixels)
VIEWPORT = (960, 720)
PYTHON_RUNS = (("zmq", "sync"), ("ws", "sync"), ("zmq", "asyncio"), ("ws", "asyncio"))


def _summary(transport: str, api: str, frames: dict[str, int], latency: list[float], dropped: int,
             seconds: float, streams: list[str]) -> dict:
    fps = [frames.get(s, 0) / seconds for s in streams]
    return {"client": "python", "transport": transport, "api": api, "fps_min": round(min(fps), 2),
            "fps_mean": round(float(np.mean(fps)), 2),
            "p50_ms": round(float(np.percentile(latency, 50)), 2) if latency else None,
            "p99_ms": round(float(np.percentile(latency, 99)), 2) if latency else None,
            "dropped": dropped, "keeps_60fps": min(fps) >= KEEPS_FPS}


def python_run(transport: str, api: str, urls: tuple[str, str, str], streams: list[str], seconds: float) -> dict:
    """One Python client subscribed to every stream for ``seconds``."""
    from clients.python import AsyncFacecastClient, FacecastClient, MeshFrame

    zmq_ep, control, ws_url = urls
    url = zmq_ep if transport == "zmq" else ws_url
    frames: dict[str, int] = {}
    latency: list[float] = []

    def take(frame: MeshFrame, measuring: bool) -> None:
        frame.vertices                                  # decode it, as a consumer would
        if measuring:
            frames[frame.stream] = frames.get(frame.stream, 0) + 1
            latency.append(frame.latency_ms)

    if api == "sync":
        with FacecastClient(url, control=control) as client:
            settle = time.monotonic() + SETTLE_S
            end = settle + seconds
            before = 0
            while (now := time.monotonic()) < end:
                event = client.poll(end - now)
                if isinstance(event, MeshFrame):
                    take(event, now >= settle)
                if now < settle:
                    before = client.dropped
            dropped = client.dropped - before
    else:
        async def main() -> int:
            client = await AsyncFacecastClient.connect(url, control=control)
            async with client:
                settle = time.monotonic() + SETTLE_S
                end = settle + seconds
                before = 0
                while (now := time.monotonic()) < end:
                    event = await client.poll(end - now)
                    if isinstance(event, MeshFrame):
                        take(event, now >= settle)
                    if now < settle:
                        before = client.dropped
                return client.dropped - before

        dropped = asyncio.run(main())
    return _summary(transport, api, frames, latency, dropped, seconds, streams)


def web_run(ws_url: str, streams: list[str], seconds: float, scale: float | None = None) -> dict:
    """The browser page in headless Chromium; its counters sampled once a second.
    ``scale`` fixes its render resolution (None: the page adapts it)."""
    from playwright.sync_api import sync_playwright

    page_url = ws_url.replace("ws://", "http://") + ("" if scale is None else f"?scale={scale}")
    samples: list[dict] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--use-angle=swiftshader",
                                                                    "--enable-unsafe-swiftshader",
                                                                    "--ignore-gpu-blocklist"])
        try:
            page = browser.new_page(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
            page.goto(page_url)
            page.wait_for_function("window.facecast && window.facecast.state === 'open' "
                                   "&& window.facecast.shownFrames > 0", timeout=30_000)
            renderer = page.evaluate("""() => {
                const gl = document.createElement('canvas').getContext('webgl2');
                const ext = gl && gl.getExtension('WEBGL_debug_renderer_info');
                return gl ? (ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER))
                          : 'no WebGL2';
            }""")
            page.wait_for_timeout(PAGE_SETTLE_S * 1000)
            before = page.evaluate("window.facecast.dropped")
            for _ in range(max(1, round(seconds))):
                page.wait_for_timeout(1000)
                samples.append(page.evaluate("JSON.parse(JSON.stringify(window.facecast))"))
            dropped = samples[-1]["dropped"] - before
        finally:
            browser.close()
    per_stream = [min(s["perStream"].get(sid, {}).get("fps", 0.0) for s in samples) for sid in streams]
    shown = [s["fps"] for s in samples]
    draw = [s["drawFps"] for s in samples]
    latency = [s["latencyMs"] for s in samples if s["latencyMs"] is not None]
    frame_ms = [s["frameMs"] for s in samples if s["frameMs"] is not None]
    return {"client": "web", "transport": "ws", "api": "chromium", "renderer": renderer,
            "resolution": "adaptive" if scale is None else f"fixed {scale:g}",
            "page_ms_per_frame": round(float(np.median(frame_ms)), 3) if frame_ms else None,
            "viewport": list(VIEWPORT), "render_scale": [min(s["renderScale"] for s in samples),
                                                         max(s["renderScale"] for s in samples)],
            "shown_fps_min": round(min(shown), 2), "draw_fps_min": round(min(draw), 2),
            "draw_fps_mean": round(float(np.mean(draw)), 2), "fps_min": round(min(per_stream), 2),
            "latency_ms_median": round(float(np.median(latency)), 2) if latency else None,
            "dropped": dropped, "keeps_60fps": min(per_stream) >= KEEPS_FPS and min(draw) >= KEEPS_FPS}


def run(args: argparse.Namespace) -> int:
    rows: list[dict] = []
    web = not args.no_web
    if web and not shutil.which(CHROMIUM):
        print(f"bench clients: {CHROMIUM} is absent (Debian package chromium; make system-deps installs it): "
              f"the page is not measured", file=sys.stderr)
        web = False
    plan = [("python", t, a, None) for t, a in PYTHON_RUNS]
    plan += [("web", "ws", "chromium", None), ("web", "ws", "chromium", 1.0)] if web else []
    with served("--threads", "1") as urls:
        streams = open_streams(urls[1], args.streams)
        for client, transport, api, scale in progress(plan, desc="bench clients", unit="client"):
            if client == "python":
                rows.append(python_run(transport, api, urls, streams, args.seconds))
            else:
                rows.append(web_run(urls[2], streams, args.seconds, scale))
    result = {"benchmark": "clients", "machine": machine(), "streams": args.streams, "fps": 60,
              "seconds": args.seconds, "rows": rows}
    emit(result, args.json)
    keeping = [f"{r['client']}/{r['transport']}/{r['api']}" + (f" ({r['resolution']})" if "resolution" in r else "")
               for r in rows if r["keeps_60fps"]]
    print(f"bench clients: {len(keeping)} of {len(rows)} clients keep 60 fps on all {args.streams} streams"
          + (f" ({', '.join(keeping)})" if keeping else ""), file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clients", help="Python client and browser page with N 60 fps streams: fps, latency, drops")
    p.add_argument("--json", help="also write the JSON here")
    p.add_argument("--streams", type=int, default=8, help="concurrent 60 fps streams (default 8)")
    p.add_argument("--seconds", type=float, default=5.0, help="measuring window per client (default 5)")
    p.add_argument("--no-web", action="store_true", help="measure the Python client only")
    p.set_defaults(func=run)
