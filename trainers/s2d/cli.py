"""``facecast train s2d``, ``facecast eval s2d`` and ``facecast bench s2d``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.paths import S2D_SYNTHFACE, data_dir


def shipped_checkpoint() -> Path:
    """Where the shipped S2D-Dec checkpoint lives (``models/checkpoints``)."""
    return S2D_SYNTHFACE


def _data(path: str):
    from trainers.data.cache import FaceData

    return FaceData.open(path)


def cmd_train(args: argparse.Namespace) -> int:
    from models.checkpoint import CheckpointError
    from trainers.data.cache import DataError
    from trainers.s2d.train import S2DTrainConfig, train_s2d

    try:
        cfg = S2DTrainConfig(model=args.model, split=args.split, folds=args.folds, fold=args.fold,
                             frame_step=args.frame_step, epochs=args.epochs, weighting=args.weighting,
                             seed=args.seed, time_limit_s=args.minutes * 60, threads=args.threads)
        data = _data(args.data)
        _, _, metrics = train_s2d(data, cfg, out=args.out)
    except (ValueError, DataError, CheckpointError) as exc:
        print(f"facecast train s2d: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: held-out {metrics['split']} fold {metrics['fold']} "
          f"{metrics['test_mean_mm']:.4f} +- {metrics['test_std_mm']:.4f} mm per vertex "
          f"({metrics['epochs']} epochs, {metrics['train_seconds']:.0f} s)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from models.checkpoint import CheckpointError
    from trainers.bench import emit
    from trainers.data.cache import DataError
    from trainers.s2d.evaluate import full_eval, quick_eval
    from trainers.s2d.train import S2DTrainConfig

    try:
        data = _data(args.data)
        if args.quick:
            result = quick_eval(data, Path(args.checkpoint))
        else:
            base = S2DTrainConfig(folds=args.folds, frame_step=args.frame_step, epochs=args.epochs,
                                  time_limit_s=args.minutes_per_network * 60, threads=args.threads)
            result = full_eval(data, args.split, base, Path(args.plots), ablation=not args.no_ablation)
    except (ValueError, DataError, CheckpointError) as exc:
        print(f"facecast eval s2d: {exc}", file=sys.stderr)
        return 2
    emit(result, args.json)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(data_dir() / "synth"), help="data folder (default %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: measured fastest here)")


def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("s2d", help="train S2D-Dec on a data folder's split")
    _common(p)
    p.add_argument("--out", default=str(shipped_checkpoint()), help="checkpoint to write (default %(default)s)")
    p.add_argument("--model", default="s2d", choices=("s2d", "neural3dmm"))
    p.add_argument("--split", default="identity", choices=("identity", "expression"))
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--fold", type=int, default=3, help="held-out fold (default 3: the last subjects)")
    p.add_argument("--frame-step", type=int, default=4, help="use every Nth frame of each sequence (default 4)")
    p.add_argument("--epochs", type=int, default=1000, help="epochs at most (the time budget usually ends it)")
    p.add_argument("--minutes", type=float, default=25.0, help="training time budget (default 25)")
    p.add_argument("--weighting", default="landmark", choices=("landmark", "uniform", "none"))
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)


def register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("s2d", help="the S2D paper's Tables 1 and 2 (JSON)")
    _common(p)
    p.add_argument("--split", default="identity", choices=("identity", "expression"))
    p.add_argument("--json", help="also write the JSON here")
    p.add_argument("--quick", action="store_true", help="the shipped checkpoint and PCA on its held-out fold")
    p.add_argument("--checkpoint", default=str(shipped_checkpoint()))
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--frame-step", type=int, default=8, help="every Nth frame of each sequence (default 8)")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--minutes-per-network", type=float, default=4.0, help="training budget of each network")
    p.add_argument("--no-ablation", action="store_true", help="skip Table 2 (run on the split's last fold)")
    p.add_argument("--plots", default=str(data_dir() / "runs" / "s2d"),
                   help="folder for the cumulative error curves PNG (default %(default)s)")
    p.set_defaults(func=cmd_eval)
