"""The metrics of the paper's Table 3 and a diversity figure.

- accuracy: the share (percent) of motions the expression classifier gives
  the label they were meant to show;
- FID: the Frechet distance between Gaussians fitted to the classifier's 512
  features of two sets of motions;
- diversity: the mean pairwise geodesic distance (radians, on the SRVF
  sphere) between motions of one label.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg

from models import srvf

#: added to both covariances' diagonals when their product has no finite square root
REGULARISE = 1e-6


def accuracy(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """Percent of ``predicted [N]`` equal to ``target [N]``."""
    if len(target) == 0:
        raise ValueError("accuracy of an empty set")
    return 100.0 * float((predicted == target).double().mean())


def gaussian(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (float64) of ``[N, D]`` features."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need [N >= 2, D] features, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))``, the FID between two Gaussians."""
    covmean = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(covmean).all():                  # singular product: regularise as the FID reference code
        eps = np.eye(len(mu1)) * REGULARISE
        covmean = linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def fid(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """FID between two ``[N, D]`` feature sets."""
    return frechet_distance(*gaussian(features_a), *gaussian(features_b))


def diversity(q: torch.Tensor, label: torch.Tensor, labels: list[str]) -> dict:
    """Mean pairwise geodesic distance of motions ``q [N, T, K]`` within each label.

    Returns ``{"mean": float, "per_label": {name: float}}`` (radians; labels
    with fewer than two motions are left out).
    """
    per = {}
    for index, name in enumerate(labels):
        sel = q[label == index].double()
        n = len(sel)
        if n < 2:
            continue
        d = srvf.pairwise_distances(sel)
        per[name] = float(d.sum() / (n * (n - 1)))
    if not per:
        raise ValueError("diversity needs two motions of at least one label")
    return {"mean": float(np.mean(list(per.values()))), "per_label": per}
