"""Spiral neighbourhoods (Neural3DMM / SpiralNet++ ordering).

A vertex's spiral is the vertex, then its 1-ring, then its 2-ring, ...,
each ring walked counter-clockwise (seen from outside) around its vertex,
every ring starting from the neighbour that points most "up" (the
template's +y, projected on the tangent plane), so the orderings of
neighbouring vertices agree and a spiral convolution can share its weights.
With ``dilation`` d the spiral keeps every d-th entry of a spiral d times
as long. Spirals have a fixed length; short ones (mesh borders) are padded
with the index ``N``, a dummy vertex whose features are kept at zero.
"""

from __future__ import annotations

import numpy as np

from models.geometry.normals import vertex_normals

# The reference direction spirals start from (+y: towards the forehead).
UP = np.array([0.0, 1.0, 0.0])


def ordered_neighbours(vertices: np.ndarray, faces: np.ndarray,
                       up: np.ndarray = UP) -> list[np.ndarray]:
    """Each vertex's neighbours sorted counter-clockwise about its normal,
    starting from the one closest to ``up`` in the tangent plane."""
    v = np.asarray(vertices, np.float64)
    n = vertex_normals(v, faces)
    nbrs: list[set[int]] = [set() for _ in range(len(v))]
    for a, b, c in faces:
        nbrs[a] |= {int(b), int(c)}
        nbrs[b] |= {int(a), int(c)}
        nbrs[c] |= {int(a), int(b)}
    out = []
    for i, ring in enumerate(nbrs):
        ids = np.array(sorted(ring), dtype=np.int64)
        if len(ids) == 0:
            out.append(ids)
            continue
        e1 = up - n[i] * up.dot(n[i])
        if np.linalg.norm(e1) < 1e-9:                   # normal parallel to up
            e1 = np.array([1.0, 0.0, 0.0]) - n[i] * n[i, 0]
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(n[i], e1)
        d = v[ids] - v[i]
        angle = np.mod(np.arctan2(d @ e2, d @ e1), 2 * np.pi)
        out.append(ids[np.argsort(angle, kind="stable")])
    return out


def spirals(vertices: np.ndarray, faces: np.ndarray, length: int, dilation: int = 1,
            up: np.ndarray = UP) -> np.ndarray:
    """Spiral indices ``int64 [N, length]`` (padded with ``N``)."""
    order = ordered_neighbours(vertices, faces, up)
    n = len(order)
    want = length * dilation
    out = np.full((n, length), n, dtype=np.int64)
    for i in range(n):
        seq = [i]
        seen = {i}
        frontier = [i]
        while len(seq) < want and frontier:
            nxt = []
            for u in frontier:
                for w in order[u]:
                    if w not in seen:
                        seen.add(int(w))
                        nxt.append(int(w))
                        seq.append(int(w))
            frontier = nxt
        picked = seq[:want:dilation][:length]
        out[i, :len(picked)] = picked
    return out
