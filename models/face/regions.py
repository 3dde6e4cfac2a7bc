"""Per-vertex region labels of any face template.

Regions: forehead, brows, eyes, nose, cheeks, lips, chin, jaw, and ``other``
for what lies outside the face (a full head's scalp, ears, neck and
eyeballs; SynthFace's mask has none). Labels are computed from position in
the normalised face frame against the landmark anchors, first match wins in
the order: other, lips, eyes, nose, brows, forehead, chin, jaw, cheeks.
"""

from __future__ import annotations

import numpy as np

from models.face.anchors import Anchors
from models.geometry.smooth import smoothstep

REGIONS: tuple[str, ...] = ("forehead", "brows", "eyes", "nose", "cheeks", "lips", "chin", "jaw", "other")

# Margins and extents, in normalised face units (1 = outer-eye-corner distance).
LIPS_REACH_X = 0.07         #: the lips region reaches this far beyond the mouth corners
LIPS_REACH_Y = 0.17         #: ... and this far above and below the mouth centre
EYE_MARGIN_X = 0.085        #: eyes reach this far beyond the eye corners
EYE_REACH_UP = 0.175        #: ... above the eye centre (the lid up to its crease)
EYE_REACH_DOWN = 0.15       #: ... below it (the lower lid)
NOSE_TOP_HALF_WIDTH = 0.09  #: half width of the nose region at the nasion
NOSE_BASE_MARGIN = 0.085    #: the nose region reaches this far beside the nostrils
NOSE_BELOW = 0.07           #: ... and this far below the subnasale
BROW_BAND_BELOW = 0.20      #: brows reach this far below the brow line
BROW_BAND_ABOVE = 0.12      #: ... and this far above it
CHIN_HALF_WIDTH = 0.36      #: chin region half width
FACE_HALF_WIDTH = 0.90      #: beyond this |x| a vertex is off the face
FACE_TOP = 1.15             #: above this y a vertex is off the face
FACE_BACK = -1.35           #: behind this z a vertex is off the face
FRONT_FULL = -1.15          #: face fields act fully in front of this z and fade to
                            #: nothing at FACE_BACK (the back of a full head stays)
BELOW_CHIN = 0.18           #: below the chin landmark by more than this: off the face


def front_weight(z: np.ndarray) -> np.ndarray:
    """1 on the face (normalised z above ``FRONT_FULL``), 0 behind ``FACE_BACK``."""
    return smoothstep((z - FACE_BACK) / (FRONT_FULL - FACE_BACK))


def lips_ellipse(x: np.ndarray, y: np.ndarray, anchors: Anchors) -> np.ndarray:
    """Squared normalised radius of the lips region (<= 1 inside)."""
    c = anchors.mouth_centre
    return (((x - c[0]) / (anchors.mouth_half_width + LIPS_REACH_X)) ** 2
            + ((y - c[1]) / LIPS_REACH_Y) ** 2)


def region_labels(xi: np.ndarray, anchors: Anchors, skin: np.ndarray) -> np.ndarray:
    """Region index (into ``REGIONS``) of each vertex.

    Args:
        xi: ``[N, 3]`` vertices in normalised face coordinates.
        anchors: the template's landmark anchors (same coordinates).
        skin: ``bool [N]``; vertices off the skin are ``other``.

    Returns:
        ``int8 [N]``.
    """
    x, y, z = xi[:, 0], xi[:, 1], xi[:, 2]
    label = np.full(len(xi), REGIONS.index("cheeks"), dtype=np.int8)

    assigned = np.zeros(len(xi), dtype=bool)

    def assign(mask: np.ndarray, name: str) -> None:
        label[mask & ~assigned] = REGIONS.index(name)
        assigned[mask] = True

    off = (~skin) | (np.abs(x) > FACE_HALF_WIDTH) | (y > FACE_TOP) | (z < FACE_BACK)
    off |= y < anchors.chin[1] - BELOW_CHIN
    assign(off, "other")

    # lips: the lips and the skin around them (the support of the lip fields)
    assign(lips_ellipse(x, y, anchors) <= 1.0, "lips")

    # eyes: a half-ellipse above and one below each eye centre
    for side in (-1, 1):
        c = anchors.eye_centre(side)
        inner, outer = anchors.eye_corners(side)
        hx = 0.5 * abs(outer[0] - inner[0]) + EYE_MARGIN_X
        cxe = 0.5 * (outer[0] + inner[0])
        hy = np.where(y > c[1], EYE_REACH_UP, EYE_REACH_DOWN)
        assign(((x - cxe) / hx) ** 2 + ((y - c[1]) / hy) ** 2 <= 1.0, "eyes")

    # nose: from the nasion down past the subnasale, widening to the nostrils
    n_top, n_base = anchors.nasion[1] + 0.02, anchors.subnasale[1] - NOSE_BELOW
    alar_y = 0.5 * (anchors.point(31)[1] + anchors.point(35)[1])
    base_half = anchors.nose_half_width + NOSE_BASE_MARGIN
    half = np.interp(y, [alar_y, n_top], [base_half, NOSE_TOP_HALF_WIDTH])
    assign((y <= n_top) & (y >= n_base) & (np.abs(x) <= half), "nose")

    # brows: a band around the brow line, above the eyes
    brow_y = anchors.brow_line(np.clip(x, anchors.point(17)[0], anchors.point(26)[0]))
    assign((y >= brow_y - BROW_BAND_BELOW) & (y <= brow_y + BROW_BAND_ABOVE)
           & (np.abs(x) <= abs(anchors.point(17)[0]) + 0.12), "brows")
    # forehead: everything above the brow band, and the temples above the eyes
    assign(y > brow_y + BROW_BAND_ABOVE, "forehead")
    assign(y > np.maximum(anchors.eye_centre(1)[1], brow_y - BROW_BAND_BELOW), "forehead")

    # chin: below the lips, between the mouth corners
    mouth_y = anchors.mouth_line(np.clip(x, anchors.point(48)[0], anchors.point(54)[0]))
    assign((y < mouth_y) & (np.abs(x) <= CHIN_HALF_WIDTH), "chin")
    # jaw: below the line from the mouth corners out to the jaw outline at ear level
    corner_y = anchors.point(48)[1]
    ear_y = 0.5 * (anchors.point(2)[1] + anchors.point(14)[1])
    rise = (np.abs(x) - CHIN_HALF_WIDTH) / max(abs(anchors.point(2)[0]) - CHIN_HALF_WIDTH, 1e-6)
    jaw_top = corner_y + np.clip(rise, 0.0, 1.0) * (ear_y - corner_y)
    assign(y < jaw_top, "jaw")
    return label
