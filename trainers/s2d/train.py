"""Training S2D-Dec (and the Neural3DMM-style baseline) on a data folder's split.

One config dataclass, the loss in ``loss.py``, and a call to the shared
``trainers.loop.train``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import save_checkpoint
from models.constants import MM_PER_M
from models.neural3dmm import Neural3DMMConfig, Neural3DMMLandmarks
from models.paths import data_dir
from models.s2d import S2DDecoder, build_s2d, landmark_displacement
from trainers.data.cache import FaceData
from trainers.data.splits import Split, expression_kfold, identity_kfold
from trainers.loop import History, seed_everything, train
from trainers.s2d.loss import S2DLoss, landmark_proximity_weights
from trainers.s2d.pairs import PairSet, make_pairs

#: held-out pairs evaluated during training (a fixed subsample, for speed)
VAL_PAIRS = 256


@dataclass(frozen=True)
class S2DTrainConfig:
    """Paper defaults: Adam lr 1e-3, batch 16, beta1 = 1, beta2 = 0.1, landmark weighting."""

    model: str = "s2d"               #: "s2d" or "neural3dmm"
    split: str = "identity"          #: "identity" or "expression"
    folds: int = 4
    fold: int = 3                    #: the held-out fold
    frame_step: int = 4              #: every 4th frame of each sequence
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    lr_decay: float = 0.99           #: per epoch (the official code's scheduler)
    beta1: float = 1.0
    beta2: float = 0.1
    weighting: str = "landmark"
    seed: int = 0
    time_limit_s: float | None = None
    threads: int = 2

    def __post_init__(self) -> None:
        if self.model not in ("s2d", "neural3dmm"):
            raise ValueError(f"model must be s2d or neural3dmm, got {self.model!r}")
        if self.split not in ("identity", "expression"):
            raise ValueError(f"split must be identity or expression, got {self.split!r}")


def make_split(data: FaceData, split: str, folds: int, fold: int) -> Split:
    fn = identity_kfold if split == "identity" else expression_kfold
    return fn(data, k=folds, fold=fold)


def build_model(cfg: S2DTrainConfig, template) -> torch.nn.Module:
    cache = data_dir() / "cache"
    if cfg.model == "s2d":
        return build_s2d(template, cache)
    from models.geometry.sampling import cached_hierarchy
    from models.layers import SpiralTopology

    h = cached_hierarchy(template.vertices, template.faces, template.topology_id, cache)
    ncfg = Neural3DMMConfig(sizes=tuple(h.sizes), topology_id=template.topology_id)
    topo = SpiralTopology.from_hierarchy(h, ncfg.spiral_lengths, ncfg.spiral_dilations,
                                         up=template.frame.rotation[:, 1])
    return Neural3DMMLandmarks(ncfg, topo)


@torch.no_grad()
def predict(model: torch.nn.Module, pairs: PairSet, idx: np.ndarray | None = None, batch: int = 64) -> np.ndarray:
    """Predicted meshes ``float32 [M, N, 3]`` for the pairs ``idx`` (default all)."""
    model.eval()
    idx = np.arange(len(pairs)) if idx is None else idx
    out = []
    for s in range(0, len(idx), batch):
        n, nl, _, tl = pairs.batch(torch.as_tensor(idx[s:s + batch]))
        out.append(model(n, landmark_displacement(tl, nl), nl).vertices.numpy())
    return np.concatenate(out) if out else np.zeros((0,) + tuple(pairs.target.shape[1:]), np.float32)


def vertex_errors_mm(pred: np.ndarray, pairs: PairSet, idx: np.ndarray | None = None) -> np.ndarray:
    """Per-vertex Euclidean error in millimetres, ``[M, N]``."""
    target = pairs.target.numpy() if idx is None else pairs.target[torch.as_tensor(idx)].numpy()
    return np.linalg.norm(pred - target, axis=-1) * MM_PER_M


def train_s2d(data: FaceData, cfg: S2DTrainConfig, out: str | Path | None = None,
              show_progress: bool = True) -> tuple[torch.nn.Module, History, dict]:
    """Train on the split's training frames; evaluate on its test frames.

    Returns the model, its history and metrics (held-out mean/std per-vertex
    error in mm over the test pairs); writes a checkpoint to ``out`` if given.
    """
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    split = make_split(data, cfg.split, cfg.folds, cfg.fold)
    train_pairs = make_pairs(data, split.train, cfg.frame_step)
    test_pairs = make_pairs(data, split.test, cfg.frame_step)
    template = data.template
    model = build_model(cfg, template)
    _set_scales(model, train_pairs)
    weights = torch.from_numpy(landmark_proximity_weights(template.vertices, template.landmark_points()))
    loss_fn = S2DLoss(cfg.beta1, cfg.beta2, cfg.weighting)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    rng = np.random.default_rng(cfg.seed)
    val_idx = np.sort(rng.choice(len(test_pairs), min(VAL_PAIRS, len(test_pairs)), replace=False))
    steps = math.ceil(len(train_pairs) / cfg.batch_size)

    def batches(epoch: int):
        order = torch.from_numpy(np.random.default_rng([cfg.seed, epoch]).permutation(len(train_pairs)))
        for s in range(0, len(order), cfg.batch_size):
            yield order[s:s + cfg.batch_size]

    def step(idx: torch.Tensor) -> dict[str, float]:
        model.train()
        n, nl, t, tl = train_pairs.batch(idx)
        res = model(n, landmark_displacement(tl, nl), nl)
        loss, parts = loss_fn(res.displacement, res.vertices, t - n, t, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach()), **parts}

    def evaluate(epoch: int) -> dict[str, float]:
        err = vertex_errors_mm(predict(model, test_pairs, val_idx), test_pairs, val_idx)
        return {"val_mm": float(err.mean())}

    def on_epoch(epoch: int, history: History) -> None:
        sched.step()

    history = train(step, batches, cfg.epochs, desc=f"train {cfg.model}", steps_per_epoch=steps,
                    evaluate=evaluate, eval_every=5, time_limit_s=cfg.time_limit_s, on_epoch=on_epoch,
                    show_progress=show_progress)
    err = vertex_errors_mm(predict(model, test_pairs), test_pairs)
    metrics = {"test_mean_mm": float(err.mean()), "test_std_mm": float(err.std()),
               "test_pairs": len(test_pairs), "train_pairs": len(train_pairs),
               "epochs": len(history.epochs), "train_seconds": round(history.seconds, 1),
               "split": cfg.split, "fold": cfg.fold, "folds": cfg.folds, "frame_step": cfg.frame_step}
    if out is not None:
        description = {"path": str(data.root), "source": data.meta.get("source"),
                       "generator": data.meta.get("generator"), "topology_id": data.template.topology_id,
                       "subjects": data.subjects, "labels": data.labels,
                       "train_subjects": sorted({data.subjects[s] for s in np.unique(train_pairs.subjects)}),
                       "test_subjects": sorted({data.subjects[s] for s in np.unique(test_pairs.subjects)}),
                       "config": asdict(cfg)}
        meta = model.checkpoint_meta(data=description, metrics=metrics)
        save_checkpoint(out, model.state_dict(), meta)
    return model, history, metrics


def _set_scales(model: torch.nn.Module, pairs: PairSet) -> None:
    """Input/output scales from the training pairs (what the decoder must output:
    the displacement, divided by the neutral's landmark scale when it scales)."""
    from models.s2d import landmark_scale

    n = pairs.neutral[pairs.seq]
    disp = landmark_displacement(pairs.target_lm, pairs.neutral_lm[pairs.seq])
    target = pairs.target - n
    scale_output = model.config.scale_output
    if scale_output:
        target = target / landmark_scale(pairs.neutral_lm[pairs.seq])[:, None, None]
    if isinstance(model, S2DDecoder):
        model.set_scales(disp, target)
    else:
        model.set_scales(disp, target, pairs.neutral)
