"""``facecast bench tracker``: the live tracking pipeline on a rendered video with ground truth.

A 640x480 clip of one unseen SynthFace identity (``trainers.tracker.renders
.render_sequence``): ``--still`` seconds of a still face (slightly turned),
then expressions (mouth open, smile) while the head turns between -25 and
+25 degrees of yaw, at 30 fps. The frames go through the real stages
(``runtime.tracking.pipeline.Tracker``: dlib detection every
``--detect-every`` frames or when lost, dlib's 68 landmarks, landmark
fitting warm-started, the cascade, the One Euro filter), one thread.

Figures: milliseconds per stage (detection amortised over all frames),
end-to-end fps (frames over the pipeline's own wall time; the frames are
decoded beforehand), MAE of the streamed mesh against the true one (mm,
after the best similarity, as ``facecast eval tracker``), and jitter: the
mean over vertices of each vertex's standard deviation over the still part
(after its first second, mm), where the truth does not move at all; every
frame carries fresh sensor noise (``SENSOR_NOISE``), so a still face's
frames differ as a webcam's do.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from trainers.bench import emit, machine
from trainers.progress import progress

FPS = 30.0
SIZE = (640, 480)
#: per-frame Gaussian pixel noise (8-bit levels), as a webcam's sensor gives
SENSOR_NOISE = 3.0
#: the still part's first second is left out of the jitter (the track and filter settle)
SETTLE_S = 1.0


def clip(still_s: float, moving_s: float, seed: int):
    """``(images [T, H, W, 3], identity [35], weights [T, 52], yaw_deg [T])``."""
    from models.face.labels import apex_weights
    from models.tracking.camera import Pose, rotation_from_euler
    from trainers.neutral.data import split_identities
    from trainers.tracker.renders import TrackerRenderConfig, render_sequence

    n_still, n_move = int(still_s * FPS), int(moving_s * FPS)
    t = np.arange(n_move) / FPS
    rng = np.random.default_rng(seed)
    mouth = apex_weights("mouth_open", rng)[0]
    smile = apex_weights("high_smile", rng)[0]
    ramp = np.sin(np.pi * t / max(moving_s, 1e-6)) ** 2                      # 0 -> 1 -> 0
    mix = np.clip(np.sin(2 * np.pi * t / max(moving_s, 1e-6)), 0, 1)
    weights = np.concatenate([np.zeros((n_still, 52)),
                              ramp[:, None] * ((1 - mix)[:, None] * mouth + mix[:, None] * smile)]).astype(np.float32)
    yaw = np.concatenate([np.full(n_still, 10.0), 10.0 - 35.0 * np.sin(3 * np.pi * t / max(moving_s, 1e-6))])
    yaw = np.clip(yaw, -25.0, 25.0)
    identity = split_identities("test", seed + 1)[seed]
    scale = 1100.0
    poses = [Pose(rotation_from_euler(np.radians(y), np.radians(-4.0), np.radians(2.0)), scale,
                  np.array([SIZE[0] / 2, SIZE[1] / 2 + 20.0])) for y in yaw]
    images = render_sequence(identity, weights, poses, TrackerRenderConfig(size=SIZE, seed=seed, split="test"))
    # a camera's sensor noise, new every frame (without it a still face gives identical frames)
    noise = np.random.default_rng([seed, 11])
    for img in images:
        img[:] = np.clip(img + noise.normal(0.0, SENSOR_NOISE, img.shape), 0, 255).astype(np.uint8)
    return images, identity, weights, yaw


def run(args: argparse.Namespace) -> int:
    from models.face import synthface
    from models.tracking.cascade import load_tracker
    from models.tracking.dlib68 import Dlib68, TrackerUnavailable
    from runtime.tracking.pipeline import Tracker, TrackerConfig
    from trainers.tracker.cli import SHIPPED
    from trainers.tracker.evaluate import errors

    import torch

    torch.set_num_threads(1)
    face = synthface()
    try:
        dlib68 = Dlib68()
        cascade = load_tracker(args.checkpoint or SHIPPED, face)
    except (TrackerUnavailable, ValueError, OSError) as exc:
        print(f"facecast bench tracker: {exc}", file=sys.stderr)
        return 2
    images, identity, weights, yaw = clip(args.still, args.moving, args.seed)
    truth = face.vertices(np.repeat(identity[None], len(weights), axis=0), weights)
    tracker = Tracker(cascade.fitter, dlib68, cascade, TrackerConfig(detect_every=args.detect_every))
    frames, wall = [], 0.0
    for i in progress(range(len(images)), total=len(images), desc="bench tracker", unit="frame"):
        t0 = time.perf_counter()
        frames.append(tracker.process(images[i], i / FPS))
        wall += time.perf_counter() - t0
    stages = ("detect", "landmarks", "fit", "cascade", "filter", "sink")
    ms = {s: float(np.sum([f.ms.get(s, 0.0) for f in frames]) / len(frames)) for s in stages}
    tracked = [i for i, f in enumerate(frames) if f.status == "tracking"]
    mae = [errors(frames[i].mesh, truth[i])[:3].mean() for i in tracked]
    n_still = int(args.still * FPS)
    still = [frames[i].mesh for i in range(int(SETTLE_S * FPS), n_still) if frames[i].mesh is not None]
    jitter = float(np.std(np.stack(still), axis=0).mean() * 1e3) if len(still) > 2 else None
    result = {
        "benchmark": "tracker", "machine": machine(), "size": list(SIZE), "frames": len(frames),
        "fps": len(frames) / wall, "ms": ms, "ms_total": 1e3 * wall / len(frames),
        "mae_mm": float(np.mean(mae)) if mae else None, "jitter_mm": jitter,
        "tracked_share": len(tracked) / len(frames), "detect_every": args.detect_every,
        "cascade_stages": cascade.trained_stages, "yaw_range_deg": [float(yaw.min()), float(yaw.max())],
        "problems": sorted({f.problem for f in frames if f.problem}),
    }
    emit(result, args.json)
    print(f"bench tracker: {result['fps']:.1f} fps end to end at 640x480 "
          f"({', '.join(f'{k} {v:.1f}' for k, v in ms.items())} ms); MAE {result['mae_mm'] or float('nan'):.2f} mm, "
          f"jitter {jitter if jitter is not None else float('nan'):.3f} mm, "
          f"{100 * result['tracked_share']:.0f} % of frames tracked", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tracker", help="live tracking stages and fps on a rendered 640x480 video with ground truth")
    p.add_argument("--json", help="also write the JSON here")
    p.add_argument("--checkpoint", help="tracker checkpoint (default: the shipped one)")
    p.add_argument("--still", type=float, default=3.0, help="seconds of a still face (default 3)")
    p.add_argument("--moving", type=float, default=5.0, help="seconds of expressions and head turns (default 5)")
    p.add_argument("--detect-every", type=int, default=10, help="re-detect at least every N frames (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
