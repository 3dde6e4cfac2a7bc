"""Display accessories placed from the 68 landmarks: eyeballs and a mouth cavity.

A face mask (SynthFace) has open eye slits and a mouth slit; drawn alone,
the background shows through them. For pictures that read as a face, the
renderer draws two eyeballs behind the eye slits and a dark cavity behind
the lips. They are placed from the landmarks only, so they follow any
template with the 68 iBUG landmarks and every frame of an animation:

- each eyeball is a sphere of radius ``EYEBALL_RADIUS`` scaled by the outer
  eye-corner distance over ``REFERENCE_EYE_SPAN``, centred ``EYE_SETBACK``
  radii behind the midpoint of its eye's two corner landmarks (which a
  blink does not move), along the face frame's forward axis, gazing
  forward; far enough back that no lid of SynthFace v1 or v2, open or
  closed, passes into it;
- the mouth cavity is an ellipsoid behind the mean of the 8 inner-lip
  landmarks, as wide as the mouth and as tall as its opening plus a margin.

Geometry is a unit sphere (``unit_sphere``) moved by an affine ``[4, 4]``
matrix per accessory, in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.face.frame import FaceFrame

#: eyeball radius (m) of a face whose outer eye corners are REFERENCE_EYE_SPAN apart
EYEBALL_RADIUS = 0.0125
#: outer-eye-corner distance (m) of the reference face
REFERENCE_EYE_SPAN = 0.09
#: eyeball centre behind the midpoint of its eye corners, in eyeball radii
EYE_SETBACK = 1.3
#: mouth cavity half width, as a share of half the mouth-corner distance
MOUTH_WIDTH = 1.15
#: mouth cavity half height beyond half the lip opening (m, reference face)
MOUTH_MARGIN = 0.006
#: mouth cavity half depth (m, reference face)
MOUTH_DEPTH = 0.022
#: the cavity's front sits this far behind the inner-lip landmarks (m, reference face)
MOUTH_SETBACK = 0.006

#: each eye's corner landmarks (subject's right, then left)
EYE_CORNERS = ((36, 39), (42, 45))
INNER_LIPS = slice(60, 68)


@dataclass(frozen=True)
class Accessories:
    """Where the accessories of one face go (metres).

    ``eye_centres [2, 3]`` (right, left), ``eye_radius``, ``mouth_centre [3]``,
    ``mouth_radii [3]`` (along the face frame's x, y, z), ``rotation [3, 3]``
    (columns: the face frame's axes; an eyeball's gaze is its +z).
    """

    eye_centres: np.ndarray
    eye_radius: float
    mouth_centre: np.ndarray
    mouth_radii: np.ndarray
    rotation: np.ndarray

    def eye_matrices(self) -> np.ndarray:
        """``[2, 4, 4]``: unit sphere -> each eyeball (pole +z on the gaze)."""
        return np.stack([_affine(self.rotation * self.eye_radius, c) for c in self.eye_centres])

    def mouth_matrix(self) -> np.ndarray:
        """``[4, 4]``: unit sphere -> the mouth cavity ellipsoid."""
        return _affine(self.rotation * self.mouth_radii[None, :], self.mouth_centre)


def place_accessories(landmarks: np.ndarray) -> Accessories:
    """Accessories of a face with landmarks ``[68, 3]`` (metres, iBUG order)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 3):
        raise ValueError(f"place_accessories needs landmarks [68, 3], got {lm.shape}")
    frame = FaceFrame.from_landmarks(lm)
    rotation = frame.rotation
    forward = rotation[:, 2]
    unit = float(frame.scale) / REFERENCE_EYE_SPAN
    radius = EYEBALL_RADIUS * unit
    eyes = np.stack([0.5 * (lm[a] + lm[b]) for a, b in EYE_CORNERS]) - EYE_SETBACK * radius * forward

    lips = lm[INNER_LIPS]
    to_local = lambda p: (p - lips.mean(axis=0)) @ rotation                      # noqa: E731
    corners = to_local(lm[[48, 54]])
    inner = to_local(lips)
    half_width = MOUTH_WIDTH * 0.5 * abs(corners[1, 0] - corners[0, 0])
    half_height = 0.5 * (inner[:, 1].max() - inner[:, 1].min()) + MOUTH_MARGIN * unit
    depth = MOUTH_DEPTH * unit
    centre = lips.mean(axis=0) - (depth + MOUTH_SETBACK * unit) * forward
    return Accessories(eye_centres=eyes, eye_radius=radius, mouth_centre=centre,
                       mouth_radii=np.array([half_width, half_height, depth]), rotation=rotation)


def unit_sphere(rings: int = 32, segments: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A UV sphere of radius 1 with its poles on +-z.

    Returns:
        ``vertices float32 [V, 3]``, ``faces int32 [F, 3]`` (counter-clockwise
        seen from outside), ``uv float32 [V, 2]``: ``u`` the longitude / 2 pi,
        ``v`` the angle from the +z pole / pi (0 at the front pole). The seam
        and the poles have duplicated vertices so ``uv`` is continuous.
    """
    theta = np.linspace(0.0, np.pi, rings + 1)
    phi = np.linspace(0.0, 2 * np.pi, segments + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")                       # [rings+1, segments+1]
    vertices = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1).reshape(-1, 3)
    uv = np.stack([p / (2 * np.pi), t / np.pi], axis=-1).reshape(-1, 2)
    idx = np.arange((rings + 1) * (segments + 1)).reshape(rings + 1, segments + 1)
    a, b = idx[:-1, :-1], idx[:-1, 1:]             # ring i
    c, d = idx[1:, :-1], idx[1:, 1:]               # ring i + 1
    upper = np.stack([a, c, d], axis=-1)[:-1]      # no degenerate triangles at the poles
    lower = np.stack([a, d, b], axis=-1)[1:]
    faces = np.concatenate([upper.reshape(-1, 3), lower.reshape(-1, 3)])
    return vertices.astype(np.float32), faces.astype(np.int32), uv.astype(np.float32)


def _affine(linear: np.ndarray, translation: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = linear
    m[:3, 3] = translation
    return m
