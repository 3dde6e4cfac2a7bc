"""The 12 CoMA expression labels as recipes of ARKit blendshape weights.

A recipe names the units a label is made of (``primary``, always present,
at their apex weight) and units that may join it (``secondary``, each
present in about half of the performances, at up to the given weight).
``apex_weights`` turns a recipe into one performance's apex: overall
intensity, left/right asymmetry, jitter of each unit and the chance of each
secondary unit vary per sequence, so no two performances are the same.

ARKit has no shape for sucking the cheeks in; ``cheeks_in`` is built from
pucker and funnel (the lips pushed into a "fish face"), which is how it
moves the landmarks, and says so here rather than inventing a 53rd shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.face.expression import ARKIT_NAMES, INDEX, N_EXPRESSION

COMA_LABELS: tuple[str, ...] = (
    "bareteeth", "cheeks_in", "eyebrow", "high_smile", "lips_back", "lips_up",
    "mouth_down", "mouth_extreme", "mouth_middle", "mouth_open", "mouth_side", "mouth_up",
)

#: performance variation
INTENSITY_RANGE = (0.75, 1.1)     #: overall apex intensity factor
ASYMMETRY_SD = 0.12               #: sd of the left/right imbalance of paired units
UNIT_JITTER_SD = 0.08             #: relative sd of each unit's weight
SECONDARY_CHANCE = 0.55           #: chance a secondary unit joins the performance
SECONDARY_MIN = 0.3               #: a joining secondary unit gets 30-100 % of its weight


@dataclass(frozen=True)
class Recipe:
    """Apex weights of a label. ``"X*"`` means both ``XLeft`` and ``XRight``;
    ``one_side`` units (``"mouth*"`` ...) go to one side chosen per performance."""

    primary: dict[str, float]
    secondary: dict[str, float] = field(default_factory=dict)
    one_side: tuple[str, ...] = ()


RECIPES: dict[str, Recipe] = {
    "bareteeth": Recipe(
        {"mouthUpperUp*": 0.9, "mouthLowerDown*": 0.85, "mouthStretch*": 0.5, "jawOpen": 0.08,
         "noseSneer*": 0.25},
        {"mouthDimple*": 0.3, "cheekSquint*": 0.35, "browDown*": 0.2}),
    "cheeks_in": Recipe(
        {"mouthPucker": 0.85, "mouthFunnel": 0.35, "mouthRollLower": 0.2, "mouthRollUpper": 0.2,
         "jawOpen": 0.05},
        {"mouthPress*": 0.25, "browInnerUp": 0.2}),
    "eyebrow": Recipe(
        {"browInnerUp": 0.9, "browOuterUp*": 0.9, "eyeWide*": 0.5},
        {"mouthShrugUpper": 0.15, "jawOpen": 0.06}),
    "high_smile": Recipe(
        {"mouthSmile*": 1.0, "cheekSquint*": 0.7, "eyeSquint*": 0.45, "jawOpen": 0.15,
         "mouthUpperUp*": 0.3},
        {"mouthDimple*": 0.35, "browInnerUp": 0.2, "mouthStretch*": 0.2}),
    "lips_back": Recipe(
        {"mouthStretch*": 0.8, "mouthPress*": 0.6, "mouthRollLower": 0.3, "mouthRollUpper": 0.3,
         "mouthDimple*": 0.5},
        {"jawOpen": 0.06, "mouthFrown*": 0.2}),
    "lips_up": Recipe(
        {"mouthUpperUp*": 0.9, "noseSneer*": 0.6, "mouthShrugUpper": 0.5, "mouthShrugLower": 0.4},
        {"cheekSquint*": 0.3, "browDown*": 0.25}),
    "mouth_down": Recipe(
        {"mouthFrown*": 1.0, "mouthLowerDown*": 0.5, "mouthShrugLower": 0.25},
        {"jawOpen": 0.1, "browInnerUp": 0.35, "mouthStretch*": 0.25}),
    "mouth_extreme": Recipe(
        {"jawOpen": 1.0, "mouthStretch*": 0.7, "mouthLowerDown*": 0.5, "mouthUpperUp*": 0.4},
        {"browInnerUp": 0.45, "eyeWide*": 0.35, "browOuterUp*": 0.3}),
    "mouth_middle": Recipe(
        {"mouthPucker": 0.5, "mouthPress*": 0.8, "mouthRollUpper": 0.6, "mouthRollLower": 0.6},
        {"mouthClose": 0.15, "mouthShrugLower": 0.2}),
    "mouth_open": Recipe(
        {"jawOpen": 0.75, "mouthLowerDown*": 0.2},
        {"browInnerUp": 0.25, "mouthFunnel": 0.15}),
    "mouth_side": Recipe(
        {"mouth*": 1.0, "jaw*": 0.3, "mouthSmile*": 0.25},
        {"cheekSquint*": 0.25},
        one_side=("mouth*", "jaw*", "mouthSmile*", "cheekSquint*")),
    "mouth_up": Recipe(
        {"mouthShrugLower": 1.0, "mouthShrugUpper": 0.6, "mouthPucker": 0.3, "mouthRollLower": 0.2},
        {"noseSneer*": 0.2, "mouthClose": 0.1}),
}


def _expand(unit: str) -> tuple[str, str] | tuple[str]:
    """``"X*"`` -> ``("XLeft", "XRight")``; a plain name -> itself."""
    if unit.endswith("*"):
        return unit[:-1] + "Left", unit[:-1] + "Right"
    return (unit,)


def recipe_units(label: str) -> list[str]:
    """Every ARKit unit a label can use (primary and secondary)."""
    r = RECIPES[label]
    return [n for u in (*r.primary, *r.secondary) for n in _expand(u)]


def apex_weights(label: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One performance's apex of ``label``.

    Returns:
        ``(weights float32 [52], secondary bool [52])``: the apex weights in
        [0, 1] and which units joined as secondary (they may lag in time).
    """
    if label not in RECIPES:
        raise ValueError(f"unknown expression label {label!r}; known: {', '.join(COMA_LABELS)}")
    r = RECIPES[label]
    w = np.zeros(N_EXPRESSION, dtype=np.float64)
    secondary = np.zeros(N_EXPRESSION, dtype=bool)
    intensity = rng.uniform(*INTENSITY_RANGE)
    tilt = rng.normal(0.0, ASYMMETRY_SD)              # > 0: the subject's left side stronger
    side = "Left" if rng.random() < 0.5 else "Right"

    def add(unit: str, weight: float, is_secondary: bool) -> None:
        names = _expand(unit)
        if unit in r.one_side:
            names = (unit[:-1] + side,)
        for name in names:
            lean = 1.0 + (tilt if name.endswith("Left") else -tilt if name.endswith("Right") else 0.0)
            jitter = 1.0 + rng.normal(0.0, UNIT_JITTER_SD)
            w[INDEX[name]] += weight * intensity * lean * jitter
            secondary[INDEX[name]] |= is_secondary

    for unit, weight in r.primary.items():
        add(unit, weight, False)
    for unit, weight in r.secondary.items():
        if rng.random() < SECONDARY_CHANCE:
            add(unit, weight * rng.uniform(SECONDARY_MIN, 1.0), True)
    return np.clip(w, 0.0, 1.0).astype(np.float32), secondary


__all__ = ["ARKIT_NAMES", "COMA_LABELS", "RECIPES", "Recipe", "apex_weights", "recipe_units"]
