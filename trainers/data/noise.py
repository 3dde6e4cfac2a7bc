"""Measurement noise for synthetic 4D data: registration noise on the
vertices and detector noise on the landmarks.

Registration noise is what a template fitted to a 4D scan carries: every
frame's mesh is off by a smooth displacement field, a few tenths of a
millimetre RMS, correlated over a few millimetres of the surface (a patch
slides together, its neighbours slide a little differently). The field of a
frame is a sparse Gaussian kernel ``K [N, M]`` over the template's vertices
applied to white noise ``z [M, 3]`` at ``M`` centres (a subset of the
vertices, about one per ``CENTRE_SPACING_SIGMAS`` kernel widths)::

    field = diag(1 / |K_i|) K z      (each vertex: unit variance per axis)
    field *= rms / RMS(field)        (the frame: exactly the requested RMS)

With a kernel of width ``sigma`` the field's correlation between two
vertices ``d`` apart is ``exp(-d^2 / (4 sigma^2))`` (a Gaussian convolved
with itself), so the *correlation length* ``L`` -- the distance at which
the correlation has fallen to ``1/e`` -- is ``2 sigma``. Distances are
Euclidean between vertices, which is the distance over the surface for
lengths of a few millimetres. Fields of successive frames are independent
(each frame is registered on its own).

Landmark noise is a detector's: independent per landmark, axis and frame,
Gaussian with the requested 3D RMS.

Arrays: vertices ``float32 [..., N, 3]`` and landmarks ``[..., 68, 3]`` in
metres; noise amplitudes are given in millimetres (``MM_PER_M``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from models.constants import MM_PER_M

#: the kernel is cut off at this many widths (exp(-4.5) = 1 % of its peak)
KERNEL_CUTOFF_SIGMAS = 3.0
#: noise centres are one vertex per cubic cell of this many kernel widths
CENTRE_SPACING_SIGMAS = 0.75
#: the correlation length is where the correlation falls to 1/e: L = this * sigma
CORRELATION_LENGTH_SIGMAS = 2.0
#: the smallest correlation length accepted (mm); registration noise is smooth
#: over a few millimetres of skin
MIN_CORRELATION_MM = 5.0
#: 3D RMS of a vector with per-axis standard deviation 1
AXES = 3


@dataclass(frozen=True, eq=False)
class NoiseField:
    """The registration-noise generator of one template.

    ``kernel`` is ``float64 sparse [N, M]`` (rows normalised to unit norm),
    ``centres`` the ``M`` vertex indices the white noise sits on.
    """

    kernel: sp.csr_matrix
    centres: np.ndarray
    correlation_m: float

    @staticmethod
    def build(vertices: np.ndarray, correlation_mm: float) -> "NoiseField":
        """The field for template ``vertices [N, 3]`` (metres) with correlation
        length ``correlation_mm``; a ``ValueError`` for a length below
        ``MIN_CORRELATION_MM``."""
        if not correlation_mm >= MIN_CORRELATION_MM:
            raise ValueError(f"noise correlation length must be at least {MIN_CORRELATION_MM} mm, "
                             f"got {correlation_mm}")
        v = np.asarray(vertices, dtype=np.float64)
        sigma = correlation_mm / MM_PER_M / CORRELATION_LENGTH_SIGMAS
        centres = _voxel_subsample(v, CENTRE_SPACING_SIGMAS * sigma)
        dist = cKDTree(v).sparse_distance_matrix(cKDTree(v[centres]), KERNEL_CUTOFF_SIGMAS * sigma,
                                                 output_type="coo_matrix")
        # the COO output keeps zero distances, so each centre's own vertex is in it
        k = sp.coo_matrix((np.exp(-0.5 * (dist.data / sigma) ** 2), (dist.row, dist.col)),
                          shape=(len(v), len(centres))).tocsr()
        norm = np.sqrt(np.asarray(k.multiply(k).sum(axis=1)).ravel())
        if np.any(norm == 0.0):  # cannot happen: every vertex lies within a cell of a centre
            raise ValueError("noise field: a vertex has no noise centre within reach")
        return NoiseField(kernel=sp.diags(1.0 / norm) @ k, centres=centres,
                          correlation_m=correlation_mm / MM_PER_M)

    def sample(self, n_frames: int, rms_mm: float, rng: np.random.Generator) -> np.ndarray:
        """``n_frames`` independent displacement fields ``float32 [F, N, 3]`` (metres),
        each with 3D RMS over the vertices exactly ``rms_mm``."""
        m = len(self.centres)
        z = rng.standard_normal((m, n_frames * AXES))
        field = (self.kernel @ z).reshape(-1, n_frames, AXES).transpose(1, 0, 2)     # [F, N, 3]
        rms = np.sqrt(np.mean(np.sum(field ** 2, axis=-1), axis=-1))                  # [F]
        return (field * (rms_mm / MM_PER_M / rms)[:, None, None]).astype(np.float32)


def _voxel_subsample(points: np.ndarray, cell: float) -> np.ndarray:
    """Indices ``int [M]`` of one point per occupied cubic cell of side ``cell``:
    the point nearest the cell's centre (sorted)."""
    key = np.floor(points / cell).astype(np.int64)
    offset = np.linalg.norm(points - (key + 0.5) * cell, axis=1)
    order = np.lexsort((offset, key[:, 2], key[:, 1], key[:, 0]))
    k = key[order]
    first = np.ones(len(k), dtype=bool)
    first[1:] = np.any(k[1:] != k[:-1], axis=1)
    return np.sort(order[first])


def landmark_noise(n_frames: int, n_landmarks: int, rms_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Detector noise ``float32 [F, L, 3]`` (metres): independent Gaussian per
    landmark, axis and frame with 3D RMS ``rms_mm``."""
    sd = rms_mm / MM_PER_M / np.sqrt(AXES)
    return (rng.standard_normal((n_frames, n_landmarks, AXES)) * sd).astype(np.float32)


def spatial_correlation(fields: np.ndarray, vertices: np.ndarray, edges_m: np.ndarray,
                        pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Empirical correlation ``[B]`` of displacement ``fields [F, N, 3]`` between
    vertex pairs whose distance falls in each bin ``edges_m [B + 1]`` (metres),
    estimated from ``pairs`` random pairs per bin (NaN for a bin with none):
    ``mean(f_i . f_j) / mean(|f|^2)``, the fields' mean being zero."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(fields, dtype=np.float64)
    power = np.mean(np.sum(f ** 2, axis=-1))
    tree = cKDTree(v)
    out = np.full(len(edges_m) - 1, np.nan)
    found = tree.query_pairs(edges_m[-1], output_type="ndarray")
    d = np.linalg.norm(v[found[:, 0]] - v[found[:, 1]], axis=1)
    for b in range(len(out)):
        inside = found[(d >= edges_m[b]) & (d < edges_m[b + 1])]
        if not len(inside):
            continue
        pick = inside[rng.choice(len(inside), size=min(pairs, len(inside)), replace=False)]
        out[b] = np.mean(np.sum(f[:, pick[:, 0]] * f[:, pick[:, 1]], axis=-1)) / power
    return out


def correlation_length(fields: np.ndarray, vertices: np.ndarray, rng: np.random.Generator,
                       max_m: float = 0.03, bin_m: float = 0.0005, pairs: int = 4000) -> float:
    """Distance (metres) at which the fields' spatial correlation first falls to
    ``1/e``, linearly interpolated between bins of ``bin_m``; NaN if it stays
    above within ``max_m``."""
    edges = np.arange(0.0, max_m + bin_m, bin_m)
    corr = spatial_correlation(fields, vertices, edges, pairs, rng)
    mids = 0.5 * (edges[1:] + edges[:-1])
    ok = ~np.isnan(corr)
    mids, corr = mids[ok], corr[ok]
    below = np.flatnonzero(corr < np.exp(-1.0))
    if not len(below):
        return float("nan")
    b = below[0]
    if b == 0:
        return float(mids[0])
    c0, c1 = corr[b - 1], corr[b]
    return float(mids[b - 1] + (c0 - np.exp(-1.0)) / (c0 - c1) * (mids[b] - mids[b - 1]))
