"""Classical neutralization (Pan et al., CVPR 2010, "Removal of 3D facial
expressions: a learning-based approach").

Data forms: meshes ``float [B, N, 3]`` (metres) of one topology with faces
``int [F, 3]``; per-triangle quantities are ``[B, F, ...]``.

1. Normal space. Each triangle's unit normal is a point on the sphere S^2.
   Per triangle, the Karcher (geodesic) mean of the training normals is the
   base point; a face becomes the log maps of its normals there, ``[B, F, 2]``
   in a fixed tangent frame, flattened to ``2F`` numbers and reduced by PCA
   (the "normal space").
2. Expression residue. Per triangle, a 5-tuple that turns the expressive
   triangle into the neutral one, measured in the expressive triangle's own
   frame (``u`` along its first edge ``v1 - v0``, ``w = n x u``):

       rot_u, rot_w   the rotation of the normal, ``log_{n_expr}(n_neutral)`` as
                      a 2-vector in the tangent plane (components along u, w)
       spin           the rotation about the (rotated) normal that then aligns
                      the first edge's direction (radians)
       log_l          the log stretch along the first edge (``log l'/l``)
       log_h          the log stretch across it (``log h'/h``, h the height
                      of the third corner over the first edge)

   The in-plane shear (where the third corner sits along the first edge) is
   left out, as a 5-tuple must: applying a residue keeps the input's shear
   ratio ``a / l``. The paper leaves the exact tuple open; this is our choice.
   All five are zero for a triangle that does not change. The residues of a
   face, ``5F`` numbers, are reduced by PCA (the "expression residue space").
3. Regression. Radial basis functions centred on the training faces map the
   reduced normal coordinates to the reduced residue coordinates, with a
   Mahalanobis metric: the normal coordinates are whitened by the normal-PCA
   eigenvalues, and each centre's width is scaled by the mean distance to its
   nearest training neighbours (a local metric); a ridge-regularised linear
   term carries what the kernels do not.
4. Poisson reconstruction. Each triangle's predicted residue turns the input
   triangle into a target triangle (edge vectors); the vertices whose
   per-triangle gradients best match the targets solve the cotangent
   Laplacian system ``L x = G^T A g`` (G the gradient operator, A the triangle
   areas of a reference face). ``L`` with one pinned vertex per connected
   component (the vertex that moves least over the training expressions, its
   position taken from the input) is factored once per topology
   (``scipy.sparse.linalg.splu``) and re-solved per frame with three
   right-hand sides per mesh. A zero residue gives the input mesh back.

Transfer applies the source's expression residue (neutral -> expressive, the
inverse of the predicted neutralizing residue, each triangle's change taken
in its own frame) to the target's triangles and solves the same Poisson
system.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from models.checkpoint import (
    CheckpointError, CheckpointMeta, building, check_index, check_topology, config_from_dict, load_checkpoint,
    save_checkpoint, tensor_of,
)
from models.constants import EPS_LENGTH, MM_PER_M
from models.neutral.base import Neutralizer, as_batch

FAMILY = "neutral_classical"
#: the dtypes of its checkpoint (``save_classical``): index tables int64, the rest float32
DTYPES = {"faces": torch.int64, "pins": torch.int64, "normal_faces": torch.int64, "residue_faces": torch.int64,
          "*": torch.float32}
#: residue components per triangle: rot_u, rot_w, spin, log stretch along the axis, across it
RESIDUE_DIM = 5
#: the full in-plane change before the shear is dropped: rot_u, rot_w, spin, log-stretch tensor (11, 12, 22)
FULL_DIM = 6
#: below this (radians, or a stretch-eigenvalue gap) a rotation / anisotropy is treated as none
EPS_ANGLE = 1e-9
#: Karcher mean iterations (started from the normalised extrinsic mean, which is already close)
KARCHER_ITERS = 4
#: at most this many training faces enter the Karcher means
KARCHER_SAMPLES = 1500
#: faces per chunk while fitting
FIT_CHUNK = 24
#: oversampling and power iterations of the randomised PCA
PCA_OVERSAMPLE = 16
PCA_POWER_ITERS = 3

Progress = Callable[[Iterable, int, str], Iterable]


@dataclass(frozen=True)
class ClassicalConfig:
    """Everything that shapes a fit (stored in the checkpoint)."""

    normal_dims: int = 200        #: normal-space PCA dimensions the linear term reads
    rbf_dims: int = 20            #: leading normal-space dimensions the RBF kernels see (Mahalanobis metric)
    residue_dims: int = 24        #: expression-residue PCA dimensions (the regression's output)
    rbf_centres: int = 2000       #: RBF centres (training faces drawn at random; all if fewer)
    neighbours: int = 8           #: nearest centres that set each centre's local width
    rbf_width: float = 1.0        #: kernel width as a multiple of that local width
    ridge: float = 1e-3           #: linear term's ridge (relative to the number of faces)
    rbf_ridge: float = 1e-2       #: kernel weights' ridge (relative to the number of faces)
    anchor_mm: float | None = 0.01  #: vertices moving less than this (mm) in training stay where the input has them;
    #:                              None: only one pinned vertex per connected component (the paper)
    learn_axes: bool = True       #: stretch axes learned per triangle (False: along the first edge)
    seed: int = 0

    @staticmethod
    def from_dict(d: dict, path: str | Path = "checkpoint") -> ClassicalConfig:
        return config_from_dict(ClassicalConfig, d, path)


# ---------------------------------------------------------------- triangles on the sphere

@dataclass(frozen=True)
class TriangleFrames:
    """Each triangle's own frame and shape, ``[..., F, 3]`` vectors and ``[..., F]`` scalars.

    ``u`` along the first edge ``v1 - v0``, ``n`` the unit normal, ``w = n x u``;
    the corners are ``(0, 0), (length, 0), (along, height)`` in ``(u, w)`` coordinates."""

    u: np.ndarray
    w: np.ndarray
    n: np.ndarray
    length: np.ndarray
    along: np.ndarray
    height: np.ndarray


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), EPS_LENGTH)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


def _edges(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(v1 - v0, v2 - v0)`` of every triangle, each ``[..., F, 3]``."""
    v0 = vertices[..., faces[:, 0], :]
    return vertices[..., faces[:, 1], :] - v0, vertices[..., faces[:, 2], :] - v0


def triangle_frames(vertices: np.ndarray, faces: np.ndarray) -> TriangleFrames:
    """``vertices [..., N, 3]``, ``faces [F, 3]`` -> every triangle's frame."""
    e1, e2 = _edges(vertices, faces)
    n = _unit(np.cross(e1, e2))
    length = np.linalg.norm(e1, axis=-1)
    u = e1 / np.maximum(length, EPS_LENGTH)[..., None]
    w = np.cross(n, u)
    return TriangleFrames(u, w, n, length, _dot(e2, u), _dot(e2, w))


def sphere_log(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Log map of S^2 at ``p [..., 3]``: the tangent vector pointing to ``q [..., 3]`` whose
    length is the geodesic distance (both unit)."""
    c = np.clip(_dot(p, q), -1.0, 1.0)
    perp = q - c[..., None] * p
    s = np.linalg.norm(perp, axis=-1)
    scale = np.arctan2(s, c) / np.maximum(s, EPS_ANGLE)             # -> 1 as the angle -> 0
    return perp * scale[..., None]


def sphere_exp(p: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Exp map of S^2 at ``p [..., 3]`` of the tangent vector ``v [..., 3]``."""
    theta = np.linalg.norm(v, axis=-1, keepdims=True)
    return _unit(np.cos(theta) * p + np.sin(theta) * v / np.maximum(theta, EPS_ANGLE))


def karcher_mean(normals: np.ndarray, iters: int = KARCHER_ITERS) -> np.ndarray:
    """Per-triangle geodesic mean of unit normals ``[M, F, 3]`` -> ``[F, 3]``."""
    mean = _unit(normals.sum(axis=0))
    for _ in range(iters):
        mean = sphere_exp(mean, sphere_log(mean, normals).mean(axis=0))
    return mean


def tangent_basis(p: np.ndarray, hint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal basis ``(t1, t2)`` of the tangent planes at ``p [F, 3]``, ``t1``
    along ``hint [F, 3]`` projected onto the plane."""
    t1 = _unit(hint - _dot(hint, p)[..., None] * p)
    return t1, np.cross(p, t1)


def normal_coordinates(normals: np.ndarray, base: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Unit normals ``[..., F, 3]`` -> their log maps at ``base [F, 3]`` in the tangent bases
    ``(t1, base x t1)``: ``[..., F, 2]`` (the normal space before PCA)."""
    log = sphere_log(np.broadcast_to(base, normals.shape), normals)
    return np.stack([_dot(log, t1), _dot(log, np.cross(base, t1))], axis=-1)


# ---------------------------------------------------------------- the expression residue

def _rotate_tangent(t: np.ndarray, rot: np.ndarray, f: TriangleFrames) -> np.ndarray:
    """Rotate tangent vectors ``t [..., F, 2]`` (``(u, w)`` coordinates) by the rotation that
    takes ``n`` to ``exp_n(rot)`` (``rot [..., F, 2]``, about ``n x rot``) -> ``[..., F, 3]``."""
    theta = np.linalg.norm(rot, axis=-1)
    d = rot / np.maximum(theta, EPS_ANGLE)[..., None]
    d = np.where((theta < EPS_ANGLE)[..., None], np.array([1.0, 0.0], rot.dtype), d)
    alpha = t[..., 0] * d[..., 0] + t[..., 1] * d[..., 1]               # along the rotation: turns
    beta = t[..., 1] * d[..., 0] - t[..., 0] * d[..., 1]                # across it: unchanged
    along = d[..., 0, None] * f.u + d[..., 1, None] * f.w
    across = d[..., 0, None] * f.w - d[..., 1, None] * f.u
    return ((alpha * np.cos(theta))[..., None] * along - (alpha * np.sin(theta))[..., None] * f.n
            + beta[..., None] * across)


def full_residue(source: np.ndarray, target: np.ndarray, faces: np.ndarray,
                 frames: TriangleFrames | None = None) -> np.ndarray:
    """Everything that turns each triangle of ``source [..., N, 3]`` into that of ``target``
    but its position: ``[..., F, 6]`` = (rot_u, rot_w, spin, l11, l12, l22).

    ``rot`` is ``log_{n_source}(n_target)`` in the source frame; after that rotation the
    in-plane map ``M`` (source corners -> target corners) is split by the polar decomposition
    ``M = R(spin) exp(l)``, ``l`` the symmetric log-stretch tensor in ``(u, w)`` coordinates."""
    s = frames if frames is not None else triangle_frames(source, faces)
    e1, e2 = _edges(target, faces)
    log = sphere_log(s.n, _unit(np.cross(e1, e2)))
    rot = np.stack([_dot(log, s.u), _dot(log, s.w)], axis=-1)
    one, zero = np.ones_like(s.length), np.zeros_like(s.length)
    ru = _rotate_tangent(np.stack([one, zero], -1), rot, s)
    rw = _rotate_tangent(np.stack([zero, one], -1), rot, s)
    # M = [e1' e2'] [[l, a], [0, h]]^-1 with e' the target edges in the rotated frame
    length = np.maximum(s.length, EPS_LENGTH)
    height = np.where(np.abs(s.height) < EPS_LENGTH, EPS_LENGTH, s.height)
    m11, m21 = _dot(e1, ru) / length, _dot(e1, rw) / length
    m12 = (_dot(e2, ru) - s.along * m11) / height
    m22 = (_dot(e2, rw) - s.along * m21) / height
    spin = np.arctan2(m21 - m12, m11 + m22)
    c, sn = np.cos(spin), np.sin(spin)
    p, r = c * m11 + sn * m21, c * m22 - sn * m12                        # R(-spin) M, symmetrised
    q = 0.5 * ((c * m12 + sn * m22) + (c * m21 - sn * m11))
    return np.concatenate([rot, spin[..., None], _log_spd(p, q, r)], axis=-1)


def _log_spd(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Matrix log of the symmetric 2x2 ``[[p, q], [q, r]]`` (positive definite) -> ``[..., 3]`` (11, 12, 22)."""
    mid = 0.5 * (p + r)
    gap = np.sqrt((0.5 * (p - r)) ** 2 + q ** 2)
    lo = np.log(np.maximum(mid - gap, EPS_LENGTH))
    hi = np.log(np.maximum(mid + gap, EPS_LENGTH))
    slope = np.where(gap > EPS_ANGLE, (hi - lo) / (2 * np.maximum(gap, EPS_ANGLE)), 1.0 / np.maximum(mid, EPS_LENGTH))
    base = 0.5 * (hi + lo)
    return np.stack([base + slope * (p - mid), slope * q, base + slope * (r - mid)], axis=-1)


def project_residue(full: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """The 5-tuple residue from the full one ``[..., F, 6]``: the log-stretch tensor's diagonal
    in each triangle's stretch frame (``axes [F]``: its angle from the first edge); the shear
    (off-diagonal) is dropped. ``[..., F, 5]``."""
    c, s = np.cos(axes), np.sin(axes)
    l11, l12, l22 = full[..., 3], full[..., 4], full[..., 5]
    along = c * c * l11 + 2 * c * s * l12 + s * s * l22
    across = s * s * l11 - 2 * c * s * l12 + c * c * l22
    return np.concatenate([full[..., :3], along[..., None], across[..., None]], axis=-1)


def residue(source: np.ndarray, target: np.ndarray, faces: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """The residue ``[..., F, 5]`` that turns ``source [..., N, 3]`` into (about) ``target``."""
    return project_residue(full_residue(source, target, faces), axes)


def stretch_axes(full: np.ndarray) -> np.ndarray:
    """Per triangle, the stretch frame that best diagonalises the training log-stretch tensors
    (least off-diagonal energy, closed form): ``full [M, F, 6] -> [F]`` angles from the first edge."""
    a = 0.5 * (full[..., 5] - full[..., 3]).astype(np.float64)          # off-diagonal in a frame at angle t:
    b = full[..., 4].astype(np.float64)                                 # a sin 2t + b cos 2t
    saa, sab, sbb = (a * a).sum(0), (a * b).sum(0), (b * b).sum(0)
    # the smaller eigenvector of [[saa, sab], [sab, sbb]] is (sin 2t, cos 2t)
    lam = 0.5 * (saa + sbb) - np.sqrt((0.5 * (saa - sbb)) ** 2 + sab ** 2)
    x, y = sab, lam - saa                                               # (saa - lam) x + sab y = 0 -> (sab, lam - saa)
    flat = np.hypot(x, y) < EPS_LENGTH
    x, y = np.where(flat, lam - sbb, x), np.where(flat, sab, y)         # the other row of the same system
    return np.where(np.hypot(x, y) < EPS_LENGTH, 0.0, 0.5 * np.arctan2(x, y))


def target_edges(frames: TriangleFrames, res: np.ndarray, axes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply residues ``res [..., F, 5]`` to the triangles ``frames``: the target triangles'
    edge vectors ``(v1 - v0, v2 - v0)``, each ``[..., F, 3]``."""
    c, s = np.cos(axes), np.sin(axes)
    ea, eb = np.exp(res[..., 3]), np.exp(res[..., 4])
    s11, s12, s22 = ea * c * c + eb * s * s, (ea - eb) * c * s, ea * s * s + eb * c * c
    cs, ss = np.cos(res[..., 2]), np.sin(res[..., 2])
    m11, m12, m21, m22 = cs * s11 - ss * s12, cs * s12 - ss * s22, ss * s11 + cs * s12, ss * s12 + cs * s22
    f = frames
    e1 = np.stack([m11 * f.length, m21 * f.length], axis=-1)
    e2 = np.stack([m11 * f.along + m12 * f.height, m21 * f.along + m22 * f.height], axis=-1)
    return _rotate_tangent(e1, res[..., :2], f), _rotate_tangent(e2, res[..., :2], f)


# ---------------------------------------------------------------- Poisson reconstruction

def gradient_operator(vertices: np.ndarray, faces: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """The per-triangle gradient of piecewise-linear functions on a mesh ``[N, 3]``:
    ``G [3F, N]`` (row ``3f + d``: direction ``d`` in triangle ``f``) and the areas ``[F]``."""
    x = np.asarray(vertices, np.float64)[faces]                          # [F, corner, 3]
    cross = np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0])
    twice_area = np.maximum(np.linalg.norm(cross, axis=-1), EPS_LENGTH ** 2)
    n = cross / twice_area[:, None]
    grads = np.stack([np.cross(n, x[:, (i + 2) % 3] - x[:, (i + 1) % 3]) for i in range(3)], axis=1)
    grads /= twice_area[:, None, None]                                   # [F, corner, direction]
    rows = np.broadcast_to(3 * np.arange(len(faces))[:, None, None] + np.arange(3), grads.shape)
    cols = np.broadcast_to(faces[:, :, None], grads.shape)
    G = sp.csr_matrix((grads.ravel(), (rows.ravel(), cols.ravel())), shape=(3 * len(faces), len(vertices)))
    return G, twice_area / 2


class PoissonSolver:
    """Vertices from per-triangle target edges, by least squares on the gradients.

    Built once per topology from a reference face ``[N, 3]``: ``L = G^T A G`` (the
    cotangent Laplacian, ``G`` the gradient operator and ``A`` the areas) with the
    ``pins`` eliminated is factored once (``splu``); each ``solve`` re-uses the factor
    for a whole batch, three right-hand sides per mesh. The target gradient of triangle
    ``f`` is ``grad(phi_1) e1 + grad(phi_2) e2`` (corner 0 at the origin), so the right-hand
    side ``G^T A g = K [e1; e2]`` with ``K [N, 2F]`` precomputed; target edges taken from
    a mesh give that mesh back exactly."""

    def __init__(self, reference: np.ndarray, faces: np.ndarray, pins: np.ndarray) -> None:
        self.faces = np.asarray(faces, np.int64)
        self.pins = np.asarray(pins, np.int64)
        self.n_vertices = len(reference)
        G, area = gradient_operator(reference, self.faces)
        GtA = (G.T @ sp.diags(np.repeat(area, 3))).tocsr()
        L = (GtA @ G).tocsr()
        n_faces = len(self.faces)
        rows, cols = np.arange(3 * n_faces), np.repeat(np.arange(n_faces), 3)
        corner = [np.asarray(G[rows, np.repeat(self.faces[:, k], 3)]).ravel() for k in (1, 2)]
        K = sp.hstack([GtA @ sp.csr_matrix((c, (rows, cols)), shape=(3 * n_faces, n_faces)) for c in corner])
        self.free = np.setdiff1d(np.arange(self.n_vertices), self.pins)
        self.K = K.tocsr()[self.free]                                    # [free, 2F]
        self.L_pinned = L[self.free][:, self.pins].tocsr()              # [free, P]
        self.lu = splu(L[self.free][:, self.free].tocsc(), permc_spec="MMD_AT_PLUS_A")

    def solve(self, e1: np.ndarray, e2: np.ndarray, pinned: np.ndarray) -> np.ndarray:
        """Target edges ``e1, e2 [B, F, 3]`` and the pinned vertices' positions ``[B, P, 3]``
        -> vertices ``float64 [B, N, 3]``."""
        b = len(e1)
        e = np.concatenate([e1, e2], axis=1).transpose(1, 0, 2).reshape(2 * len(self.faces), 3 * b)
        pin = np.asarray(pinned, np.float64).transpose(1, 0, 2).reshape(len(self.pins), 3 * b)
        x = np.empty((self.n_vertices, 3 * b))
        x[self.free] = self.lu.solve(self.K @ e - self.L_pinned @ pin)
        x[self.pins] = pin
        return x.reshape(self.n_vertices, b, 3).transpose(1, 0, 2)


def component_labels(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """The connected component of each vertex ``[N]`` (a vertex in no face is its own)."""
    f = np.asarray(faces, np.int64)
    adj = sp.coo_matrix((np.ones(f.size), (f.ravel(), np.roll(f, 1, axis=1).ravel())), shape=(n_vertices,) * 2)
    return connected_components(adj, directed=False)[1]


def choose_pins(motion: np.ndarray, faces: np.ndarray, anchor: float | None = None) -> np.ndarray:
    """The vertices that keep the input's position: the least moving vertex of each connected
    component (``motion [N]``, metres), and every vertex that moves less than ``anchor``."""
    labels = component_labels(faces, len(motion))
    order = np.lexsort((motion, labels))
    least = order[np.r_[True, labels[order][1:] != labels[order][:-1]]]
    if anchor is None:
        return np.sort(least)
    return np.union1d(least, np.flatnonzero(motion < anchor))


# ---------------------------------------------------------------- PCA and the regression

def pca(data: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Randomised PCA of ``data [M, D]`` (not copied): ``(mean [D], basis [k, D], variances [k])``."""
    k = min(k, len(data) - 1, data.shape[1])
    mean = data.mean(axis=0, dtype=np.float64).astype(data.dtype)

    def times(x: np.ndarray) -> np.ndarray:                   # (data - mean) @ x
        return data @ x - (mean @ x)[None]

    def times_t(y: np.ndarray) -> np.ndarray:                 # (data - mean).T @ y
        return data.T @ y - np.outer(mean, y.sum(axis=0))

    rng = np.random.default_rng(seed)
    q = np.linalg.qr(times(rng.standard_normal((data.shape[1], k + PCA_OVERSAMPLE)).astype(data.dtype)))[0]
    for _ in range(PCA_POWER_ITERS):
        q = np.linalg.qr(times(np.linalg.qr(times_t(q))[0]))[0]
    _, sv, vt = np.linalg.svd(times_t(q).T, full_matrices=False)
    return mean, vt[:k], sv[:k] ** 2 / max(len(data) - 1, 1)


def rbf_features(z: np.ndarray, centres: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Gaussian kernels: ``z [B, k]``, ``centres [C, k]``, ``widths [C]`` -> ``[B, C]``."""
    d2 = (z * z).sum(-1)[:, None] - 2 * z @ centres.T + (centres * centres).sum(-1)[None]
    return np.exp(-np.maximum(d2, 0.0) / (2 * widths ** 2)[None])


def local_widths(centres: np.ndarray, neighbours: int) -> np.ndarray:
    """Each centre's local scale: its mean distance to its ``neighbours`` nearest centres ``[C]``."""
    d2 = (centres * centres).sum(-1)[:, None] - 2 * centres @ centres.T + (centres * centres).sum(-1)[None]
    np.fill_diagonal(d2, np.inf)
    k = min(neighbours, len(centres) - 1)
    if k < 1:
        return np.ones(len(centres))
    near = np.partition(d2, k - 1, axis=1)[:, :k]
    return np.sqrt(np.maximum(near, 0.0)).mean(axis=1)


@dataclass(frozen=True)
class ClassicalParams:
    """Everything a fitted model holds (the checkpoint's tensors). ``F`` triangles, ``Fn`` of
    them in the normal space, ``Fr`` in the residue space (those with a free vertex)."""

    reference: np.ndarray      #: [N, 3] the mean training neutral (the Poisson operator's geometry)
    faces: np.ndarray          #: [F, 3]
    pins: np.ndarray           #: [P] vertices that keep the input's position
    base: np.ndarray           #: [F, 3] Karcher mean normal of each triangle
    tangent: np.ndarray        #: [F, 3] first tangent direction at ``base``
    axes: np.ndarray           #: [F] stretch axis angle from the first edge
    normal_faces: np.ndarray   #: [Fn]
    residue_faces: np.ndarray  #: [Fr]
    normal_mean: np.ndarray    #: [2 Fn]
    normal_basis: np.ndarray   #: [K, 2 Fn] leading normal-PCA directions (the RBF inputs)
    normal_scale: np.ndarray   #: [K] their standard deviations (the Mahalanobis metric)
    linear: np.ndarray         #: [R, 2 Fn] the linear term, folded with its normal-PCA basis
    linear_bias: np.ndarray    #: [R]
    centres: np.ndarray        #: [C, K] RBF centres (whitened normal coordinates)
    widths: np.ndarray         #: [C]
    rbf_weights: np.ndarray    #: [C, R]
    residue_mean: np.ndarray   #: [5 Fr]
    residue_basis: np.ndarray  #: [R, 5 Fr]


def _iterate(progress: Progress | None, items: Iterable, total: int, desc: str) -> Iterable:
    return items if progress is None else progress(items, total, desc)


def fit_classical(meshes: np.ndarray, neutrals: np.ndarray, faces: np.ndarray, topology_id: str | None,
                  config: ClassicalConfig = ClassicalConfig(), subject: np.ndarray | None = None,
                  progress: Progress | None = None, data: dict | None = None) -> Classical:
    """Fit the normal space, the residue space and the regression between them.

    Args:
        meshes: ``[M, N, 3]`` training faces (expressive, and neutral ones too).
        neutrals: each face's true neutral ``[M, N, 3]``, or ``[S, N, 3]`` with ``subject [M]``.
        faces: ``[F, 3]``.
        topology_id: the topology the model is for.
        progress: ``(items, total, desc) -> items`` for the long stages (e.g. a progress bar).
    """
    faces = np.asarray(faces, np.int64)
    n_faces, m = len(faces), len(meshes)
    rng = np.random.default_rng(config.seed)

    def neutral_of(idx: np.ndarray | slice) -> np.ndarray:
        return np.asarray(neutrals[subject[idx]] if subject is not None else neutrals[idx], np.float32)

    chunks = [slice(i, min(i + FIT_CHUNK, m)) for i in range(0, m, FIT_CHUNK)]
    motion = np.zeros(meshes.shape[1], np.float32)
    for sl in _iterate(progress, chunks, len(chunks), "classical: motion"):
        motion = np.maximum(motion, np.linalg.norm(meshes[sl] - neutral_of(sl), axis=-1).max(axis=0))
    anchor = None if config.anchor_mm is None else config.anchor_mm / MM_PER_M
    pins = choose_pins(motion, faces, anchor)
    reference = (neutrals.mean(axis=0) if subject is not None else neutral_of(slice(None)).mean(axis=0))
    reference = reference.astype(np.float64)
    free = np.ones(meshes.shape[1], bool)
    free[pins] = False
    residue_faces = np.flatnonzero(free[faces].any(axis=1))
    normal_faces = np.arange(n_faces)

    sample = np.sort(rng.choice(m, min(m, KARCHER_SAMPLES), replace=False))
    normals = np.concatenate([triangle_frames(np.asarray(meshes[sample[i:i + FIT_CHUNK]], np.float64), faces).n
                              for i in range(0, len(sample), FIT_CHUNK)])
    base = karcher_mean(normals[:, normal_faces])
    del normals
    tangent, _ = tangent_basis(base, triangle_frames(reference, faces).u[normal_faces])

    coords = np.empty((m, 2 * len(normal_faces)), np.float32)
    full = np.empty((m, len(residue_faces), FULL_DIM), np.float32)
    for sl in _iterate(progress, chunks, len(chunks), "classical: normals and residues"):
        x = np.asarray(meshes[sl], np.float64)
        frames = triangle_frames(x, faces)
        coords[sl] = normal_coordinates(frames.n[:, normal_faces], base, tangent).reshape(len(x), -1)
        full[sl] = full_residue(x, neutral_of(sl).astype(np.float64), faces, frames)[:, residue_faces]
    axes = np.zeros(n_faces)
    if config.learn_axes:
        axes[residue_faces] = stretch_axes(full)
    res = project_residue(full, axes[residue_faces].astype(np.float32)).reshape(m, -1)
    del full

    stages = _iterate(progress, range(3), 3, "classical: PCA and regression")
    for stage in stages:
        if stage == 0:
            n_mean, n_basis, n_var = pca(coords, config.normal_dims, config.seed)
            z = ((coords - n_mean) @ n_basis.T / np.sqrt(n_var)).astype(np.float64)    # whitened [M, Kn]
            del coords
        elif stage == 1:
            r_mean, r_basis, _ = pca(res, config.residue_dims, config.seed)
            target = ((res - r_mean) @ r_basis.T).astype(np.float64)                   # [M, R]
            del res
        else:
            design = np.concatenate([z, np.ones((m, 1))], axis=1)
            reg = config.ridge * m * np.eye(design.shape[1])
            reg[-1, -1] = 0.0
            w = np.linalg.solve(design.T @ design + reg, design.T @ target)
            left = target - design @ w
            k = min(config.rbf_dims, z.shape[1])
            centre_idx = np.sort(rng.choice(m, min(m, config.rbf_centres), replace=False))
            centres = z[centre_idx, :k]
            widths = config.rbf_width * np.maximum(local_widths(centres, config.neighbours), EPS_LENGTH)
            phi = rbf_features(z[:, :k], centres, widths)
            alpha = np.linalg.solve(phi.T @ phi + config.rbf_ridge * m * np.eye(len(centres)), phi.T @ left)
    linear = (w[:-1].T / np.sqrt(n_var)[None]) @ n_basis                                # [R, 2 Fn]
    params = ClassicalParams(
        reference=reference, faces=faces, pins=pins, base=base, tangent=tangent, axes=axes,
        normal_faces=normal_faces, residue_faces=residue_faces, normal_mean=n_mean,
        normal_basis=n_basis[:k], normal_scale=np.sqrt(n_var[:k]), linear=linear,
        linear_bias=w[-1] - linear @ n_mean, centres=centres, widths=widths, rbf_weights=alpha,
        residue_mean=r_mean, residue_basis=r_basis)
    return Classical(config, params, topology_id, data=data)


# ---------------------------------------------------------------- the method

class Classical(Neutralizer):
    """Pan et al.'s neutralizer: normals -> residue (RBF regression) -> Poisson reconstruction."""

    name = "classical"

    def __init__(self, config: ClassicalConfig, params: ClassicalParams, topology_id: str | None = None,
                 data: dict | None = None, metrics: dict | None = None) -> None:
        self.config = config
        self.params = ClassicalParams(**{f.name: np.asarray(getattr(params, f.name)) for f in fields(params)})
        self.topology_id = topology_id
        self.data = dict(data or {})
        self.metrics = dict(metrics or {})
        p = self.params
        self.faces = p.faces.astype(np.int64)
        self.n_vertices = len(p.reference)
        self.solver = PoissonSolver(p.reference, self.faces, p.pins)
        # run-time copies in float64 (a few MB)
        self._f64 = {name: getattr(p, name).astype(np.float64) for name in (
            "base", "tangent", "axes", "normal_mean", "normal_basis", "normal_scale", "linear", "linear_bias",
            "centres", "widths", "rbf_weights", "residue_mean", "residue_basis")}

    def predict_residue(self, meshes: np.ndarray, frames: TriangleFrames | None = None) -> np.ndarray:
        """The neutralizing residue of each triangle ``[B, F, 5]`` (zero outside the residue space)."""
        x = as_batch(meshes, self.n_vertices).astype(np.float64)
        f, p = self._f64, self.params
        frames = frames if frames is not None else triangle_frames(x, self.faces)
        coords = normal_coordinates(frames.n[:, p.normal_faces], f["base"], f["tangent"]).reshape(len(x), -1)
        z = (coords - f["normal_mean"]) @ f["normal_basis"].T / f["normal_scale"]
        reduced = coords @ f["linear"].T + f["linear_bias"] + rbf_features(z, f["centres"], f["widths"]) @ f[
            "rbf_weights"]
        out = np.zeros((len(x), len(self.faces), RESIDUE_DIM))
        out[:, p.residue_faces] = (reduced @ f["residue_basis"] + f["residue_mean"]).reshape(len(x), -1, RESIDUE_DIM)
        return out

    def apply_residue(self, meshes: np.ndarray, res: np.ndarray, frames: TriangleFrames | None = None) -> np.ndarray:
        """Turn each triangle of ``meshes [B, N, 3]`` by ``res [B, F, 5]`` and solve for the
        vertices (pinned vertices from ``meshes``): ``float64 [B, N, 3]``."""
        x = as_batch(meshes, self.n_vertices).astype(np.float64)
        frames = frames if frames is not None else triangle_frames(x, self.faces)
        e1, e2 = target_edges(frames, res, self._f64["axes"])
        return self.solver.solve(e1, e2, x[:, self.params.pins])

    def neutralize(self, meshes: np.ndarray) -> np.ndarray:
        x = as_batch(meshes, self.n_vertices).astype(np.float64)
        frames = triangle_frames(x, self.faces)
        return self.apply_residue(x, self.predict_residue(x, frames), frames).astype(np.float32)

    def transfer(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The expressions of ``source [B, N, 3]`` on the neutral faces ``target [B, N, 3]``.

        Each source triangle's expression residue (its inferred neutral -> the source, in the
        neutral triangle's frame) is applied to the target's triangle, then the Poisson solve
        (pinned vertices from the target)."""
        src = as_batch(source, self.n_vertices).astype(np.float64)
        tgt = as_batch(target, self.n_vertices).astype(np.float64)
        neutral = self.neutralize(src).astype(np.float64)
        expression = residue(neutral, src, self.faces, self._f64["axes"])
        return self.apply_residue(tgt, expression).astype(np.float32)

    def meta(self) -> CheckpointMeta:
        return CheckpointMeta(FAMILY, asdict(self.config), self.topology_id, self.data, self.metrics)


def save_classical(model: Classical, path: str | Path) -> Path:
    """Write ``model`` as a ``neutral_classical`` checkpoint (floats as float32)."""
    import torch

    state = {}
    for f in fields(ClassicalParams):
        a = getattr(model.params, f.name)
        state[f.name] = torch.from_numpy(np.ascontiguousarray(
            a.astype(np.int64) if np.issubdtype(a.dtype, np.integer) else a.astype(np.float32)))
    return save_checkpoint(path, state, model.meta())


def check_tables(path: str | Path, state: dict) -> None:
    """Refuse a checkpoint whose index tables point outside what they index, or whose
    tensors' shapes disagree (``CheckpointError`` naming the file and the tensor).

    ``reference [N, 3]`` fixes N, ``faces [F, 3]`` (entries in ``[0, N)``) fixes F;
    ``pins [P]`` index the N vertices, ``normal_faces [Fn]`` and ``residue_faces [Fr]``
    the F triangles; every other tensor's shape follows from N, F, Fn, Fr and the sizes
    of ``normal_basis [K, 2 Fn]``, ``linear [R, 2 Fn]`` and ``centres [C, K]``."""
    n = tensor_of(path, state, "reference", (None, 3)).shape[0]
    faces = tensor_of(path, state, "faces", (None, 3))
    check_index(path, "faces", faces, n, f"the {n} vertices of 'reference'")
    check_index(path, "pins", tensor_of(path, state, "pins", (None,)), n, f"the {n} vertices of 'reference'")
    f = len(faces)
    for name in ("normal_faces", "residue_faces"):
        check_index(path, name, tensor_of(path, state, name, (None,)), f, f"the {f} triangles of 'faces'")
    fn, fr = len(state["normal_faces"]), len(state["residue_faces"])
    k = tensor_of(path, state, "normal_basis", (None, 2 * fn)).shape[0]
    r = tensor_of(path, state, "linear", (None, 2 * fn)).shape[0]
    c = tensor_of(path, state, "centres", (None, k)).shape[0]
    shapes = {"base": (fn, 3), "tangent": (fn, 3), "axes": (f,), "normal_mean": (2 * fn,), "normal_scale": (k,),
              "linear_bias": (r,), "widths": (c,), "rbf_weights": (c, r), "residue_mean": (RESIDUE_DIM * fr,),
              "residue_basis": (r, RESIDUE_DIM * fr)}
    for name, shape in shapes.items():
        tensor_of(path, state, name, shape)


def load_classical(path: str | Path, topology_id: str | None = None) -> Classical:
    """A ``neutral_classical`` checkpoint; refused (``CheckpointError`` naming the file) if it was
    fitted for another topology, or its config or tables do not fit (``check_tables``)."""
    meta, state = load_checkpoint(path, family=FAMILY, dtypes=DTYPES)
    if topology_id is not None:
        check_topology(meta, topology_id, path)
    missing = [f.name for f in fields(ClassicalParams) if f.name not in state]
    if missing:
        raise CheckpointError(f"{path}: a neutral_classical checkpoint without {', '.join(missing)}")
    config = ClassicalConfig.from_dict(meta.config, path)
    check_tables(path, state)
    params = ClassicalParams(**{f.name: state[f.name].numpy() for f in fields(ClassicalParams)})
    with building(path, "classical neutralizer"):             # the Poisson factor of a degenerate mesh
        return Classical(config, params, meta.topology_id, meta.data, meta.metrics)
