"""The 68 iBUG landmarks: their order, their embedding on a mesh, and their
placement on the SynthFace template.

A landmark is a point on a triangle: ``face_idx`` (int32 [68]) and
barycentric weights ``bary`` (float32 [68, 3]). A vertex landmark is the
special case ``bary = (1, 0, 0)``. This one form serves the SynthFace
template (68 vertices) and a user's CoMA/FLAME template (barycentric points).

iBUG-68 order (as dlib): jaw 0-16 from the subject's right ear to the left,
brows 17-21 (right, outer to inner) and 22-26 (left, inner to outer), nose
bridge 27-30 (top to tip), nostril base 31-35 (right to left), right eye
36-41 and left eye 42-47 (each clockwise in the image from its leftmost
corner), outer lips 48-59 and inner lips 60-67 (from the right corner,
upper lip first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.constants import N_LANDMARKS
from models.geometry.normals import vertex_normals

if TYPE_CHECKING:
    from models.face.template import TemplateMesh, TemplateSpec

#: index groups of the iBUG-68 scheme
GROUPS: dict[str, range] = {
    "jaw": range(0, 17),
    "brow_right": range(17, 22),
    "brow_left": range(22, 27),
    "nose_bridge": range(27, 31),
    "nostrils": range(31, 36),
    "eye_right": range(36, 42),
    "eye_left": range(42, 48),
    "lips_outer": range(48, 60),
    "lips_inner": range(60, 68),
}

#: iBUG index of each landmark's mirror twin across the mid-plane
MIRROR = np.array(
    list(range(16, -1, -1))
    + list(range(26, 16, -1))
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46]
    + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65],
    dtype=np.int64,
)

#: a vertex "faces the viewer" when its unit normal has at least this z
FRONT_FACING = 0.25

#: the face outline is made of vertices whose normal z is above this (the
#: silhouette seen from the front, not the underside of the jaw)
OUTLINE_FACING = -0.05


@dataclass(frozen=True)
class LandmarkEmbedding:
    """68 points on a triangle mesh: ``face_idx`` int32 [68], ``bary`` float32 [68, 3]."""

    face_idx: np.ndarray
    bary: np.ndarray

    def __post_init__(self) -> None:
        if self.face_idx.shape != (N_LANDMARKS,) or self.bary.shape != (N_LANDMARKS, 3):
            raise ValueError(
                f"a landmark embedding needs face_idx [68] and bary [68, 3], got "
                f"{self.face_idx.shape} and {self.bary.shape}")

    def evaluate(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Landmark positions ``[..., 68, 3]`` of ``vertices [..., N, 3]``."""
        corners = vertices[..., faces[self.face_idx], :]            # [..., 68, 3, 3]
        return np.einsum("...lkc,lk->...lc", corners, self.bary.astype(vertices.dtype))

    def vertex_weights(self, n_vertices: int, faces: np.ndarray) -> np.ndarray:
        """Dense ``[68, N]`` matrix ``W`` with ``landmarks = W @ vertices``."""
        w = np.zeros((N_LANDMARKS, n_vertices), dtype=np.float64)
        corners = faces[self.face_idx]
        for k in range(3):
            np.add.at(w, (np.arange(N_LANDMARKS), corners[:, k]), self.bary[:, k])
        return w

    def vertex_ids(self, faces: np.ndarray) -> np.ndarray | None:
        """The vertex of each landmark when every landmark sits on a vertex, else None."""
        hot = np.isclose(self.bary, 1.0)
        if not np.all(hot.sum(axis=1) == 1):
            return None
        return faces[self.face_idx, np.argmax(hot, axis=1)].astype(np.int64)

    @staticmethod
    def from_vertices(vertex_ids: np.ndarray, faces: np.ndarray) -> "LandmarkEmbedding":
        """Embed landmarks that sit exactly on vertices."""
        vertex_ids = np.asarray(vertex_ids, dtype=np.int64)
        face_idx = np.empty(len(vertex_ids), dtype=np.int32)
        bary = np.zeros((len(vertex_ids), 3), dtype=np.float32)
        for i, v in enumerate(vertex_ids):
            f, k = np.argwhere(faces == v)[0]
            face_idx[i] = f
            bary[i, k] = 1.0
        return LandmarkEmbedding(face_idx=face_idx, bary=bary)


def frontal_pick(vertices: np.ndarray, normals: np.ndarray, target_xy: np.ndarray) -> int:
    """The vertex nearest ``target_xy`` in the frontal projection among those
    that face the viewer (normal z above ``FRONT_FACING``)."""
    ids = np.flatnonzero(normals[:, 2] > FRONT_FACING)
    d = np.linalg.norm(vertices[ids, :2] - target_xy, axis=1)
    return int(ids[np.argmin(d)])


def _along(ids: np.ndarray, fraction: float) -> int:
    return int(ids[int(round(fraction * (len(ids) - 1)))])


def _at_x(ids: np.ndarray, vertices: np.ndarray, x: float) -> int:
    return int(ids[np.argmin(np.abs(vertices[ids, 0] - x))])


def place_landmarks(mesh: "TemplateMesh", spec: "TemplateSpec") -> np.ndarray:
    """The 68 landmark vertices of the SynthFace template, iBUG order."""
    v = mesh.vertices.astype(np.float64)
    normals = vertex_normals(v, mesh.faces)
    lm = np.full(N_LANDMARKS, -1, dtype=np.int64)

    # eyes: on the slits (corners are the slit ends)
    up, lo = mesh.slits["eye_right"]          # from the outer corner (-X) to the inner
    lm[36], lm[39] = up[0], up[-1]
    lm[37], lm[38] = _along(up, 1 / 3), _along(up, 2 / 3)
    lm[41], lm[40] = _along(lo, 1 / 3), _along(lo, 2 / 3)
    up, lo = mesh.slits["eye_left"]           # from the inner corner to the outer (+X)
    lm[42], lm[45] = up[0], up[-1]
    lm[43], lm[44] = _along(up, 1 / 3), _along(up, 2 / 3)
    lm[47], lm[46] = _along(lo, 1 / 3), _along(lo, 2 / 3)

    # inner lips: on the mouth slit
    up, lo = mesh.slits["mouth"]
    half = v[up[-1], 0]
    lm[48], lm[54] = up[0], up[-1]            # the corners of the mouth
    lm[60], lm[64] = up[1], up[-2]            # inner-lip corners: one vertex in, on the slit
    lm[61], lm[62], lm[63] = (_at_x(up, v, -0.3 * half), _at_x(up, v, 0.0), _at_x(up, v, 0.3 * half))
    lm[67], lm[66], lm[65] = (_at_x(lo, v, -0.3 * half), _at_x(lo, v, 0.0), _at_x(lo, v, 0.3 * half))

    # outer lips: the corners one column out, the rest on the vermilion borders
    y_m = v[up[0], 1]
    bow = spec.upper_lip_border
    for k, f in zip(range(49, 54), (-0.68, -0.28, 0.0, 0.28, 0.68)):
        y = bow - (spec.cupid_dip if f == 0.0 else 0.0) + (y_m - bow) * (1 - np.sqrt(1 - f * f))
        lm[k] = frontal_pick(v, normals, np.array([f * half, y]))
    for k, f in zip(range(55, 60), (0.68, 0.28, 0.0, -0.28, -0.68)):
        y = spec.lower_lip_border + (y_m - spec.lower_lip_border) * (1 - np.sqrt(1 - f * f))
        lm[k] = frontal_pick(v, normals, np.array([f * half, y]))

    # nose: the bridge down the midline column to the tip, then the nostril base
    mid = np.flatnonzero(np.abs(v[:, 0]) < 1e-6)
    nose_zone = mid[(v[mid, 1] < 0.0) & (v[mid, 1] > -0.04)]
    tip = int(nose_zone[np.argmax(v[nose_zone, 2])])
    top = _at_y(mid, v, 0.0055)
    lm[27], lm[30] = top, tip
    lm[28] = _at_y(mid, v, v[top, 1] + (v[tip, 1] - v[top, 1]) / 3)
    lm[29] = _at_y(mid, v, v[top, 1] + 2 * (v[tip, 1] - v[top, 1]) / 3)
    for k, (x, y) in zip(range(31, 36), ((-0.0125, -0.0370), (-0.0065, -0.0392), (0.0, -0.0405),
                                         (0.0065, -0.0392), (0.0125, -0.0370))):
        lm[k] = frontal_pick(v, normals, np.array([x, y]))

    # brows: an arch from the head (inner) to the tail (outer)
    brow = ((-0.0600, 0.0090), (-0.0500, 0.0205), (-0.0370, 0.0255), (-0.0235, 0.0245),
            (-0.0110, 0.0205))
    for k, (x, y) in zip(range(17, 22), brow):
        lm[k] = frontal_pick(v, normals, np.array([x, y]))
        lm[43 - k] = frontal_pick(v, normals, np.array([-x, y]))

    # jaw: evenly along the frontal outline from ear to ear
    lm[0:17] = _jaw_outline(mesh, spec)

    assert np.all(lm >= 0)
    return lm.astype(np.int32)


def _at_y(ids: np.ndarray, vertices: np.ndarray, y: float) -> int:
    return int(ids[np.argmin(np.abs(vertices[ids, 1] - y))])


def _jaw_outline(mesh: "TemplateMesh", spec: "TemplateSpec") -> np.ndarray:
    """17 vertices evenly spaced along the face outline seen from the front,
    from eye-corner height on the subject's right, under the chin, to the left.

    The outline is the farthest vertex from a point between the nose tip and
    the mouth in each direction of the frontal projection.
    """
    v = mesh.vertices.astype(np.float64)
    seen = vertex_normals(v, mesh.faces)[:, 2] > OUTLINE_FACING   # not turned away from the viewer
    centre = np.array([0.0, -0.045])
    d = v[:, :2] - centre
    ang = np.arctan2(d[:, 1], d[:, 0])                  # 0 = +x, -pi/2 = down
    rad = np.hypot(d[:, 0], d[:, 1])
    start = np.arctan2(-0.004 - centre[1], -0.07)       # right side, eye-corner height
    stop = np.arctan2(-0.004 - centre[1], 0.07)         # left side
    # sweep clockwise seen from the front: from the right side (angle near pi) down to -pi/2 and up
    sweep = np.mod(ang - start, 2 * np.pi)              # 0 at start, grows through the chin
    span = np.mod(stop - start, 2 * np.pi)
    bins = np.linspace(0.0, span, 181)
    outline = []
    for lo_, hi_ in zip(bins[:-1], bins[1:]):
        inside = np.flatnonzero((sweep >= lo_) & (sweep < hi_) & seen)
        if len(inside):
            outline.append(inside[np.argmax(rad[inside])])
    poly = np.asarray(outline)
    seg = np.linalg.norm(np.diff(v[poly, :2], axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.linspace(0.0, arc[-1], 17)
    return np.asarray([poly[np.argmin(np.abs(arc - a))] for a in targets], dtype=np.int64)
