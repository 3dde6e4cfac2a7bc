"""Similarity (Procrustes / Umeyama) alignment of point sets, any dimension.

``src`` and ``dst`` are ``[N, D]`` corresponding points; the fit minimises
``sum |s R src_i + t - dst_i|^2`` over scale ``s``, rotation ``R`` (no
reflection) and translation ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Similarity:
    scale: float
    rotation: np.ndarray      #: [D, D]
    translation: np.ndarray   #: [D]

    def apply(self, points: np.ndarray) -> np.ndarray:
        """``[..., D]`` -> ``s R p + t``."""
        return self.scale * points @ self.rotation.T + self.translation


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """Least-squares similarity taking ``src`` onto ``dst`` (Umeyama 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2:
        raise ValueError(f"need two [N, D] arrays of one shape, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(len(sig))
    d[-1] = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    rot = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / (a ** 2).sum(axis=1).mean())
    return Similarity(scale=scale, rotation=rot, translation=mu_d - scale * rot @ mu_s)


def aligned_distances(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Per-point distance ``[N]`` between ``dst`` and ``src`` aligned onto it."""
    return np.linalg.norm(fit_similarity(src, dst).apply(src) - dst, axis=-1)
