"""``facecast train tracker`` and ``facecast eval tracker``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.paths import TRACKER_SYNTHFACE as SHIPPED
from models.paths import data_dir


def runs_dir() -> Path:
    return data_dir() / "runs" / "tracker"


def samples(split: str, n: int, seed: int, folder: str | None, show_progress: bool):
    """Renders of ``split``: read from a ``facecast data tracker`` folder, else rendered now."""
    from trainers.tracker.renders import TrackerRenderConfig, TrackerSet, render_samples

    if folder:
        return TrackerSet.open(folder).samples(n)
    return render_samples(TrackerRenderConfig(seed=seed, split=split), n, show_progress=show_progress)


def cmd_train(args: argparse.Namespace) -> int:
    from models.checkpoint import CheckpointError
    from models.face import synthface
    from models.tracking.bilinear import load_bilinear
    from models.tracking.cascade import CascadeConfig, save_tracker
    from trainers.progress import summary
    from trainers.tracker.train import TrackerTrainConfig, train_cascade

    try:
        face = synthface()
        cfg = TrackerTrainConfig(images=args.images, cascade=CascadeConfig(stages=args.stages, ridge=args.ridge),
                                 seed=args.seed)
        model = load_bilinear(face, cfg.bilinear, show_progress=not args.quiet)
        train = samples("train", args.images, args.seed, args.data, not args.quiet)
        cascade, report = train_cascade(train, model, face, cfg, show_progress=not args.quiet)
        out = Path(args.out)
        save_tracker(out, cascade, data={"renders": len(train), "split": "train", "seed": args.seed,
                                         "source": args.data or "rendered by facecast train tracker"},
                     metrics=report)
    except (ValueError, CheckpointError, OSError) as exc:
        print(f"facecast train tracker: {exc}", file=sys.stderr)
        return 2
    err = report["coefficient_error_per_stage"]
    summary(f"train tracker: {len(err) - 1} stages on {report['images']} renders in {report['seconds']:.0f} s; "
            f"coefficient error {err[0]:.4f} -> {err[-1]:.4f}; wrote {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from models.checkpoint import CheckpointError
    from models.face import synthface
    from models.tracking.cascade import load_tracker
    from trainers.bench import emit, machine
    from trainers.progress import summary
    from trainers.tracker.evaluate import evaluate, headline

    n = args.images or (60 if args.quick else 400)
    try:
        face = synthface()
        cascade = load_tracker(args.checkpoint, face)
        test = samples("test", n, args.seed, args.data, not args.quiet)
        result = evaluate(cascade, test, face, show_progress=not args.quiet,
                          plots=Path(args.plots) if args.plots else None)
    except (ValueError, CheckpointError, OSError) as exc:
        print(f"facecast eval tracker: {exc}", file=sys.stderr)
        return 2
    result.update({"checkpoint": str(args.checkpoint), "mode": "quick" if args.quick else "full",
                   "machine": machine()})
    emit(result, args.json)
    summary(headline(result))
    return 0


def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tracker", help="learn the tracker's cascade on SynthFace renders")
    p.add_argument("--images", type=int, default=1200, help="training renders (default 1200)")
    p.add_argument("--stages", type=int, default=4, help="cascade stages (default 4)")
    p.add_argument("--ridge", type=float, default=1.0, help="ridge strength (default 1)")
    p.add_argument("--data", help="a facecast data tracker folder (default: render afresh)")
    p.add_argument("--out", default=str(runs_dir() / "tracker.safetensors"), help="checkpoint (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tracker", help="the cascade against landmark fitting on held-out renders (JSON)")
    p.add_argument("--checkpoint", default=str(SHIPPED), help="tracker checkpoint (default %(default)s)")
    p.add_argument("--images", type=int, help="held-out renders (default 400, --quick 60)")
    p.add_argument("--quick", action="store_true", help="60 renders")
    p.add_argument("--data", help="a facecast data tracker folder of the test split (default: render afresh)")
    p.add_argument("--json", help="write the JSON here too (it always goes to stdout)")
    p.add_argument("--plots", help="write the PNG (MAE per stage and yaw bin) into this folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_eval)
