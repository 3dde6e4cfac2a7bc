"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012), vectorised over a parameter vector.

The tracker's filter stage: a first-order low-pass filter whose cutoff rises
with the signal's speed, so a still face is smoothed hard (little jitter) and
a moving one followed closely (little lag). Per sample ``x [D]`` (float64) at
time ``t`` (seconds), with ``dt`` the time since the previous sample::

    alpha(f) = 1 / (1 + tau / dt),  tau = 1 / (2 pi f)
    dx_hat   = dx_hat + alpha(d_cutoff) * ((x - x_prev) / dt - dx_hat)
    cutoff   = min_cutoff + beta * |dx_hat|
    x_hat    = x_hat + alpha(cutoff) * (x - x_hat)

The speed is that of the raw samples (``x_prev`` the previous input, as
MediaPipe's ``OneEuroFilter::Apply`` does), so ``beta`` means the same here as
there.

``min_cutoff``, ``beta`` and ``d_cutoff`` are each a scalar or one value per
dimension. For a still signal the filter is a fixed low-pass at
``min_cutoff`` Hz; on a ramp of slope ``v`` it settles at a lag of
``v / (2 pi (min_cutoff + beta |v|))`` (the tests check both).

Settings. The constructor's defaults are the paper's neutral start
(1 Hz, no speed term). The known starting point for faces is MediaPipe's
FaceLandmarker (``ConfigureLandmarksSmoothingCalculator`` in
``mediapipe/tasks/cc/vision/face_landmarker/face_landmarks_detector_graph.cc``):
``min_cutoff`` 0.05 Hz, ``beta`` 80, ``derivate_cutoff`` 1 Hz, with the
landmarks in pixels and the speed divided by the face's size (the mean of
its landmark box's width and height), i.e. ``beta`` per face size per
second. ``MEDIAPIPE_FACE`` holds them; they carry over only to a signal in
those units (divide ``x`` by a per-dimension unit of about one face's worth
of motion), which is why ``beta`` stays the caller's to set.

Edge cases: the first sample (and the first after ``reset()``) passes
through; a timestamp less than ``MIN_DT`` after the previous one (equal, or a
clock that went back) counts as ``MIN_DT`` after it, and becomes the new
reference; NaN or inf in ``x`` or ``t``, or ``|x| > MAX_ABS``, raises
ValueError (nothing is filtered), so the output is always finite.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: shortest time step (s): two samples closer than this (or out of order) count as this far apart
MIN_DT = 1e-3
#: smallest accepted cutoff (Hz), MediaPipe's bound: lower is a filter that never moves
MIN_CUTOFF = 1e-6
#: largest accepted magnitude of an input value: far beyond any tracker parameter, small
#: enough that every difference and speed the filter forms stays finite in float64
MAX_ABS = 1e100


class OneEuroSettings(NamedTuple):
    """The filter's three settings (``OneEuroFilter(*settings)``)."""

    min_cutoff: float = 1.0     #: Hz: the cutoff of a still signal (lower: smoother, more lag)
    beta: float = 0.0           #: Hz per unit of speed: how fast the cutoff rises when moving
    d_cutoff: float = 1.0       #: Hz: the low-pass on the speed estimate


#: MediaPipe FaceLandmarker's smoothing (see the module docstring for its units)
MEDIAPIPE_FACE = OneEuroSettings(min_cutoff=0.05, beta=80.0, d_cutoff=1.0)


def _alpha(cutoff: np.ndarray, dt: float) -> np.ndarray:
    """The exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz over ``dt`` s."""
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """``f(x, t) -> x_hat``: filter vectors ``x [D]`` sampled at times ``t`` (s); ``reset()`` forgets."""

    def __init__(self, min_cutoff=1.0, beta=0.0, d_cutoff=1.0):
        self.min_cutoff = np.asarray(min_cutoff, np.float64)
        self.beta = np.asarray(beta, np.float64)
        self.d_cutoff = np.asarray(d_cutoff, np.float64)
        for name in ("min_cutoff", "beta", "d_cutoff"):
            v = getattr(self, name)
            if v.ndim > 1 or not np.isfinite(v).all():
                raise ValueError(f"OneEuroFilter: {name} must be finite, a scalar or one value per dimension")
        if (self.min_cutoff < MIN_CUTOFF).any() or (self.d_cutoff < MIN_CUTOFF).any() or (self.beta < 0).any():
            raise ValueError(f"OneEuroFilter needs min_cutoff >= {MIN_CUTOFF:g}, d_cutoff >= {MIN_CUTOFF:g} (Hz) "
                             f"and beta >= 0")
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through (call it when the signal jumps, e.g. a
        face lost and found again, or its dimension changes)."""
        self._x: np.ndarray | None = None         # the filtered value
        self._raw: np.ndarray | None = None       # the previous input
        self._dx: np.ndarray | None = None        # the filtered speed
        self._t = 0.0

    def __call__(self, x, t: float) -> np.ndarray:
        """The filtered ``x`` (float64, a new array) at time ``t``."""
        x = np.array(x, np.float64)                  # a copy: the caller may reuse its array
        t = float(t)
        if not np.isfinite(t):
            raise ValueError(f"OneEuroFilter: the timestamp is {t}, not a finite number of seconds")
        if not np.isfinite(x).all():
            bad = np.flatnonzero(~np.isfinite(x.ravel()))
            raise ValueError(f"OneEuroFilter: non-finite input (NaN or inf) at t={t:g} in dimension(s) "
                             f"{bad[:8].tolist()} of {x.size}")
        if x.size and np.abs(x).max() > MAX_ABS:
            raise ValueError(f"OneEuroFilter: input {np.abs(x).max():.3g} at t={t:g} exceeds MAX_ABS={MAX_ABS:g}")
        if self._x is None:
            for name in ("min_cutoff", "beta", "d_cutoff"):
                if getattr(self, name).ndim == 1 and getattr(self, name).shape != x.shape:
                    raise ValueError(f"OneEuroFilter: {name} has {getattr(self, name).size} values, "
                                     f"the input has shape {x.shape}")
            self._x, self._raw, self._dx, self._t = x, x, np.zeros_like(x), t
            return x.copy()
        if x.shape != self._x.shape:
            raise ValueError(f"OneEuroFilter: input shape {x.shape} after {self._x.shape} (reset() first)")
        dt = max(t - self._t, MIN_DT)                 # finite, or inf for timestamps ~1e308 apart
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * ((x - self._raw) / dt - self._dx)
        self._raw, self._t = x, t
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        return self._x.copy()
