"""Self-intersection of a triangle mesh.

Two triangles that share no vertex intersect when an edge of one crosses
the other (Moller-Trumbore segment test, both ways). Coplanar touching is
not reported. Candidate pairs come from a k-d tree over triangle centroids,
so the cost is near linear in the number of faces.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

#: relative margin that keeps shared-corner and grazing contacts from counting
INTERSECT_MARGIN = 1e-7


def self_intersections(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Pairs of faces that cross each other.

    Args:
        vertices: ``[N, 3]``.
        faces: ``[F, 3]``.

    Returns:
        ``int [P, 2]`` face index pairs (``i < j``), empty when the surface is embedded.
    """
    v = np.asarray(vertices, dtype=np.float64)
    tri = v[faces]                                                   # [F, 3, 3]
    centroid = tri.mean(axis=1)
    radius = np.linalg.norm(tri - centroid[:, None], axis=-1).max(axis=1)   # bounding spheres
    pairs = cKDTree(centroid).query_pairs(2.0 * radius.max(), output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    gap = np.linalg.norm(centroid[pairs[:, 0]] - centroid[pairs[:, 1]], axis=1)
    pairs = pairs[gap <= radius[pairs[:, 0]] + radius[pairs[:, 1]]]
    fa, fb = faces[pairs[:, 0]], faces[pairs[:, 1]]
    shared = (fa[:, :, None] == fb[:, None, :]).any(axis=(1, 2))
    pairs = pairs[~shared]
    hit = _edges_cross(tri[pairs[:, 0]], tri[pairs[:, 1]]) | _edges_cross(tri[pairs[:, 1]], tri[pairs[:, 0]])
    return pairs[hit]


def _edges_cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Does any edge of triangles ``a [P, 3, 3]`` pass through triangles ``b``?"""
    out = np.zeros(len(a), dtype=bool)
    v0, e1, e2 = b[:, 0], b[:, 1] - b[:, 0], b[:, 2] - b[:, 0]
    for i, j in ((0, 1), (1, 2), (2, 0)):
        p0 = a[:, i]
        d = a[:, j] - p0
        h = np.cross(d, e2)
        det = np.einsum("pc,pc->p", e1, h)
        ok = np.abs(det) > INTERSECT_MARGIN * (np.linalg.norm(d, axis=1) * np.linalg.norm(e1, axis=1)
                                               * np.linalg.norm(e2, axis=1) + 1e-300)
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = p0 - v0
        u = inv * np.einsum("pc,pc->p", s, h)
        q = np.cross(s, e1)
        w = inv * np.einsum("pc,pc->p", d, q)
        t = inv * np.einsum("pc,pc->p", e2, q)
        m = INTERSECT_MARGIN
        out |= ok & (u > m) & (w > m) & (u + w < 1 - m) & (t > m) & (t < 1 - m)
    return out
