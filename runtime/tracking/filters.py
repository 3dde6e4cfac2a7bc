"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012), vectorised.

A low-pass filter whose cutoff rises with the signal's speed: still
signals are smoothed hard (little jitter), fast ones followed closely
(little lag). Per sample, with ``dt`` the time since the previous one::

    dx      = (x - x_prev) / dt, itself low-passed with cutoff d_cutoff
    cutoff  = min_cutoff + beta * |dx|
    alpha   = 1 / (1 + tau / dt),  tau = 1 / (2 pi cutoff)
    x_hat   = x_hat_prev + alpha (x - x_hat_prev)

Every argument may be a scalar or one value per dimension of ``x``. The
defaults are MediaPipe's face-landmark smoothing starting point
(``min_cutoff`` 1 Hz, ``d_cutoff`` 1 Hz); ``beta`` depends on the units of
``x`` and is set by the caller (the tracker's parameters are in radians,
pixels and model coefficients).
"""

from __future__ import annotations

import numpy as np

#: the time step used when timestamps do not increase (s)
MIN_DT = 1e-3


class OneEuroFilter:
    """``filter(x, t) -> x_hat`` for vectors ``x [D]`` at times ``t`` (seconds); ``reset()`` forgets."""

    def __init__(self, min_cutoff=1.0, beta=0.0, d_cutoff=1.0):
        self.min_cutoff = np.asarray(min_cutoff, np.float64)
        self.beta = np.asarray(beta, np.float64)
        self.d_cutoff = np.asarray(d_cutoff, np.float64)
        if (self.min_cutoff <= 0).any() or (self.d_cutoff <= 0).any() or (self.beta < 0).any():
            raise ValueError("OneEuroFilter needs min_cutoff > 0, d_cutoff > 0 and beta >= 0")
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray, dt: float) -> np.ndarray:
        tau = 1.0 / (2.0 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if not np.isfinite(x).all():
            raise ValueError(f"OneEuroFilter: non-finite input at t={t} (NaN or inf in {x.size} values)")
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        dt = dt if dt > 0 else MIN_DT
        self._t = max(float(t), self._t)
        dx = (x - self._x) / dt
        self._dx = self._dx + self._alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + self._alpha(cutoff, dt) * (x - self._x)
        return self._x.copy()
