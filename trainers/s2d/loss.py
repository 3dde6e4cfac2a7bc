"""S2D-Dec's loss: ``beta1 * L_dr + beta2 * L_pr`` (paper defaults 1 and 0.1).

``L_dr``: mean L1 distance between the predicted and true per-vertex
displacements. ``L_pr``: mean L1 distance between predicted and true
vertices, each vertex weighted by its closeness to the nearest landmark
(``w_i`` = inverse distance to the closest landmark, rescaled to [0, 1]),
so the face near the landmarks, where the input says most, counts most.
Lengths are taken in millimetres so the loss is of order one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.constants import MM_PER_M

#: added to the vertex-to-landmark distance (metres) before inverting, so a
#: vertex on a landmark gets a finite weight
PROXIMITY_EPS = 0.002


def landmark_proximity_weights(vertices: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``w_i`` in [0, 1] for ``vertices [N, 3]`` given ``landmarks [68, 3]``."""
    d = np.linalg.norm(vertices[:, None, :] - landmarks[None, :, :], axis=-1).min(axis=1)
    inv = 1.0 / (d + PROXIMITY_EPS)
    return ((inv - inv.min()) / (inv.max() - inv.min())).astype(np.float32)


@dataclass(frozen=True)
class S2DLoss:
    """``weighting``: "landmark" (the paper), "uniform" (L_pr unweighted) or "none" (L_dr only)."""

    beta1: float = 1.0
    beta2: float = 0.1
    weighting: str = "landmark"

    def __post_init__(self) -> None:
        if self.weighting not in ("landmark", "uniform", "none"):
            raise ValueError(f"weighting must be landmark, uniform or none, got {self.weighting!r}")

    def __call__(self, pred_disp: torch.Tensor, pred_vertices: torch.Tensor, true_disp: torch.Tensor,
                 true_vertices: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        l_dr = (pred_disp - true_disp).abs().mean() * MM_PER_M
        if self.weighting == "none":
            return self.beta1 * l_dr, {"l_dr": float(l_dr.detach())}
        err = (pred_vertices - true_vertices).abs().sum(-1) * MM_PER_M          # [B, N]
        w = weights if self.weighting == "landmark" else torch.ones_like(weights)
        l_pr = (err * w).mean()
        return self.beta1 * l_dr + self.beta2 * l_pr, {"l_dr": float(l_dr.detach()), "l_pr": float(l_pr.detach())}
