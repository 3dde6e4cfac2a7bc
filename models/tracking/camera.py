"""The scaled orthographic camera of the tracker, ``p = A (R v + t)``.

A face point ``v`` (metres, in the face model's axes: x across the face,
y up, z out of the face towards the viewer) lands in the image (pixels, x
right, y down) at::

    p = s * F (R v)[:2] + t        F = diag(1, -1)

``R`` a rotation (the head pose), ``s`` pixels per metre, ``t`` the pixel
position of the model origin. ``F`` flips y because images count rows
downwards. A ``Pose`` holds ``(R, s, t)``; ``solve_pose`` finds one from
point correspondences by linear least squares (the affine camera, then the
nearest scaled rotation), as the cascaded-regression paper does after each
stage.

Euler angles (radians) follow the head: ``yaw`` about y (turning the head
to its left is positive), ``pitch`` about x (nodding down is positive),
``roll`` about z; ``R = Rz(roll) Ry(yaw) Rx(pitch)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: image rows count downwards
FLIP = np.array([1.0, -1.0])


@dataclass(frozen=True)
class Pose:
    """``rotation [3, 3]``, ``scale`` (pixels per metre), ``translation [2]`` (pixels)."""

    rotation: np.ndarray
    scale: float
    translation: np.ndarray

    def project(self, points: np.ndarray) -> np.ndarray:
        """Points ``[..., 3]`` (metres) -> pixels ``[..., 2]``."""
        return project(points, self.rotation, self.scale, self.translation)

    @property
    def euler(self) -> tuple[float, float, float]:
        """``(yaw, pitch, roll)`` in radians."""
        return euler_from_rotation(self.rotation)


def project(points: np.ndarray, rotation: np.ndarray, scale, translation: np.ndarray) -> np.ndarray:
    """``s F (R v)[:2] + t`` for points ``[..., 3]``; batched poses broadcast (``rotation [..., 3, 3]``,
    ``scale [...]``, ``translation [..., 2]`` against points ``[..., P, 3]``)."""
    rotated = np.einsum("...ij,...pj->...pi", np.asarray(rotation)[..., :2, :], np.asarray(points))
    s = np.asarray(scale, np.float64)[..., None, None]
    return s * rotated * FLIP + np.asarray(translation)[..., None, :]


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``Rz(roll) Ry(yaw) Rx(pitch)``, ``float64 [3, 3]``."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """The ``(yaw, pitch, roll)`` of ``rotation_from_euler`` (yaw in ``[-pi/2, pi/2]``)."""
    r = np.asarray(rotation, np.float64)
    yaw = float(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = float(np.arctan2(r[2, 1], r[2, 2]))
    roll = float(np.arctan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll


def nearest_rotation(m: np.ndarray) -> np.ndarray:
    """The rotation closest to ``m [3, 3]`` in the Frobenius norm (polar decomposition)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def solve_pose(model: np.ndarray, image: np.ndarray, weights: np.ndarray | None = None) -> Pose:
    """The scaled orthographic pose taking ``model [L, 3]`` (metres) to ``image [L, 2]`` (pixels).

    Linear: the affine camera ``image = M model + t`` (``M [2, 3]``) by least
    squares on centred points, then the two rows of ``M`` (y flipped back)
    made orthonormal with a common scale: ``s`` is their mean norm and the
    rotation the nearest one to ``[r1; r2; r1 x r2]``. ``weights [L]``
    weight the points (e.g. 0 for landmarks to ignore)."""
    x = np.asarray(model, np.float64)
    y = np.asarray(image, np.float64) * FLIP                   # y up, as the model
    w = np.ones(len(x)) if weights is None else np.asarray(weights, np.float64)
    if len(x) != len(y) or x.shape[-1] != 3 or y.shape[-1] != 2:
        raise ValueError(f"solve_pose needs model [L, 3] and image [L, 2], got {x.shape} and {y.shape}")
    if int((w > 0).sum()) < 4:
        raise ValueError("solve_pose needs at least 4 weighted points")
    cx, cy = (w @ x) / w.sum(), (w @ y) / w.sum()
    a, b = (x - cx) * np.sqrt(w)[:, None], (y - cy) * np.sqrt(w)[:, None]
    m = np.linalg.lstsq(a, b, rcond=None)[0].T                 # [2, 3]
    n1, n2 = np.linalg.norm(m, axis=1)
    scale = 0.5 * (n1 + n2)
    r1, r2 = m[0] / max(n1, 1e-12), m[1] / max(n2, 1e-12)
    rotation = nearest_rotation(np.stack([r1, r2, np.cross(r1, r2)]))
    # the translation of the final (orthonormal) camera through the weighted centres
    t = (cy - scale * (rotation[:2] @ cx)) * FLIP
    return Pose(rotation, float(scale), t)
