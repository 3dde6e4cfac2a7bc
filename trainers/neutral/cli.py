"""``facecast train neutral`` and ``facecast eval neutral``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.paths import CHECKPOINTS, S2D_SYNTHFACE, data_dir

#: what ``train neutral --method`` takes; "s2d" fits the S2D method's landmark estimator
TRAINABLE = ("classical", "latent_gan", "pointnet_vae", "pointnet_vae_gt", "s2d")
#: the checkpoint file each method writes into ``--out``
FILES = {"classical": "classical", "latent_gan": "latent_gan", "pointnet_vae": "pointnet_vae",
         "pointnet_vae_gt": "pointnet_vae_gt", "s2d": "landmarks"}


def runs_dir() -> Path:
    return data_dir() / "runs" / "neutral"


def train_method(name: str, train, out: Path, minutes: float, show_progress: bool = True):
    """Train one method on ``train`` (a ``NeutralSet``) and write its checkpoint to ``out``."""
    if name == "classical":
        from trainers.neutral.classical import train_classical
        return train_classical(train, out, show_progress=show_progress)
    if name == "latent_gan":
        from trainers.neutral.latent_gan import train_latent_gan
        return train_latent_gan(train, out, minutes, show_progress=show_progress)
    if name in ("pointnet_vae", "pointnet_vae_gt"):
        from trainers.neutral.pointnet_vae import train_pointnet_vae
        return train_pointnet_vae(train, out, minutes, neutral_gt=name.endswith("_gt"), show_progress=show_progress)
    if name == "s2d":
        from trainers.neutral.s2d import train_landmark_estimator
        return train_landmark_estimator(train, out)
    raise ValueError(f"unknown method {name!r}; use one of {', '.join(TRAINABLE)}")


def training_set(args: argparse.Namespace):
    from trainers.neutral.data import NeutralDataConfig, folder_set, synth_set

    if args.data:
        return folder_set(args.data)
    return synth_set(NeutralDataConfig(identities=args.identities, expressions=args.expressions, seed=args.seed))


def cmd_train(args: argparse.Namespace) -> int:
    from models.checkpoint import CheckpointError
    from trainers.data.cache import DataError

    methods = TRAINABLE if args.method == "all" else (args.method,)
    out = Path(args.out)
    try:
        train = training_set(args)
        for name in methods:
            train_method(name, train, out / f"{FILES[name]}.safetensors", args.minutes,
                         show_progress=not args.quiet)
    except (ValueError, DataError, CheckpointError, OSError) as exc:
        print(f"facecast train neutral: {exc}", file=sys.stderr)
        return 2
    return 0


def load_methods(paths: list[Path], s2d: Path) -> tuple[dict, list[str]]:
    """``{name: (method, checkpoint)}`` from ``paths`` in order, and the problems met."""
    import torch

    from models.face import synthface_template
    from models.neutral import discover
    from models.s2d import load_s2d

    template = synthface_template()
    problems: list[str] = []
    try:
        with torch.no_grad():
            decoder, _ = load_s2d(s2d, template.topology_id)
    except Exception as exc:           # a broken S2D-Dec leaves the other methods measurable
        decoder = None
        problems.append(f"{s2d}: S2D-Dec unavailable, so no s2d method ({exc})")
    found, more = discover(paths, template.topology_id, decoder, template)
    return found, problems + more


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from trainers.bench import emit, machine
    from trainers.neutral.evaluate import QUICK, NeutralEvalConfig, headline, run
    from trainers.progress import summary

    paths = [Path(p) for p in args.models]
    if not args.quick and not args.models:
        paths = [runs_dir()]
    paths.append(CHECKPOINTS)
    torch.set_num_threads(args.threads)
    found, problems = load_methods(paths, Path(args.s2d))
    for line in problems:
        print(f"facecast eval neutral: {line}", file=sys.stderr)
    cfg = QUICK if args.quick else NeutralEvalConfig()
    if args.identities:
        cfg = NeutralEvalConfig(**{**cfg.__dict__, "identities": args.identities})
    with torch.no_grad():
        result = run(found, cfg, show_progress=not args.quiet, plots=Path(args.plots) if args.plots else None)
    result["problems"] = problems
    result["mode"] = "quick" if args.quick else "full"
    result["machine"] = machine()
    emit(result, args.json)
    summary(headline(result))
    return 0


def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neutral", help="train the neutralizers (classical, latent GAN, PointNet VAE, S2D landmarks)")
    p.add_argument("--method", default="all", choices=TRAINABLE + ("all",))
    p.add_argument("--out", default=str(runs_dir()), help="folder for the checkpoints (default %(default)s)")
    p.add_argument("--minutes", type=float, default=8.0, help="training budget per learned network (default 8)")
    p.add_argument("--identities", type=int, default=240, help="SynthFace training identities (default 240)")
    p.add_argument("--expressions", type=int, default=24, help="expressive faces per identity (default 24)")
    p.add_argument("--data", help="train on a 4D data folder (CoMA layout or facecast data) instead of SynthFace")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neutral", help="neutralization and transfer, every method on unseen identities")
    p.add_argument("--json", help="write the JSON here too (it always goes to stdout)")
    p.add_argument("--quick", action="store_true",
                   help="the shipped checkpoints on 16 identities x 12 expressions (under two minutes)")
    p.add_argument("--models", nargs="*", default=[],
                   help=f"checkpoint files or folders searched first (default {runs_dir()}, then the shipped ones)")
    p.add_argument("--s2d", default=str(S2D_SYNTHFACE), help="the S2D-Dec checkpoint (default %(default)s)")
    p.add_argument("--identities", type=int, help="unseen test identities (default 40, --quick 16)")
    p.add_argument("--plots", help="write the PNGs (per-label bars, error heat maps) into this folder")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_eval)
