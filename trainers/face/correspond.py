"""Dense correspondence between two face templates through their 68 landmarks.

Each vertex of a *source* template (SynthFace's mask) is matched to a point
on the skin of a *target* template (a scanned head such as ICT-FaceKit):

1. both go into their own normalised face frame (``models.face.frame``), so
   size and pose drop out;
2. a thin-plate spline fitted on the landmarks (the jaw-contour ends left
   out: SynthFace puts them on the silhouette at the ears) warps the source
   onto the target;
3. a non-rigid refinement pulls the warped source onto the target surface
   with a smooth (graph-Laplacian regularised) displacement, stiff to soft,
   the landmarks held where the spline put them;
4. every vertex takes its closest point on the target, restricted to
   triangles on the same side of the mouth and eye slits
   (``models.face.slits.side_labels``), so an upper-lip vertex never
   samples the lower lip.

The result is a triangle and barycentric weights per source vertex, with
which any per-vertex field of the target (an expression's displacement) is
sampled on the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.interpolate import RBFInterpolator
from scipy.sparse.linalg import factorized
from scipy.spatial import cKDTree

from models.face.anchors import Anchors
from models.face.slits import SIDE_NONE, side_labels
from models.face.topology import FaceTemplate
from models.geometry.normals import vertex_normals
from models.geometry.proximity import barycentric, closest_point_on_triangles

#: landmarks the warp is fitted on: the lower jaw contour, brows, nose, eyes, lips
WARP_LANDMARKS = tuple(range(4, 13)) + tuple(range(17, 68))
#: thin-plate spline smoothing (normalised units squared)
WARP_SMOOTHING = 1e-3
#: refinement schedule: (Laplacian stiffness, iterations), stiff to soft
REFINE_SCHEDULE = ((200.0, 6), (50.0, 6), (10.0, 6))
#: weight that holds the landmark vertices during the refinement
LANDMARK_HOLD = 1000.0
#: candidate triangles per query in the closest-point search
CANDIDATES = 32
#: a source vertex is in the shared region when its match lies within this
#: (normalised; 0.04 is about 3.5 mm) and the two normals agree
SHARED_DISTANCE = 0.04
SHARED_NORMAL_COS = 0.5


@dataclass(frozen=True)
class Correspondence:
    """Source vertex ``i`` matches ``bary[i] @ target[triangles[i]]``.

    ``triangles`` int [N, 3] target vertex ids, ``bary`` [N, 3], ``distance``
    [N] (normalised, after the refinement), ``shared`` bool [N]: the part of
    the source both faces cover.
    """

    triangles: np.ndarray
    bary: np.ndarray
    distance: np.ndarray
    shared: np.ndarray

    def sample(self, field: np.ndarray) -> np.ndarray:
        """A target field ``[..., M, C]`` at the source vertices: ``[..., N, C]``."""
        return np.einsum("nk,...nkc->...nc", self.bary, field[..., self.triangles, :])


def graph_laplacian(faces: np.ndarray, n: int) -> sp.csr_matrix:
    """Combinatorial Laplacian ``D - A`` of a mesh's edge graph, ``[n, n]``."""
    f = faces
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    adj = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    adj.data[:] = 1.0
    return (sp.diags(np.asarray(adj.sum(axis=1)).ravel()) - adj).tocsr()


def _normalised(template: FaceTemplate) -> tuple[np.ndarray, np.ndarray, Anchors]:
    """Vertices and unit normals in the template's face frame, and its anchors."""
    v = template.vertices.astype(np.float64)
    frame = template.frame
    xi = frame.to_local(v)
    normals = vertex_normals(v, template.faces) @ frame.rotation
    return xi, normals, Anchors(frame.to_local(template.landmark_points(v)))


def _project(points: np.ndarray, normals: np.ndarray, labels: np.ndarray, target_xi: np.ndarray,
             target_faces: np.ndarray, target_labels: np.ndarray):
    """Closest target points of ``points [P, 3]`` with unit ``normals [P, 3]``,
    each restricted to triangles whose vertices carry its label or none and
    that face the same way (a lid's outer skin never matches the inner side of
    a scanned lid). Returns points, distances and triangle ids."""
    tri = target_xi[target_faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    face_n /= np.maximum(np.linalg.norm(face_n, axis=1, keepdims=True), 1e-30)
    face_labels = target_labels[target_faces]
    q = np.empty_like(points)
    dist = np.full(len(points), np.inf)
    best = np.zeros(len(points), dtype=np.int64)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if label == SIDE_NONE:
            allowed = np.arange(len(target_faces))
        else:
            allowed = np.flatnonzero(((face_labels == label) | (face_labels == SIDE_NONE)).all(axis=1))
        k = min(CANDIDATES, len(allowed))
        _, cand = cKDTree(tri[allowed].mean(axis=1)).query(points[rows], k=k)
        cand = allowed[cand.reshape(len(rows), k)]
        flat = cand.reshape(-1)
        rep = np.repeat(points[rows], k, axis=0)
        hit = closest_point_on_triangles(rep, tri[flat, 0], tri[flat, 1], tri[flat, 2]).reshape(len(rows), k, 3)
        d = np.linalg.norm(hit - points[rows, None], axis=-1)
        facing = np.einsum("pkc,pc->pk", face_n[cand], normals[rows]) > 0.0
        d = np.where(facing, d, np.inf)
        pick = np.argmin(d, axis=1)
        ok = np.isfinite(d[np.arange(len(rows)), pick])
        pick = np.where(ok, pick, np.argmin(np.linalg.norm(hit - points[rows, None], axis=-1), axis=1))
        r = np.arange(len(rows))
        q[rows] = hit[r, pick]
        dist[rows] = np.linalg.norm(hit[r, pick] - points[rows], axis=1)
        best[rows] = cand[r, pick]
    return q, dist, best


def correspond(source: FaceTemplate, target: FaceTemplate, target_faces: np.ndarray | None = None
               ) -> Correspondence:
    """Match every vertex of ``source`` to the surface of ``target``.

    Args:
        source: the template whose vertices get a match (SynthFace's mask).
        target: the template matched onto (e.g. ICT-FaceKit's head).
        target_faces: the target triangles to match onto (default: those of
            its skin component; pass a subset to exclude parts).
    """
    src_xi, src_n, src_a = _normalised(source)
    tgt_xi, tgt_n, tgt_a = _normalised(target)
    if target_faces is None:
        skin = target.skin
        target_faces = target.faces[skin[target.faces].all(axis=1)]
    use = list(WARP_LANDMARKS)
    tps = RBFInterpolator(src_a.landmarks[use], tgt_a.landmarks[use] - src_a.landmarks[use],
                          kernel="thin_plate_spline", smoothing=WARP_SMOOTHING)
    warped = src_xi + tps(src_xi)
    src_labels = side_labels(src_xi, src_n, src_a)
    tgt_labels = side_labels(tgt_xi, tgt_n, tgt_a)

    n = source.n_vertices
    emb = source.landmarks
    held = source.faces[emb.face_idx, np.argmax(emb.bary, axis=1)][use]
    hold = np.ones(n)
    hold[held] = LANDMARK_HOLD
    laplacian = graph_laplacian(source.faces, n)
    for stiffness, iterations in REFINE_SCHEDULE:
        solve = factorized((sp.diags(hold) + stiffness * laplacian).tocsc())
        for _ in range(iterations):
            q, _, _ = _project(warped, src_n, src_labels, tgt_xi, target_faces, tgt_labels)
            pull = q - warped
            pull[held] = 0.0
            warped = warped + np.stack([solve(hold * pull[:, c]) for c in range(3)], axis=1)

    q, dist, tri = _project(warped, src_n, src_labels, tgt_xi, target_faces, tgt_labels)
    corners = target_faces[tri]
    bary = barycentric(q, tgt_xi[corners[:, 0]], tgt_xi[corners[:, 1]], tgt_xi[corners[:, 2]])
    matched_normal = np.einsum("nk,nkc->nc", bary, tgt_n[corners])
    matched_normal /= np.linalg.norm(matched_normal, axis=1, keepdims=True)
    agree = np.einsum("nc,nc->n", matched_normal, src_n) >= SHARED_NORMAL_COS
    shared = (dist <= SHARED_DISTANCE) & agree & source.skin
    return Correspondence(triangles=corners, bary=bary, distance=dist, shared=shared)
