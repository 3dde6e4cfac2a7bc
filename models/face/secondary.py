"""Nonlinear expression effects: wrinkles, bulges and corrective combinations.

Real skin does not move linearly with muscle activation: forehead furrows
deepen as the brows rise, a cheek bulges more than the mouth corner moves at
a broad smile, and two units together (a smile with an open jaw) do what
neither does alone. Production rigs add such "corrective" shapes on top of
their blendshapes; SynthFace does the same, so that dense motion is a
nonlinear function of landmark motion, as in real 4D data (a model that
only learns a linear map from landmarks to vertices cannot reproduce it).

Each term is a displacement field (normalised face units, like the
blendshapes) with a response to the ARKit weights: ``square`` (``w^2`` of
its driver) or ``product`` (``w_a * w_b``). A term only moves regions its
driver may move (checked by the blendshape region test), so "every
blendshape moves only its region" still holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.face.anchors import Anchors
from models.face.expression import INDEX
from models.face.regions import front_weight
from models.geometry.smooth import bump, smoothstep


@dataclass(frozen=True)
class SecondaryTerm:
    name: str
    drivers: tuple[str, ...]      #: one driver (response w^2) or two (response w_a * w_b)


TERMS: tuple[SecondaryTerm, ...] = (
    SecondaryTerm("forehead_furrows_inner", ("browInnerUp",)),
    SecondaryTerm("forehead_furrows_left", ("browOuterUpLeft",)),
    SecondaryTerm("forehead_furrows_right", ("browOuterUpRight",)),
    SecondaryTerm("glabella_left", ("browDownLeft",)),
    SecondaryTerm("glabella_right", ("browDownRight",)),
    SecondaryTerm("smile_bulge_left", ("mouthSmileLeft",)),
    SecondaryTerm("smile_bulge_right", ("mouthSmileRight",)),
    SecondaryTerm("crows_feet_left", ("eyeSquintLeft",)),
    SecondaryTerm("crows_feet_right", ("eyeSquintRight",)),
    SecondaryTerm("bunny_lines_left", ("noseSneerLeft",)),
    SecondaryTerm("bunny_lines_right", ("noseSneerRight",)),
    SecondaryTerm("jaw_stretch", ("jawOpen",)),
    SecondaryTerm("lip_bunching", ("mouthPucker",)),
    SecondaryTerm("cheek_balloon", ("cheekPuff",)),
    SecondaryTerm("chin_dimpling", ("mouthShrugLower",)),
    SecondaryTerm("open_smile_left", ("jawOpen", "mouthSmileLeft")),
    SecondaryTerm("open_smile_right", ("jawOpen", "mouthSmileRight")),
    SecondaryTerm("squint_smile_left", ("mouthSmileLeft", "cheekSquintLeft")),
    SecondaryTerm("squint_smile_right", ("mouthSmileRight", "cheekSquintRight")),
)
N_SECONDARY = len(TERMS)

#: wrinkle wavelength and depth at full activation (normalised units: ~8 mm, ~0.9 mm)
FURROW_WAVELENGTH = 0.095
FURROW_DEPTH = 0.01


def _b(x, y, cx, cy, rx, ry):
    return bump(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)


def secondary_drivers() -> tuple[np.ndarray, np.ndarray]:
    """ARKit indices driving each term: ``(a [K], b [K])``; ``b == a`` for squares."""
    a = np.array([INDEX[t.drivers[0]] for t in TERMS])
    b = np.array([INDEX[t.drivers[-1]] for t in TERMS])
    return a, b


def secondary_response(weights: np.ndarray) -> np.ndarray:
    """Term activations ``[B, K]`` of ARKit weights ``[B, 52]``: ``w_a * w_b``."""
    a, b = secondary_drivers()
    return weights[:, a] * weights[:, b]


def secondary_fields(xi: np.ndarray, normals: np.ndarray, a: Anchors, skin: np.ndarray) -> np.ndarray:
    """The terms' fields ``[K, N, 3]`` at ``xi [N, 3]`` (normalised, at activation 1)."""
    x, y, z = xi[:, 0], xi[:, 1], xi[:, 2]
    n = normals
    out = {}

    def inward(depth):                       # push along the inward normal (a groove)
        return -depth[:, None] * n

    brow_y = a.brow_line(np.clip(x, a.point(17)[0], a.point(26)[0]))
    above = y - brow_y
    furrows = np.cos(2 * np.pi * above / FURROW_WAVELENGTH) * smoothstep((above - 0.04) / 0.06)
    furrows *= 1.0 - smoothstep((above - 0.42) / 0.12)
    out["forehead_furrows_inner"] = inward(FURROW_DEPTH * furrows * bump((x / 0.42) ** 2))
    for side, name in ((1, "left"), (-1, "right")):
        lateral = bump(((x - side * 0.45) / 0.32) ** 2)
        out[f"forehead_furrows_{name}"] = inward(0.8 * FURROW_DEPTH * furrows * lateral)
        # glabella: vertical folds between the brows, bunching towards the midline
        gx = np.cos(2 * np.pi * x / 0.07) * _b(x, y, side * 0.06, brow_y.mean() - 0.02, 0.09, 0.12)
        out[f"glabella_{name}"] = inward(0.005 * gx) + np.stack([-side * 0.008 * _b(x, y, side * 0.1, 0.12, 0.12, 0.1),
                                                                  0 * x, 0 * x], 1)
        # smile: the cheek bulges up and out, the nasolabial fold deepens
        corner = a.point(54 if side > 0 else 48)
        bulge = _b(x, y, corner[0] + side * 0.13, corner[1] + 0.2, 0.2, 0.18)
        fold_line = np.abs((x - side * 0.2) * 0.85 - side * (y - corner[1] - 0.16) * 0.5)
        fold = np.exp(-(fold_line / 0.025) ** 2) * _b(x, y, side * 0.24, corner[1] + 0.16, 0.16, 0.22)
        out[f"smile_bulge_{name}"] = (np.stack([side * 0.012 * bulge, 0.03 * bulge, 0.05 * bulge], 1)
                                      + inward(0.025 * fold))
        # crow's feet: radial wrinkles fanning out from the outer eye corner, below its line
        outer = a.eye_corners(side)[1]
        ang = np.arctan2(y - outer[1], side * (x - outer[0]))
        fan = np.cos(ang * 9.0) * _b(x, y, outer[0] + side * 0.07, outer[1] - 0.05, 0.09, 0.07)
        out[f"crows_feet_{name}"] = inward(0.004 * fan * (y < outer[1] + 0.01))
        # bunny lines: short oblique wrinkles on the side of the nose bridge
        bridge = a.point(28)
        ripple = np.cos(2 * np.pi * (y - bridge[1]) / 0.05) * _b(x, y, side * 0.07, bridge[1], 0.06, 0.09)
        out[f"bunny_lines_{name}"] = inward(0.004 * ripple)
        # open smile: the corner is pulled down and back when the jaw opens
        cw = _b(x, y, corner[0], corner[1] - 0.03, 0.2, 0.22)
        out[f"open_smile_{name}"] = np.stack([side * 0.012 * cw, -0.02 * cw, -0.012 * cw], 1)
        # squinting smile: the cheek bulges into the lower lid
        sq = _b(x, y, side * 0.38, -0.2, 0.16, 0.12)
        out[f"squint_smile_{name}"] = np.stack([0 * x, 0.03 * sq, 0.025 * sq], 1)
    # jaw: the cheeks hollow below the cheekbones as it opens
    hollow = sum(_b(x, y, s * 0.46, a.mouth_centre[1] + 0.08, 0.2, 0.24) for s in (-1, 1))
    out["jaw_stretch"] = inward(0.035 * hollow)
    # pucker: the lips bunch and push forward more than linearly
    lips = _b(x, y, a.mouth_centre[0], a.mouth_centre[1], a.mouth_half_width + 0.05, 0.14)
    out["lip_bunching"] = np.stack([-0.08 * (x - a.mouth_centre[0]) * lips, 0 * x, 0.04 * lips], 1)
    # cheek puff: the balloon rounds out
    balloon = sum(_b(x, y, s * 0.5, a.mouth_centre[1] + 0.1, 0.24, 0.26) for s in (-1, 1))
    out["cheek_balloon"] = np.stack([np.sign(x) * 0.025 * balloon, 0 * x, 0.05 * balloon], 1)
    # shrug: the chin's skin dimples ("orange peel")
    chin = _b(x, y, 0.0, a.lower_lip_bottom - 0.14, 0.22, 0.12)
    dimples = np.cos(2 * np.pi * x / 0.06) * np.cos(2 * np.pi * y / 0.06)
    out["chin_dimpling"] = inward(0.004 * chin * dimples)

    fields = np.stack([out[t.name] for t in TERMS])
    fields *= front_weight(z)[None, :, None]
    fields[:, ~skin] = 0.0
    return fields
