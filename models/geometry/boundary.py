"""Boundary loops of a triangle mesh.

A boundary edge belongs to one triangle only. Its edges, directed as their
triangle runs them, chain into closed loops: the rim of a face mask, the
mouth slit, the eye slits. ``faces`` is ``int [F, 3]``; a loop is an
``int [L]`` array of vertex ids in order (the mesh lies on the loop's left).
"""

from __future__ import annotations

import numpy as np


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """Directed boundary edges ``int [E, 2]`` (as their one triangle runs them)."""
    f = np.asarray(faces, dtype=np.int64)
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    _, inverse, counts = np.unique(undirected, axis=0, return_inverse=True, return_counts=True)
    return directed[counts[inverse.reshape(-1)] == 1]


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Every boundary loop, longest first. A vertex where two loops touch (a
    non-manifold pinch) ends the walk; what remains of such a loop is returned
    as it was walked."""
    edges = boundary_edges(faces)
    following: dict[int, int] = {}
    for a, b in edges:
        following.setdefault(int(a), int(b))
    loops = []
    seen: set[int] = set()
    for start in following:
        if start in seen:
            continue
        loop = [start]
        seen.add(start)
        v = following[start]
        while v != start and v not in seen and v in following:
            loop.append(v)
            seen.add(v)
            v = following[v]
        loops.append(np.array(loop, dtype=np.int64))
    return sorted(loops, key=len, reverse=True)
