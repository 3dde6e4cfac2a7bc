"""Which side of the mouth slit and of each eye slit a point lies on.

A face's slits (the lip contact line, the lid margins) separate surfaces
that lie close together but move apart: the lower lip follows the jaw, the
upper lid closes over the eye. Fields that differ across a slit are written
as a smooth part plus a smooth part times a *step*: a membership in [0, 1]
that jumps across the slit between its corners and fades into a wide,
smooth transition beyond them (skin is continuous past the corners).

Which side a point is on is decided at the point pushed ``SLIT_PROBE_DEPTH``
inwards along its normal (as ``expression.lip_sides`` does): where the two
lips touch (a closed mouth of a scanned head), their vertices almost
coincide but their normals face each other, so the pushed points fall
clearly above and below the line.

All coordinates are normalised face coordinates (``models.face.frame``).
"""

from __future__ import annotations

import numpy as np

from models.face.anchors import Anchors
from models.face.regions import lips_ellipse
from models.geometry.smooth import smoothstep

#: how far (normalised) a point is pushed inwards before its side is read
SLIT_PROBE_DEPTH = 0.025
#: width (normalised) of the step across a slit between its corners
SLIT_STEP_WIDTH = 0.012
#: growth of the step's width per normalised unit beyond a corner
SLIT_STEP_SPREAD = 0.45
#: the eye zone: half extents beyond the eye's corners (x) and above/below its centre (y)
EYE_ZONE = (0.09, 0.2)

SIDE_NONE, UPPER_LIP, LOWER_LIP = 0, 1, 2
#: side labels of the lids: (upper, lower) of the subject's right eye, then the left
LID_LABELS = {-1: (3, 4), 1: (5, 6)}


def _step(y: np.ndarray, line: np.ndarray, beyond: np.ndarray) -> np.ndarray:
    """1 below ``line`` (sharp where ``beyond`` is 0, widening with it), 0 above."""
    width = SLIT_STEP_WIDTH + SLIT_STEP_SPREAD * beyond
    return smoothstep((line - y) / width + 0.5)


def mouth_step(xi: np.ndarray, normals: np.ndarray, a: Anchors) -> np.ndarray:
    """``[N]``: 1 on the lower lip and everything below the mouth line, 0 above;
    sharp between the mouth corners, smooth beyond them."""
    probe = xi - SLIT_PROBE_DEPTH * normals
    x, y = probe[:, 0], probe[:, 1]
    left, right = a.point(48)[0], a.point(54)[0]
    beyond = np.clip(np.maximum(left - x, x - right), 0.0, None)
    return _step(y, a.mouth_line(np.clip(x, left, right)), beyond)


def lid_mid_line(a: Anchors, side: int, x: np.ndarray) -> np.ndarray:
    """Height of the line between the upper and lower lid margins of the eye on
    ``side`` (+1 the subject's left), flat beyond the corners."""
    inner, outer = a.eye_corners(side)
    xs = np.clip(x, min(inner[0], outer[0]), max(inner[0], outer[0]))
    return 0.5 * (a.lid_margin(side, True, xs) + a.lid_margin(side, False, xs))


def lid_step(xi: np.ndarray, normals: np.ndarray, a: Anchors, side: int) -> np.ndarray:
    """``[N]``: 1 on the upper lid of the eye on ``side`` and above its slit, 0
    below; sharp between the eye's corners, smooth beyond them."""
    probe = xi - SLIT_PROBE_DEPTH * normals
    x, y = probe[:, 0], probe[:, 1]
    inner, outer = a.eye_corners(side)
    lo, hi = min(inner[0], outer[0]), max(inner[0], outer[0])
    beyond = np.clip(np.maximum(lo - x, x - hi), 0.0, None)
    return 1.0 - _step(y, lid_mid_line(a, side, x), beyond)


def side_labels(xi: np.ndarray, normals: np.ndarray, a: Anchors) -> np.ndarray:
    """``int8 [N]``: ``UPPER_LIP``/``LOWER_LIP`` inside the lips region, the
    ``LID_LABELS`` inside each eye zone, ``SIDE_NONE`` elsewhere. Two faces
    put into correspondence must only match points of one label."""
    out = np.zeros(len(xi), dtype=np.int8)
    lips = lips_ellipse(xi[:, 0], xi[:, 1], a) <= 1.0
    below = mouth_step(xi, normals, a) > 0.5
    out[lips & ~below] = UPPER_LIP
    out[lips & below] = LOWER_LIP
    for side, (upper, lower) in LID_LABELS.items():
        inner, outer = a.eye_corners(side)
        cx = 0.5 * (inner[0] + outer[0])
        hx = 0.5 * abs(outer[0] - inner[0]) + EYE_ZONE[0]
        c = a.eye_centre(side)
        zone = ((xi[:, 0] - cx) / hx) ** 2 + ((xi[:, 1] - c[1]) / EYE_ZONE[1]) ** 2 <= 1.0
        above = lid_step(xi, normals, a, side) > 0.5
        out[zone & above] = upper
        out[zone & ~above] = lower
    return out
