"""The paper's LSTM baseline: a deterministic generator of landmark motions.

Per frame ``t = 1..T`` its input code is the one-hot label and the frame's
position ``t / T``; one LSTM layer and a linear read-out give that frame's
landmark displacement from the start, in the normalised landmark frame
(the same targets as Motion3DGAN's curves: arc-length resampled). Trained
with the mean squared error on the same training motions; a label always
gives the same motion.
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

FAMILY = "motion-lstm"


@dataclass(frozen=True)
class LstmConfig:
    hidden: int = 256
    epochs: int = 60
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0
    time_limit_s: float | None = None


class LstmGenerator(nn.Module):
    """``label [B] -> [B, T, K]`` displacements of frames 1..T from the start (normalised frame)."""

    def __init__(self, labels: tuple[str, ...], steps: int, dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.labels, self.steps, self.dim, self.hidden = tuple(labels), steps, dim, hidden
        self.lstm = nn.LSTM(len(labels) + 1, hidden, batch_first=True)
        self.out = nn.Linear(hidden, dim)
        self.register_buffer("scale", torch.ones(()))

    def config(self) -> dict:
        return {"labels": list(self.labels), "steps": self.steps, "dim": self.dim, "hidden": self.hidden}

    def forward(self, label: torch.Tensor) -> torch.Tensor:
        b = label.shape[0]
        onehot = F.one_hot(label, len(self.labels)).float()[:, None, :].expand(b, self.steps, -1)
        t = (torch.arange(1, self.steps + 1, dtype=torch.float32) / self.steps)[None, :, None].expand(b, -1, 1)
        h, _ = self.lstm(torch.cat([onehot, t], dim=-1))
        return self.out(h) / self.scale


def train_lstm(displacement: torch.Tensor, label: torch.Tensor, labels: list[str], cfg: LstmConfig,
               show_progress: bool = True) -> tuple[LstmGenerator, History]:
    """Fit the baseline to real motions ``[N, T, K]`` (MSE on the scaled displacements, Adam)."""
    seed_everything(cfg.seed)
    model = LstmGenerator(tuple(labels), displacement.shape[1], displacement.shape[2], cfg.hidden)
    model.scale.fill_(1.0 / float(displacement.std()))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n = len(displacement)
    batch = min(cfg.batch, n)
    per_epoch = max(n // batch, 1)
    rng = np.random.default_rng(cfg.seed)

    def batches(epoch: int):
        order = torch.as_tensor(rng.permutation(n))
        for i in range(per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            yield displacement[idx], label[idx]

    def step(b) -> dict[str, float]:
        x, y = b
        loss = F.mse_loss(model(y) * model.scale, x * model.scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"mse": float(loss.detach())}

    history = train(step, batches, cfg.epochs, desc="motion lstm baseline", steps_per_epoch=per_epoch,
                    time_limit_s=cfg.time_limit_s, show_progress=show_progress)
    return model.eval(), history


def save_lstm(path: str | Path, model: LstmGenerator, data: dict, metrics: dict) -> Path:
    meta = CheckpointMeta(family=FAMILY, config=model.config(), topology_id=None,
                          data={**data, "landmark_scheme": "ibug68"}, metrics=metrics)
    return save_checkpoint(path, model.state_dict(), meta)


def load_lstm(path: str | Path) -> LstmGenerator:
    meta, state = load_checkpoint(path, family=FAMILY)
    try:
        cfg = meta.config
        model = LstmGenerator(tuple(cfg["labels"]), int(cfg["steps"]), int(cfg["dim"]), int(cfg["hidden"]))
        model.load_state_dict(state)
    except (TypeError, KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: does not match the LSTM baseline ({exc})") from exc
    return model.eval()
