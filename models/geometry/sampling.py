"""Mesh down/up-sampling hierarchies by quadric edge collapse (CoMA-style).

Each level keeps a subset of the previous level's vertices: an edge
collapse moves one endpoint onto the other (whichever costs less under the
summed quadric error of both), so down-sampling is a selection (``keep``:
int [N_coarse] indices into the finer level). Up-sampling puts each fine
vertex at its closest point on the coarse surface: three coarse vertices
and barycentric weights summing to one (``up_idx`` int [N_fine, 3],
``up_w`` float [N_fine, 3]), applied by a gather, never a dense matrix.

Boundary edges (a mask's rim and slits) get perpendicular constraint
quadrics so coarse levels keep the outline; collapses that would make the
surface non-manifold (link condition) or flip a triangle are refused.
A hierarchy depends only on the topology and the template's positions:
``build_hierarchy`` is deterministic, and ``cached_hierarchy`` stores it on
disk keyed by the topology id.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.geometry.proximity import barycentric, closest_points

#: weight of the boundary-preserving quadrics relative to the surface ones
BOUNDARY_WEIGHT = 100.0
#: a collapse is refused if a moved triangle's normal turns by more than this (cosine)
FLIP_COSINE = 0.2


@dataclass(frozen=True)
class Level:
    """One coarser level: its faces, and the maps from/to the finer level above it."""

    faces: np.ndarray      #: int32 [F, 3] into this level's vertices
    keep: np.ndarray       #: int64 [N] indices of the finer level's vertices kept here
    up_idx: np.ndarray     #: int64 [N_fine, 3] this level's vertices that interpolate each finer one
    up_w: np.ndarray       #: float32 [N_fine, 3] barycentric weights (rows sum to 1)


@dataclass(frozen=True)
class MeshHierarchy:
    """Level 0 is the template; ``levels[i]`` is level ``i + 1``."""

    vertices: tuple[np.ndarray, ...]   #: float32 [N_i, 3] per level, level 0 first
    faces0: np.ndarray
    levels: tuple[Level, ...]

    @property
    def sizes(self) -> list[int]:
        return [len(v) for v in self.vertices]

    def faces(self, level: int) -> np.ndarray:
        return self.faces0 if level == 0 else self.levels[level - 1].faces

    def downsample(self, x: np.ndarray, level: int) -> np.ndarray:
        """Values ``[..., N_level, C]`` -> ``[..., N_level+1, C]`` (a selection)."""
        return x[..., self.levels[level].keep, :]

    def upsample(self, x: np.ndarray, level: int) -> np.ndarray:
        """Values ``[..., N_level+1, C]`` -> ``[..., N_level, C]`` (barycentric gather)."""
        lv = self.levels[level]
        return np.einsum("...nkc,nk->...nc", x[..., lv.up_idx, :], lv.up_w)

    def save(self, path: str | Path) -> None:
        arrays = {"vertices0": self.vertices[0], "faces0": self.faces0}
        for i, lv in enumerate(self.levels):
            arrays.update({f"faces{i + 1}": lv.faces, f"keep{i + 1}": lv.keep,
                           f"up_idx{i + 1}": lv.up_idx, f"up_w{i + 1}": lv.up_w})
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @staticmethod
    def load(path: str | Path) -> MeshHierarchy:
        with np.load(path, allow_pickle=False) as z:
            n = sum(1 for k in z.files if k.startswith("keep"))
            verts = [z["vertices0"]]
            levels = []
            for i in range(1, n + 1):
                keep = z[f"keep{i}"]
                verts.append(verts[-1][keep])
                levels.append(Level(z[f"faces{i}"], keep, z[f"up_idx{i}"], z[f"up_w{i}"]))
            return MeshHierarchy(tuple(verts), z["faces0"], tuple(levels))


def _plane_quadrics(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per-vertex sum of the (unweighted) plane quadrics of its faces: [N, 4, 4]."""
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = n / np.maximum(length, 1e-30)
    d = -np.einsum("fc,fc->f", n, v[f[:, 0]])
    p = np.concatenate([n, d[:, None]], axis=1)                       # [F, 4]
    kf = p[:, :, None] * p[:, None, :]
    q = np.zeros((len(v), 4, 4))
    for k in range(3):
        np.add.at(q, f[:, k], kf)
    # boundary constraints: a plane through each boundary edge, perpendicular to its face
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    owner = np.tile(np.arange(len(f)), 3)
    key = np.sort(edges, axis=1)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    border = counts[inv.reshape(-1)] == 1
    for (a, b), face in zip(edges[border], owner[border]):
        e = v[b] - v[a]
        m = np.cross(e, n[face])
        m = m / max(np.linalg.norm(m), 1e-30)
        pp = np.append(m, -m.dot(v[a]))
        kk = BOUNDARY_WEIGHT * np.outer(pp, pp)
        q[a] += kk
        q[b] += kk
    return q


def decimate(vertices: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Collapse edges until ``target`` vertices remain.

    Returns:
        ``(keep, faces)``: int64 [target] kept vertex indices (sorted) and the
        coarse faces int32 [F', 3] indexing into ``keep``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    n = len(v)
    q = _plane_quadrics(v, f)
    alive = np.ones(n, dtype=bool)
    face_alive = np.ones(len(f), dtype=bool)
    tris = [set() for _ in range(n)]                 # faces around each vertex
    for i, (a, b, c) in enumerate(f):
        tris[a].add(i)
        tris[b].add(i)
        tris[c].add(i)
    nbrs = [set() for _ in range(n)]
    for a, b, c in f:
        nbrs[a] |= {b, c}
        nbrs[b] |= {a, c}
        nbrs[c] |= {a, b}
    f = f.copy()
    version = np.zeros(n, dtype=np.int64)
    heap: list[tuple[float, int, int, int, int]] = []

    def cost(a: int, b: int) -> tuple[float, int, int]:
        qq = q[a] + q[b]
        ha, hb = np.append(v[a], 1.0), np.append(v[b], 1.0)
        ca, cb = ha @ qq @ ha, hb @ qq @ hb
        return (ca, a, b) if ca <= cb else (cb, b, a)      # (cost, survivor, removed)

    def push(a: int, b: int) -> None:
        c, keep_v, drop_v = cost(a, b)
        heapq.heappush(heap, (c, min(a, b), max(a, b), int(version[a] + version[b]), keep_v * n + drop_v))

    for a in range(n):
        for b in nbrs[a]:
            if a < b:
                push(a, b)

    remaining = n
    while remaining > target and heap:
        c, a, b, ver, code = heapq.heappop(heap)
        if not (alive[a] and alive[b]) or b not in nbrs[a] or ver != version[a] + version[b]:
            continue
        keep_v, drop_v = divmod(code, n)
        if not _can_collapse(keep_v, drop_v, nbrs, tris, f, v):
            continue
        # collapse drop_v onto keep_v
        for t in list(tris[drop_v]):
            if keep_v in f[t]:
                face_alive[t] = False
                for w in f[t]:
                    tris[w].discard(t)
            else:
                f[t][f[t] == drop_v] = keep_v
                tris[keep_v].add(t)
        tris[drop_v].clear()
        for w in nbrs[drop_v]:
            nbrs[w].discard(drop_v)
            if w != keep_v:
                nbrs[w].add(keep_v)
                nbrs[keep_v].add(w)
        nbrs[keep_v].discard(drop_v)
        nbrs[drop_v].clear()
        alive[drop_v] = False
        q[keep_v] += q[drop_v]
        version[keep_v] += 1
        remaining -= 1
        for w in nbrs[keep_v]:
            push(keep_v, w)
    keep = np.flatnonzero(alive)
    remap = -np.ones(n, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    coarse = remap[f[face_alive]]
    return keep, coarse.astype(np.int32)


def _can_collapse(keep_v: int, drop_v: int, nbrs, tris, f, v) -> bool:
    """Link condition (stay manifold) and no flipped triangles."""
    shared = nbrs[keep_v] & nbrs[drop_v]
    opposite = set()
    for t in tris[drop_v]:
        if keep_v in f[t]:
            opposite |= set(f[t].tolist()) - {keep_v, drop_v}
    if shared != opposite:
        return False
    for t in tris[drop_v]:
        tri = f[t]
        if keep_v in tri:
            continue
        p = v[tri]
        before = np.cross(p[1] - p[0], p[2] - p[0])
        p2 = p.copy()
        p2[tri == drop_v] = v[keep_v]
        after = np.cross(p2[1] - p2[0], p2[2] - p2[0])
        la, lb = np.linalg.norm(after), np.linalg.norm(before)
        if la < 1e-30 or after.dot(before) < FLIP_COSINE * la * lb:
            return False
    return True


def upsampling_weights(fine: np.ndarray, coarse: np.ndarray, coarse_faces: np.ndarray,
                       kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each fine vertex as a barycentric point of its closest coarse triangle.

    Vertices the coarse level kept map to themselves exactly.
    """
    point, _, face = closest_points(coarse, coarse_faces, fine, return_faces=True)
    idx = coarse_faces[face].astype(np.int64)                         # [N_fine, 3]
    w = barycentric(point, coarse[idx[:, 0]], coarse[idx[:, 1]], coarse[idx[:, 2]])
    w = np.clip(w, 0.0, None)
    w = w / w.sum(axis=1, keepdims=True)
    exact = np.zeros(len(fine), dtype=bool)
    exact[kept] = True
    idx[kept] = np.arange(len(kept))[:, None]
    w[kept] = np.array([1.0, 0.0, 0.0])
    return idx, w.astype(np.float32)


def build_hierarchy(vertices: np.ndarray, faces: np.ndarray, factors: tuple[int, ...] = (4, 4, 4, 4)) -> MeshHierarchy:
    """Levels of ``1/factor`` the vertices each (CoMA and Neural3DMM: 4, 4, 4, 4)."""
    verts = [np.asarray(vertices, dtype=np.float32)]
    level_faces = [np.asarray(faces, dtype=np.int32)]
    levels = []
    for factor in factors:
        v, fc = verts[-1], level_faces[-1]
        keep, coarse_faces = decimate(v, fc, int(np.ceil(len(v) / factor)))
        coarse = v[keep]
        up_idx, up_w = upsampling_weights(v.astype(np.float64), coarse.astype(np.float64), coarse_faces, keep)
        levels.append(Level(coarse_faces, keep, up_idx, up_w))
        verts.append(coarse)
        level_faces.append(coarse_faces)
    return MeshHierarchy(tuple(verts), level_faces[0], tuple(levels))


def cached_hierarchy(vertices: np.ndarray, faces: np.ndarray, topology_id: str, cache_dir: str | Path,
                     factors: tuple[int, ...] = (4, 4, 4, 4)) -> MeshHierarchy:
    """``build_hierarchy``, stored once per topology id under ``cache_dir``."""
    path = Path(cache_dir) / f"hierarchy-{topology_id}-{'x'.join(map(str, factors))}.npz"
    if path.is_file():
        try:
            return MeshHierarchy.load(path)
        except (OSError, KeyError, ValueError):
            path.unlink(missing_ok=True)            # a broken cache file is rebuilt
    h = build_hierarchy(vertices, faces, factors)
    h.save(path)
    return h
