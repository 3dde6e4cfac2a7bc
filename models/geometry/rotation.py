"""Rotations of point sets about axes (Rodrigues' formula), vectorised.

Points are ``[B, N, 3]``; an axis is given per batch row by two points on
it; angles may differ per point (a jaw that follows its joints by a share
of the angle per vertex).
"""

from __future__ import annotations

import numpy as np


def rotate_about_axis(points: np.ndarray, hinge: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate ``points [B, N, 3]`` about the axis through ``hinge [B, 2, 3]``
    (from point 0 to point 1, right-handed) by ``angle [B, N]`` (Rodrigues).
    Angle 0 leaves a point bit-exact."""
    axis = hinge[:, 1] - hinge[:, 0]
    axis = (axis / np.linalg.norm(axis, axis=-1, keepdims=True)).astype(points.dtype)
    pivot = (0.5 * (hinge[:, 0] + hinge[:, 1])).astype(points.dtype)
    p = points - pivot[:, None]
    kx, ky, kz = (axis[:, i, None] for i in range(3))
    px, py, pz = p[..., 0], p[..., 1], p[..., 2]
    cos, sin = np.cos(angle).astype(points.dtype), np.sin(angle).astype(points.dtype)
    dot = (kx * px + ky * py + kz * pz) * (1.0 - cos)
    cm1 = cos - 1.0
    out = points.copy()
    out[..., 0] += px * cm1 + (ky * pz - kz * py) * sin + kx * dot
    out[..., 1] += py * cm1 + (kz * px - kx * pz) * sin + ky * dot
    out[..., 2] += pz * cm1 + (kx * py - ky * px) * sin + kz * dot
    return out
