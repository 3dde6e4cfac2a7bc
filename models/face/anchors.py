"""Feature anchors: where a face's parts are, in its normalised face frame.

Identity and expression fields are written against these anchors (eye
centres, mouth line, nose tip, brow line, ...), all read off the 68
landmarks, so a field placed "on the upper lid" lands on the upper lid of
any template that has landmarks, whatever its proportions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Anchors:
    """Landmark-derived positions, all in normalised face coordinates (``xi``)."""

    landmarks: np.ndarray        #: [68, 3] the landmarks themselves

    def point(self, i: int) -> np.ndarray:
        return self.landmarks[i]

    # ---- eyes -----------------------------------------------------------
    def eye_centre(self, side: int) -> np.ndarray:
        """Centre of the eye on ``side`` (+1 subject's left, -1 right)."""
        ids = slice(42, 48) if side > 0 else slice(36, 42)
        return self.landmarks[ids].mean(axis=0)

    def eye_corners(self, side: int) -> tuple[np.ndarray, np.ndarray]:
        """(inner, outer) corner of the eye on ``side``."""
        return (self.landmarks[42], self.landmarks[45]) if side > 0 else (self.landmarks[39], self.landmarks[36])

    def lid_margin(self, side: int, upper: bool, x: np.ndarray) -> np.ndarray:
        """Height of the upper or lower lid margin at ``x`` (piecewise linear
        through the corners and the two lid landmarks)."""
        if side > 0:
            ids = (42, 43, 44, 45) if upper else (42, 47, 46, 45)
        else:
            ids = (36, 37, 38, 39) if upper else (36, 41, 40, 39)
        p = self.landmarks[list(ids)]
        order = np.argsort(p[:, 0])
        return np.interp(x, p[order, 0], p[order, 1])

    # ---- mouth ----------------------------------------------------------
    @property
    def mouth_half_width(self) -> float:
        return float(0.5 * abs(self.landmarks[54, 0] - self.landmarks[48, 0]))

    @property
    def mouth_centre(self) -> np.ndarray:
        return self.landmarks[60:68].mean(axis=0)

    def mouth_line(self, x: np.ndarray) -> np.ndarray:
        """Height of the lip contact line at ``x``: through the corners and the
        midpoints of the inner-lip pairs (61/67, 62/66, 63/65)."""
        lm = self.landmarks
        pts = np.stack([lm[48], 0.5 * (lm[61] + lm[67]), 0.5 * (lm[62] + lm[66]),
                        0.5 * (lm[63] + lm[65]), lm[54]])
        return np.interp(x, pts[:, 0], pts[:, 1])

    @property
    def upper_lip_top(self) -> float:
        return float(self.landmarks[51, 1])

    @property
    def lower_lip_bottom(self) -> float:
        return float(self.landmarks[57, 1])

    # ---- nose, brows, chin ---------------------------------------------
    @property
    def nose_tip(self) -> np.ndarray:
        return self.landmarks[30]

    @property
    def nasion(self) -> np.ndarray:
        return self.landmarks[27]

    @property
    def subnasale(self) -> np.ndarray:
        return self.landmarks[33]

    @property
    def nose_half_width(self) -> float:
        return float(0.5 * abs(self.landmarks[35, 0] - self.landmarks[31, 0]))

    def brow_line(self, x: np.ndarray) -> np.ndarray:
        """Height of the brows at ``x`` (through landmarks 17-26)."""
        p = self.landmarks[17:27]
        order = np.argsort(p[:, 0])
        return np.interp(x, p[order, 0], p[order, 1])

    def brow_centre(self, side: int) -> np.ndarray:
        return self.landmarks[22:27].mean(axis=0) if side > 0 else self.landmarks[17:22].mean(axis=0)

    @property
    def chin(self) -> np.ndarray:
        return self.landmarks[8]

    def jaw_outline_y(self, x: np.ndarray) -> np.ndarray:
        """Height of the jaw outline (landmarks 0-16) at ``x``, below the mouth."""
        p = self.landmarks[0:17]
        lower = p[:, 1] < self.mouth_line(p[:, 0])
        q = p[lower]
        order = np.argsort(q[:, 0])
        return np.interp(x, q[order, 0], q[order, 1])
