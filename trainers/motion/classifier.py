"""The expression classifier behind the paper's Table 3 metrics.

One LSTM layer (512 units) over a motion's frames and a fully connected
layer to the labels. Its input is a motion as displacements from its start
in the normalised landmark frame, ``[B, T, K]`` (frames 1..T of the
arc-length resampled curve), times a fixed scale learnt from the training
data; its 512 features (the LSTM's last hidden state) feed the FID.
Trained on the real training motions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.checkpoint import (
    CheckpointError,
    CheckpointMeta,
    load_checkpoint,
    save_checkpoint,
)
from trainers.loop import History, seed_everything, train

FAMILY = "motion-classifier"
FEATURES = 512


@dataclass(frozen=True)
class ClassifierConfig:
    hidden: int = FEATURES
    epochs: int = 10
    batch: int = 32
    lr: float = 1e-3
    seed: int = 0
    time_limit_s: float | None = None


class ExpressionClassifier(nn.Module):
    """``[B, T, K] -> [B, L]`` logits; ``features`` gives the ``[B, hidden]`` FID features."""

    def __init__(self, dim: int, labels: tuple[str, ...], hidden: int = FEATURES) -> None:
        super().__init__()
        self.dim, self.labels, self.hidden = dim, tuple(labels), hidden
        self.lstm = nn.LSTM(dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, len(labels))
        self.register_buffer("scale", torch.ones(()))

    def config(self) -> dict:
        return {"dim": self.dim, "labels": list(self.labels), "hidden": self.hidden}

    def features(self, displacement: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(displacement * self.scale)
        return h[-1]

    def forward(self, displacement: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(displacement))


@torch.no_grad()
def predict(model: ExpressionClassifier, displacement: torch.Tensor,
            batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels ``[N]`` and features ``[N, hidden]`` of ``[N, T, K]`` motions."""
    labels, feats = [], []
    for i in range(0, len(displacement), batch):
        f = model.features(displacement[i:i + batch])
        feats.append(f)
        labels.append(model.fc(f).argmax(dim=1))
    return torch.cat(labels), torch.cat(feats)


def train_classifier(displacement: torch.Tensor, label: torch.Tensor, labels: list[str], cfg: ClassifierConfig,
                     show_progress: bool = True) -> tuple[ExpressionClassifier, History]:
    """Fit the classifier on real motions ``[N, T, K]`` with labels ``[N]`` (cross-entropy, Adam)."""
    seed_everything(cfg.seed)
    model = ExpressionClassifier(displacement.shape[-1], tuple(labels), cfg.hidden)
    model.scale.fill_(1.0 / float(displacement.std()))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n = len(displacement)
    per_epoch = max(n // cfg.batch, 1)
    rng = np.random.default_rng(cfg.seed)

    def batches(epoch: int):
        order = torch.as_tensor(rng.permutation(n))
        for i in range(per_epoch):
            idx = order[i * cfg.batch:(i + 1) * cfg.batch]
            yield displacement[idx], label[idx]

    def step(b) -> dict[str, float]:
        x, y = b
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach()), "train_acc": float((logits.argmax(1) == y).float().mean())}

    history = train(step, batches, cfg.epochs, desc="motion classifier", steps_per_epoch=per_epoch,
                    time_limit_s=cfg.time_limit_s, show_progress=show_progress)
    return model.eval(), history


def round_to_half(model: nn.Module) -> None:
    """Round the parameters to float16 values (what the checkpoint stores), in place."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def save_classifier(path: str | Path, model: ExpressionClassifier, data: dict, metrics: dict) -> Path:
    """Weights as float16 (call ``round_to_half`` before measuring what gets recorded)."""
    state = {k: (v.half() if v.is_floating_point() and v.dim() > 0 else v) for k, v in model.state_dict().items()}
    meta = CheckpointMeta(family=FAMILY, config=model.config(), topology_id=None,
                          data={**data, "landmark_scheme": "ibug68"}, metrics=metrics)
    return save_checkpoint(path, state, meta)


def load_classifier(path: str | Path) -> ExpressionClassifier:
    meta, state = load_checkpoint(path, family=FAMILY)
    try:
        cfg = meta.config
        model = ExpressionClassifier(int(cfg["dim"]), tuple(cfg["labels"]), int(cfg["hidden"]))
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (TypeError, KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: does not match the expression classifier ({exc})") from exc
    return model.eval()
