"""``facecast track --camera N | --video FILE | --images DIR``: live tracking through the runtime.

Serves like ``facecast serve`` (same flags) with one ``track`` stream: the
input tracked on its own thread (``runtime.tracking.source``), streamed at
the runtime's frame rate over ZeroMQ and WebSocket; ``--show`` opens the
viewer on it. Prints one status line a second (frames read, tracked, held,
the problem if any, ms per stage); a video or an image folder ends the
command when it ends, a camera runs until Ctrl-C or ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time


def track(args: argparse.Namespace) -> int:
    from models.checkpoint import CheckpointError
    from models.face import synthface
    from models.paths import TRACKER_SYNTHFACE
    from models.tracking.cascade import load_tracker
    from models.tracking.dlib68 import Dlib68, TrackerUnavailable
    from runtime.serve import _announce, build, close_viewers, open_viewer
    from runtime.server import ServeError, serve_forever
    from runtime.tracking.frames import TrackingInputError, open_frames
    from runtime.tracking.pipeline import Tracker, TrackerConfig
    from runtime.tracking.source import TrackSource

    spec = f"camera:{args.camera}" if args.camera is not None else (args.video or args.images)
    try:
        frames = open_frames(spec, size=(args.width, args.height) if args.width else None)
        face = synthface()
        cascade = load_tracker(args.checkpoint or TRACKER_SYNTHFACE, face)
        dlib68 = Dlib68()
        engine, config = build(args, time.monotonic())
    except (TrackingInputError, TrackerUnavailable, CheckpointError, ServeError, OSError) as exc:
        print(f"facecast track: {exc}", file=sys.stderr)
        return 2
    tracker = Tracker(cascade.fitter, dlib68, cascade, TrackerConfig(detect_every=args.detect_every))
    opened: dict = {}
    viewer: list[subprocess.Popen] = []

    def start(server) -> None:
        _announce(engine, config)
        source = TrackSource(frames, tracker, face.template)
        opened["stream"] = engine.attach(source, server.clock())
        opened["source"] = source
        print(f"track stream {opened['stream']}: {frames.describe()['name']} ({cascade.trained_stages} cascade "
              f"stages, detection every {args.detect_every} frames)", flush=True)
        if args.show:
            viewer.extend(open_viewer(config))

    async def report(server) -> None:
        t0 = server.clock()
        limit = args.seconds if args.seconds is not None else float("inf")
        while server.clock() - t0 < limit:
            await asyncio.sleep(1.0)
            sid = opened.get("stream")
            if sid is None:
                continue
            d = opened["source"].describe()
            print(f"[{server.clock() - t0:5.1f} s] {d['frames']} frames read: {d['tracking']} tracked, "
                  f"{d['held']} held, {d['none']} before a face"
                  + (f" | {', '.join(f'{k} {v:.1f}' for k, v in d['ms'].items())} ms" if d["ms"] else "")
                  + (f" | {frames.describe()['ended_early']}" if frames.describe()["ended_early"] else "")
                  + (f" | error: {d['error']}" if "error" in d else ""), flush=True)
            if sid not in engine.sessions:
                return                                       # the input ended and its last frame was sent

    try:
        serve_forever(engine, config, on_ready=start, until=report)
    except ServeError as exc:
        print(f"facecast track: {exc}", file=sys.stderr)
        return 2
    finally:
        if "source" in opened:
            opened["source"].close()
        else:
            frames.close()
        close_viewers(viewer)
    d = opened["source"].describe() if "source" in opened else {"frames": 0, "tracking": 0, "held": 0}
    print(f"track: {d['frames']} frames read, {d['tracking']} tracked, {d['held']} held; "
          f"stream {opened.get('stream')} sent {engine.stats_.frames} frames", flush=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from runtime.serve import add_serve_flags

    p = sub.add_parser("track", help="track a face from a camera, a video or images and stream it")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--camera", type=int, metavar="N", help="camera device number")
    src.add_argument("--video", metavar="FILE", help="a video file")
    src.add_argument("--images", metavar="DIR", help="a folder of images (played at 30 fps)")
    add_serve_flags(p)
    p.add_argument("--checkpoint", help="tracker checkpoint (default: the shipped one)")
    p.add_argument("--detect-every", type=int, default=10, help="re-detect at least every N frames (default 10)")
    p.add_argument("--width", type=int, help="resize frames to this width ...")
    p.add_argument("--height", type=int, default=480, help="... and height (default: as read)")
    p.add_argument("--show", action="store_true", help="open the viewer window on the stream")
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p.set_defaults(func=track)
