"""The 17 jaw landmarks as a contour, not fixed vertices.

A landmark detector puts iBUG points 0-16 on the face's visible outline.
Seen from the front that is the jaw line; once the head turns, the far
side's outline is the cheek's silhouette, further in, and no fixed vertex
follows it. As in the cascaded-regression paper (and FaceWarehouse's
fitting), each contour landmark gets a *line* of candidate vertices: the
skin vertices at its height in the face frame (one per ``step`` across the
face, the nearest to that height), from the landmark inwards (down to
``reach`` of its distance from the midline). Under a pose, the landmark is the
candidate that projects outermost along the face's image x axis: the
silhouette on the far side, the jaw line on the near side.

Lines are ordered from the landmark's own vertex inwards; the chin (8) and
any landmark whose band holds no other vertex keep their own vertex.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the iBUG-68 contour landmarks
CONTOUR = np.arange(17)
#: half-height of a line's band (face-frame units: the eye-to-mouth distance is 1)
BAND = 0.04
#: how far in a line reaches: down to this share of its landmark's distance from the midline
REACH = 0.35
#: spacing of a line's vertices across the face (face-frame units, about 2 mm)
STEP = 0.03


@dataclass(frozen=True)
class ContourLines:
    """Candidate vertices per contour landmark: ``vertices`` int64 ``[M]`` (every line
    concatenated), ``line`` int64 ``[M]`` (its landmark, 0-16), ``side`` float ``[17]``
    (-1, 0 or +1: the landmark's side of the face), ``axis [3]`` (the face's x axis)."""

    vertices: np.ndarray
    line: np.ndarray
    side: np.ndarray
    axis: np.ndarray

    def line_vertices(self, k: int) -> np.ndarray:
        return self.vertices[self.line == k]


def contour_lines(template, band: float = BAND, reach: float = REACH, step: float = STEP) -> ContourLines:
    """The candidate lines of ``template`` (a ``FaceTemplate`` with 68 landmarks on vertices)."""
    ids = template.landmarks.vertex_ids(template.faces)
    if ids is None:
        raise ValueError(f"template {template.name!r}: contour lines need landmarks on vertices")
    frame = template.frame
    xi = frame.to_local(np.asarray(template.vertices, np.float64))
    skin = np.asarray(template.skin, bool)
    verts, lines, sides = [], [], np.zeros(len(CONTOUR))
    for k in CONTOUR:
        x0, y0 = xi[ids[k], 0], xi[ids[k], 1]
        side = float(np.sign(x0)) if abs(x0) > 1e-6 and k != 8 else 0.0
        sides[k] = side
        line = [int(ids[k])]
        if side:
            near = skin & (np.abs(xi[:, 1] - y0) < band) & (side * xi[:, 0] >= reach * abs(x0)) \
                & (side * xi[:, 0] <= abs(x0))
            cand = np.flatnonzero(near)
            cand = cand[cand != ids[k]]
            # one vertex per ``step`` across the face: the one nearest the landmark's height
            bins = np.floor((abs(x0) - side * xi[cand, 0]) / step).astype(np.int64)
            keep = [cand[bins == q][np.argmin(np.abs(xi[cand[bins == q], 1] - y0))] for q in np.unique(bins)
                    if q > 0]
            line += [int(i) for i in keep]
        verts += line
        lines += [k] * len(line)
    axis = frame.rotation[:, 0]
    return ContourLines(np.asarray(verts, np.int64), np.asarray(lines, np.int64), sides, axis)


def silhouette_ids(rotation: np.ndarray, vertices: np.ndarray, lines: ContourLines) -> np.ndarray:
    """The vertex each contour landmark sits on under ``rotation [..., 3, 3]`` for meshes
    ``vertices [..., N, 3]``: the line's candidate outermost along the face's x axis in the
    image, on the landmark's side. ``int64 [..., 17]``."""
    r = np.asarray(rotation, np.float64)
    d = np.einsum("...ij,j->...i", r[..., :2, :], lines.axis)                    # the face's x axis, imaged
    d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
    cand = np.asarray(vertices)[..., lines.vertices, :]                          # [..., M, 3]
    along = np.einsum("...mj,...ij,...i->...m", cand, r[..., :2, :], d)          # [..., M]
    score = along * lines.side[lines.line]
    out = np.empty(score.shape[:-1] + (len(CONTOUR),), np.int64)
    for k in CONTOUR:
        sel = np.flatnonzero(lines.line == k)
        out[..., k] = lines.vertices[sel][np.argmax(score[..., sel], axis=-1)]
    return out


def landmark_ids(template, rotation: np.ndarray, vertices: np.ndarray, lines: ContourLines) -> np.ndarray:
    """All 68 landmark vertices under a pose: the silhouette for 0-16, the fixed ones for
    17-67; ``int64 [..., 68]``."""
    fixed = template.landmarks.vertex_ids(template.faces)
    contour = silhouette_ids(rotation, vertices, lines)
    return np.concatenate([contour, np.broadcast_to(fixed[17:], contour.shape[:-1] + (51,))], axis=-1)
