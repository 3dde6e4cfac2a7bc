"""Closest points on a triangle mesh.

For each query point the ``k`` triangles with the nearest centroids are
candidates, and the exact closest point on each candidate is found with
Ericson's region test (Real-Time Collision Detection, 5.1.5). With ``k``
large enough for the mesh's triangle sizes the result is exact; the default
is ample for meshes of evenly sized triangles.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point to ``p`` on triangles ``(a, b, c)``, all ``[M, 3]``."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = va + vb + vc
    safe = np.where(np.abs(denom) > 0, denom, 1.0)
    v = vb / safe
    w = vc / safe
    out = a + ab * v[:, None] + ac * w[:, None]                       # inside the face

    def put(mask, value):
        out[mask] = value[mask]

    # edges (checked before vertices, which override them)
    e_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    put(e_ab, a + ab * (d1 / np.where(d1 - d3 != 0, d1 - d3, 1.0))[:, None])
    e_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    put(e_ac, a + ac * (d2 / np.where(d2 - d6 != 0, d2 - d6, 1.0))[:, None])
    e_bc = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
    t_bc = (d4 - d3) / np.where((d4 - d3) + (d5 - d6) != 0, (d4 - d3) + (d5 - d6), 1.0)
    put(e_bc, b + (c - b) * t_bc[:, None])
    put((d1 <= 0) & (d2 <= 0), a)
    put((d3 >= 0) & (d4 <= d3), b)
    put((d6 >= 0) & (d5 <= d6), c)
    return out


def closest_points(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, k: int = 16,
                   return_faces: bool = False):
    """Closest surface points ``[P, 3]`` and their distances ``[P]`` (and, with
    ``return_faces``, the index of the triangle each lies on)."""
    v = np.asarray(vertices, np.float64)
    pts = np.asarray(points, np.float64)
    tri = v[faces]
    k = min(k, len(faces))
    _, cand = cKDTree(tri.mean(axis=1)).query(pts, k=k)
    cand = cand.reshape(len(pts), k)
    rep = np.repeat(pts, k, axis=0)
    flat = cand.reshape(-1)
    q = closest_point_on_triangles(rep, tri[flat, 0], tri[flat, 1], tri[flat, 2]).reshape(len(pts), k, 3)
    d = np.linalg.norm(q - pts[:, None], axis=-1)
    best = np.argmin(d, axis=1)
    rows = np.arange(len(pts))
    if return_faces:
        return q[rows, best], d[rows, best], cand[rows, best]
    return q[rows, best], d[rows, best]


def barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates ``[M, 3]`` of points ``p`` in triangles ``(a, b, c)``
    (all ``[M, 3]``); exact for points in the triangle's plane."""
    v0, v1, v2 = b - a, c - a, p - a
    d00 = np.einsum("ij,ij->i", v0, v0)
    d01 = np.einsum("ij,ij->i", v0, v1)
    d11 = np.einsum("ij,ij->i", v1, v1)
    d20 = np.einsum("ij,ij->i", v2, v0)
    d21 = np.einsum("ij,ij->i", v2, v1)
    denom = d00 * d11 - d01 * d01
    denom = np.where(np.abs(denom) > 0, denom, 1.0)
    wv = (d11 * d20 - d01 * d21) / denom
    ww = (d00 * d21 - d01 * d20) / denom
    return np.stack([1.0 - wv - ww, wv, ww], axis=1)
