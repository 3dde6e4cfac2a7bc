"""Linear expression models fitted to landmarks: the PCA and DL-3DMM baselines.

A linear model of expression displacements ``d = mean + B c`` (``B``:
``[K, N * 3]`` atoms: PCA components, or a learned dictionary). Fitting a
target: the coefficients that best move the neutral's landmarks onto the
target landmarks, by ridge-regularised least squares on the landmark rows
of ``B``: ``c = argmin |B_L c - (dL - mean_L)|^2 + lam |c|^2``; the mesh is
``neutral + mean + B c``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Linear3DMM:
    """``mean``: float [N * 3]; ``basis``: float [K, N * 3]; ``landmark_weights``: [68, N]."""

    name: str
    mean: np.ndarray
    basis: np.ndarray
    landmark_weights: np.ndarray
    ridge: float

    def _landmark_rows(self, flat: np.ndarray) -> np.ndarray:
        """``[..., N * 3] -> [..., 204]``: the landmark positions of a displacement."""
        n = self.landmark_weights.shape[1]
        return np.einsum("ln,...nc->...lc", self.landmark_weights, flat.reshape(*flat.shape[:-1], n, 3)).reshape(
            *flat.shape[:-1], -1)

    def fit(self, neutral: np.ndarray, neutral_landmarks: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
        """Meshes ``[B, N, 3]`` whose landmarks best reach ``target_landmarks [B, 68, 3]``."""
        bl = self._landmark_rows(self.basis)                             # [K, 204]
        ml = self._landmark_rows(self.mean)                              # [204]
        rhs = (target_landmarks - neutral_landmarks).reshape(len(neutral), -1) - ml
        gram = bl @ bl.T + self.ridge * np.eye(len(bl))
        coeff = np.linalg.solve(gram, bl @ rhs.T).T                      # [B, K]
        disp = self.mean + coeff @ self.basis
        return neutral + disp.reshape(neutral.shape)
