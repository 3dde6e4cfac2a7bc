"""The face frame fixed by the 68 landmarks, and normalised face coordinates.

Every deformation field of SynthFace (identity and expression) is written as
a function of position in this frame, never as a per-vertex table of one
mesh, so the same fields deform any template that has the 68 landmarks.

Frame, from landmarks ``L [..., 68, 3]``:
    origin  ``o``: midpoint of the two eye centres (means of 36-41, 42-47);
    x axis: from the right eye centre to the left eye centre (subject's left);
    y axis: from the mouth centre (mean of 60-67) to ``o``, orthogonalised;
    z axis: ``x cross y`` (out of the face);
    scale ``s``: the outer-eye-corner distance ``|L36 - L45|`` (about 0.09 m).
Normalised coordinates: ``xi = R^T (p - o) / s``, so ``xi`` is unitless and
the outer eye corners sit near ``xi_x = +-0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.constants import EPS_LENGTH


@dataclass(frozen=True)
class FaceFrame:
    """Origin ``[..., 3]``, rotation ``[..., 3, 3]`` (columns: axes), scale ``[...]``."""

    origin: np.ndarray
    rotation: np.ndarray
    scale: np.ndarray

    @staticmethod
    def from_landmarks(landmarks: np.ndarray) -> "FaceFrame":
        """Frame of landmarks ``[..., 68, 3]`` (metres)."""
        lm = np.asarray(landmarks, dtype=np.float64)
        right_eye = lm[..., 36:42, :].mean(axis=-2)
        left_eye = lm[..., 42:48, :].mean(axis=-2)
        origin = 0.5 * (right_eye + left_eye)
        mouth = lm[..., 60:68, :].mean(axis=-2)
        x = _unit(left_eye - right_eye)
        up = origin - mouth
        y = _unit(up - np.sum(up * x, axis=-1, keepdims=True) * x)
        z = np.cross(x, y)
        rotation = np.stack([x, y, z], axis=-1)
        scale = np.linalg.norm(lm[..., 45, :] - lm[..., 36, :], axis=-1)
        return FaceFrame(origin=origin, rotation=rotation, scale=scale)

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """World points ``[..., N, 3]`` -> normalised ``xi [..., N, 3]``."""
        d = points - self.origin[..., None, :]
        return np.einsum("...nc,...ck->...nk", d, self.rotation) / self.scale[..., None, None]

    def to_world(self, xi: np.ndarray) -> np.ndarray:
        """Normalised ``xi [..., N, 3]`` -> world points."""
        return self.origin[..., None, :] + self.vectors_to_world(xi)

    def vectors_to_world(self, d_xi: np.ndarray) -> np.ndarray:
        """Normalised displacements ``[..., N, 3]`` -> world displacements (metres)."""
        return np.einsum("...ck,...nk->...nc", self.rotation, d_xi) * self.scale[..., None, None]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), EPS_LENGTH)
