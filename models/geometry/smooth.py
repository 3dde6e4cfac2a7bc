"""Smooth scalar primitives for building deformation fields.

All take and return float arrays of any shape. Compactly supported
functions (``bump``, ``smoothstep``) are exactly zero or one outside their
transition band, so a field built from them moves nothing outside its
support: that is what lets a blendshape move only its region.
"""

from __future__ import annotations

import numpy as np


def smoothstep(x: np.ndarray) -> np.ndarray:
    """C2 step: 0 for ``x <= 0``, 1 for ``x >= 1``, ``6x^5 - 15x^4 + 10x^3`` between."""
    t = np.clip(x, 0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)


def bump(r2: np.ndarray) -> np.ndarray:
    """C2 radial bump of the squared normalised radius: ``(1 - r2)^3`` inside the unit ball, 0 outside."""
    t = np.clip(1.0 - r2, 0.0, None)
    return t * t * t


def soft_plus(x: np.ndarray, width: float) -> np.ndarray:
    """Smooth ``max(x, 0)`` with a transition of about ``width``."""
    return width * np.logaddexp(0.0, x / width)
