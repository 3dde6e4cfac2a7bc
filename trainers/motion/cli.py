"""``facecast train motion``, ``facecast eval motion`` and ``facecast bench motion``."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

from models.paths import CHECKPOINTS, data_dir

SHIPPED = CHECKPOINTS
NAME = "synthface"
#: default threads for torch and BLAS: these models are small, and on a machine shared with other
#: work one thread ran the GAN about 6x faster than two fighting for the same cores
THREADS = 1


@contextmanager
def threads(n: int):
    """Limit torch's and the BLAS libraries' threads to ``n`` for a command, then restore them."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def _errors():
    from models.checkpoint import CheckpointError
    from trainers.data.cache import DataError

    return (CheckpointError, DataError, ValueError, FileNotFoundError)


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from trainers.motion.baseline import LstmConfig
    from trainers.motion.classifier import ClassifierConfig
    from trainers.motion.gan import REFERENCES, GanConfig
    from trainers.motion.train import MotionTrainConfig, run, write_record

    references = REFERENCES if args.reference == "both" else (args.reference,)
    gan = GanConfig(epochs=args.gan_epochs, seed=args.seed, reference_label=args.reference_label,
                    time_limit_s=args.gan_minutes * 60 if args.gan_minutes else None)
    cfg = MotionTrainConfig(data=args.data, out=args.out, plots=args.plots, name=args.name, references=references,
                            gan=gan, lstm=LstmConfig(epochs=args.lstm_epochs, seed=args.seed),
                            classifier=ClassifierConfig(epochs=args.classifier_epochs, seed=args.seed))
    if args.quick:
        cfg = replace(cfg, gan=replace(cfg.gan, epochs=2, eval_every=1), lstm=replace(cfg.lstm, epochs=2),
                      classifier=replace(cfg.classifier, epochs=1))
    try:
        with threads(args.threads):
            record = run(cfg, show_progress=not args.quiet)
    except _errors() as exc:
        print(f"facecast train motion: {exc}", file=sys.stderr)
        return 2
    if args.json:
        write_record(record, args.json)
    return 0


def load_all(checkpoints: Path, name: str = NAME, gan: str | None = None, lstm: str | None = None,
             classifier: str | None = None):
    """The three models of a run (explicit files win over ``checkpoints/<kind>_<name>``)."""
    from models.motion3dgan import load_motion3dgan
    from trainers.motion.baseline import load_lstm
    from trainers.motion.classifier import load_classifier
    from trainers.motion.train import checkpoint_paths

    paths = checkpoint_paths(checkpoints, name)
    return (load_motion3dgan(gan or paths["gan"]), load_lstm(lstm or paths["lstm"]),
            load_classifier(classifier or paths["classifier"]))


def cmd_eval(args: argparse.Namespace) -> int:
    from trainers.bench import emit, machine
    from trainers.data.cache import FaceData
    from trainers.motion.data import load_motion_data
    from trainers.motion.det_lm import S2D_CHECKPOINT, s2d_decoder
    from trainers.motion.evaluate import QUICK, EvalConfig, evaluate
    from trainers.progress import summary

    cfg = QUICK if args.quick else EvalConfig()
    try:
        gan, lstm, clf = load_all(Path(args.checkpoints), args.name, args.gan, args.lstm, args.classifier)
        if list(gan.cfg.labels) != list(clf.labels) or list(gan.cfg.labels) != list(lstm.labels):
            raise ValueError("the Motion3DGAN, LSTM and classifier checkpoints were trained on different labels")
        data = load_motion_data(args.data)
        if data.labels != list(clf.labels):
            raise ValueError(f"{args.data}: labels {data.labels} differ from the checkpoints' {list(clf.labels)}")
        face = FaceData.open(args.data)
        decoder, note = (None, "skipped (--no-det-lm)") if args.no_det_lm else \
            s2d_decoder(args.s2d or S2D_CHECKPOINT, face.template.topology_id)
        with threads(args.threads):
            result = evaluate(data, gan, lstm, clf, cfg, face=face, decoder=decoder, decoder_note=note)
    except _errors() as exc:
        print(f"facecast eval motion: {exc}", file=sys.stderr)
        return 2
    result["data"] = data.description
    result["machine"] = machine()
    result["mode"] = "quick" if args.quick else "full"
    if args.plots:
        result["plot"] = str(_trajectory_plot(data, gan, lstm, Path(args.plots) / "motion_trajectories.png"))
    emit(result, args.json)
    a, f = result["accuracy"], result["fid"]
    summary(f"eval motion ({result['mode']}, {result['seconds']:.0f} s): accuracy GT {a['gt']:.1f} %, "
            f"Motion3DGAN {a['motion3dgan']:.1f} %, LSTM {a['lstm']:.1f} %; FID Motion3DGAN {f['motion3dgan']:.4g}, "
            f"LSTM {f['lstm']:.4g}; Det-LM {'measured' if result['det_lm']['measured'] else 'not measured'}")
    return 0


def _trajectory_plot(data, gan, lstm, path: Path) -> Path:
    import torch

    from trainers.motion.evaluate import gan_motions, motion_displacement
    from trainers.motion.plots import trajectories

    label = torch.arange(len(data.labels)).repeat_interleave(12)
    with torch.no_grad():
        lstm_disp = lstm(torch.arange(len(data.labels)))
    return trajectories(data.test.displacement, data.test.label, motion_displacement(gan_motions(gan, label, 0)),
                        label, lstm_disp, torch.arange(len(data.labels)), data.labels, path)


def cmd_bench(args: argparse.Namespace) -> int:
    from trainers.motion.bench import run_bench

    try:
        run_bench(args.checkpoint, args.json)
    except _errors() as exc:
        print(f"facecast bench motion: {exc}", file=sys.stderr)
        return 2
    return 0


def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("motion", help="Motion3DGAN, its LSTM baseline and the expression classifier")
    p.add_argument("--data", default=str(data_dir() / "synth"), help="data folder (default %(default)s)")
    p.add_argument("--out", default=str(data_dir() / "runs" / "motion"), help="checkpoint folder (default %(default)s)")
    p.add_argument("--name", default=NAME, help="checkpoint name suffix (default %(default)s)")
    p.add_argument("--plots", help="write the training curves PNG into this folder")
    p.add_argument("--json", help="write the recorded figures as JSON")
    p.add_argument("--reference", choices=("both", "karcher", "sample"), default="both",
                   help="Motion3DGAN's reference point(s); with both, the better is kept (default both)")
    p.add_argument("--reference-label", default="mouth_up",
                   help="with the sample reference: the first training motion of this label (default mouth_up, "
                        "as the official code)")
    p.add_argument("--gan-epochs", type=int, default=200, help="Motion3DGAN epochs per reference (default 200)")
    p.add_argument("--gan-minutes", type=float, default=10.0,
                   help="time budget per Motion3DGAN run, minutes (default 10; 0 for none)")
    p.add_argument("--lstm-epochs", type=int, default=60, help="LSTM baseline epochs (default 60)")
    p.add_argument("--classifier-epochs", type=int, default=10, help="classifier epochs (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=THREADS, help="torch/BLAS threads (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="a few epochs each: a smoke run, not a model")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def _checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoints", default=str(SHIPPED), help="folder of the three checkpoints (default: shipped)")
    p.add_argument("--name", default=NAME, help="their name suffix (default %(default)s)")
    p.add_argument("--gan", help="Motion3DGAN checkpoint (overrides --checkpoints)")
    p.add_argument("--lstm", help="LSTM baseline checkpoint")
    p.add_argument("--classifier", help="expression classifier checkpoint")


def register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("motion", help="the paper's Table 3 (accuracy, FID) and diversity, as JSON")
    p.add_argument("--data", default=str(data_dir() / "synth"), help="data folder (default %(default)s)")
    _checkpoint_args(p)
    p.add_argument("--s2d", help="S2D-Dec checkpoint for the Det-LM row (default: the shipped one)")
    p.add_argument("--no-det-lm", action="store_true", help="skip the Det-LM row")
    p.add_argument("--quick", action="store_true", help="fewer samples and one seed (under two minutes)")
    p.add_argument("--threads", type=int, default=THREADS, help="torch/BLAS threads (default %(default)s)")
    p.add_argument("--plots", help="write the real vs generated trajectories PNG into this folder")
    p.add_argument("--json", help="also write the JSON to this file")
    p.set_defaults(func=cmd_eval)


def register_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("motion", help="Motion3DGAN runtime API speed: sample, apply, retime, blend")
    p.add_argument("--checkpoint", default=str(SHIPPED / f"motion3dgan_{NAME}.safetensors"),
                   help="Motion3DGAN checkpoint (default: shipped)")
    p.add_argument("--json", help="also write the JSON to this file")
    p.set_defaults(func=cmd_bench)
