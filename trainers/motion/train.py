"""``facecast train motion``: the classifier, the LSTM baseline and Motion3DGAN.

One run on a data folder:

1. the Motion3DGAN split as SRVF curves (``trainers.motion.data``);
2. the expression classifier on the real training motions (stored as
   float16; its figures are measured with the rounded weights);
3. the LSTM baseline on the same motions;
4. Motion3DGAN once per reference point (``karcher``: the Karcher mean of the
   training SRVFs; ``sample``: one training motion, as the official code),
   each monitored every ``eval_every`` epochs on the training data only
   (accuracy of its samples and FID against the real training motions);
   each run keeps its generator of the monitored epoch with the lowest
   training FID, the reference with the lower one is kept, and both runs'
   figures go into its checkpoint;
5. the held-out Table 3 figures (``EvalConfig`` ``QUICK``) recorded in the
   checkpoints (the band the shipped-checkpoint test checks), the training
   curves as a PNG, three checkpoints in ``out``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from models import srvf
from models.checkpoint import CheckpointMeta, save_checkpoint
from models.motion3dgan import FAMILY, LANDMARK_SCHEME, Motion3DGAN, count_parameters
from trainers.loop import History
from trainers.motion import metrics
from trainers.motion.baseline import LstmConfig, save_lstm, train_lstm
from trainers.motion.classifier import (
    ClassifierConfig,
    predict,
    round_to_half,
    save_classifier,
    train_classifier,
)
from trainers.motion.data import MotionData, load_motion_data
from trainers.motion.evaluate import QUICK, evaluate, gan_motions, motion_displacement
from trainers.motion.gan import REFERENCES, GanConfig, train_gan
from trainers.progress import summary

#: how many generated motions per training motion the training-time monitor draws
MONITOR_SAMPLES = 1


@dataclass(frozen=True)
class MotionTrainConfig:
    data: str
    out: str
    plots: str | None = None
    name: str = "synthface"                          #: checkpoint file suffix
    references: tuple[str, ...] = REFERENCES
    gan: GanConfig = field(default_factory=GanConfig)
    lstm: LstmConfig = field(default_factory=LstmConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    per_direction: int = 4
    split_seed: int = 0
    steps: int = srvf.FRAMES


def checkpoint_paths(out: str | Path, name: str) -> dict[str, Path]:
    out = Path(out)
    return {"gan": out / f"motion3dgan_{name}.safetensors",
            "lstm": out / f"motion_lstm_{name}.safetensors",
            "classifier": out / f"motion_classifier_{name}.safetensors"}


def training_monitor(data: MotionData, clf):
    """Accuracy, FID against the real training motions and diversity of a generator (training data only)."""
    label = data.train.label.repeat_interleave(MONITOR_SAMPLES)
    _, feat_train = predict(clf, data.train.displacement)

    def monitor(model: Motion3DGAN) -> dict[str, float]:
        motion = gan_motions(model, label, seed=0)
        pred, feat = predict(clf, motion_displacement(motion))
        return {"accuracy": metrics.accuracy(pred, label), "fid_train": metrics.fid(feat, feat_train),
                "diversity": metrics.diversity(motion.q, label, data.labels)["mean"]}

    return monitor


def save_gan(path: Path, model: Motion3DGAN, data: dict, metrics_: dict) -> Path:
    meta = CheckpointMeta(family=FAMILY, config=model.cfg.to_dict(), topology_id=None,
                          data={**data, "landmark_scheme": LANDMARK_SCHEME}, metrics=metrics_)
    return save_checkpoint(path, model.state_dict(), meta)


def run(cfg: MotionTrainConfig, show_progress: bool = True) -> dict:
    """Train everything, write the checkpoints (and plots); returns the recorded figures."""
    start = time.perf_counter()
    data = load_motion_data(cfg.data, per_direction=cfg.per_direction, seed=cfg.split_seed, steps=cfg.steps)
    train, test = data.train, data.test

    clf, clf_hist = train_classifier(train.displacement, train.label, data.labels, cfg.classifier, show_progress)
    round_to_half(clf)
    pred_tr, _ = predict(clf, train.displacement)
    pred_te, _ = predict(clf, test.displacement)
    clf_metrics = {"train_accuracy": metrics.accuracy(pred_tr, train.label),
                   "test_accuracy": metrics.accuracy(pred_te, test.label), "seconds": clf_hist.seconds}

    lstm, lstm_hist = train_lstm(train.displacement, train.label, data.labels, cfg.lstm, show_progress)
    with torch.no_grad():
        test_mse = float(((lstm(test.label) - test.displacement) * lstm.scale).pow(2).mean())
    lstm_metrics = {"train_mse_scaled": lstm_hist.last("mse"), "test_mse_scaled": test_mse,
                    "seconds": lstm_hist.seconds}

    monitor = training_monitor(data, clf)
    runs: dict[str, tuple[Motion3DGAN, History, dict]] = {}
    for reference in cfg.references:
        model, hist, ref = train_gan(train, data.labels, replace(cfg.gan, reference=reference),
                                     monitor=monitor, show_progress=show_progress)
        kept = next(row for row in hist.epochs if row["epoch"] == ref.detail.get("kept_epoch", len(hist.epochs)))
        runs[reference] = (model, hist, {"reference": ref.kind, **ref.detail, "seconds": hist.seconds,
                                         "epochs": len(hist.epochs), "stopped_early": hist.stopped_early,
                                         "kept": {k: kept[k] for k in ("accuracy", "fid_train", "diversity")}})
    best = min(runs, key=lambda r: runs[r][2]["kept"]["fid_train"])
    gan = runs[best][0]
    held_out = {}
    for reference, (model, _, _) in runs.items():
        table = evaluate(data, model, lstm, clf, QUICK)
        held_out[reference] = {"accuracy": table["accuracy"], "fid": table["fid"],
                               "diversity": table["diversity"]["motion3dgan"]["mean"]}
    kept = held_out[best]
    gan_metrics = {
        "reference_kept": best,
        "selection": "lowest FID of its samples against the real training motions, over the monitored epochs "
                     "of both references (training data only)",
        "references": {r: info for r, (_, _, info) in runs.items()},
        "held_out_quick": held_out,
        "accuracy": kept["accuracy"], "fid": kept["fid"],
        "eval_config": {**asdict(QUICK), "seeds": list(QUICK.seeds)},
        "parameters": {"generator": count_parameters(gan.generator)},
    }
    paths = checkpoint_paths(cfg.out, cfg.name)
    record = {"gan": gan_metrics, "lstm": {**lstm_metrics, "held_out_quick": kept["accuracy"]["lstm"]},
              "classifier": clf_metrics}
    train_cfg = {"gan": asdict(cfg.gan), "lstm": asdict(cfg.lstm), "classifier": asdict(cfg.classifier)}
    save_gan(paths["gan"], gan, data.description, {**gan_metrics, "training": train_cfg["gan"]})
    save_lstm(paths["lstm"], lstm, data.description, {**record["lstm"], "training": train_cfg["lstm"]})
    save_classifier(paths["classifier"], clf, data.description, {**clf_metrics, "training": train_cfg["classifier"]})
    if cfg.plots:
        from trainers.motion.plots import training_curves

        record["plot"] = str(training_curves({r: h for r, (_, h, _) in runs.items()}, clf_hist, lstm_hist,
                                             Path(cfg.plots) / "motion_training.png"))
    record["seconds"] = time.perf_counter() - start
    record["checkpoints"] = {k: str(v) for k, v in paths.items()}
    acc = kept["accuracy"]
    summary(f"motion: trained in {record['seconds'] / 60:.1f} min; kept the {best} reference; held-out accuracy "
            f"GT {acc['gt']:.1f} %, Motion3DGAN {acc['motion3dgan']:.1f} %, LSTM {acc['lstm']:.1f} %; "
            f"FID Motion3DGAN {kept['fid']['motion3dgan']:.4g}, LSTM {kept['fid']['lstm']:.4g}; "
            f"checkpoints in {cfg.out}")
    return record


def write_record(record: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=1) + "\n")
