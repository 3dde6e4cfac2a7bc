"""The fixed-timestep clock: drift-free deadlines on a grid, sans I/O.

Every stream runs on the grid ``epoch + k / fps`` of the engine's epoch, so
streams of the same rate fall due at the same instants and are stepped
together, and a 30 fps stream falls due on every other 60 fps tick.
Deadlines are computed from ``k``, never by adding periods to the last
wake-up, so timing does not drift. When the engine is late by more than a
period, the missed deadlines are skipped (and counted as dropped), and the
stream goes on at the next deadline still ahead: never a burst of catch-up
frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: a deadline within this of ``now`` (s) counts as due (float sums of 1/fps)
DUE_EPS = 1e-6


@dataclass
class Cadence:
    """One stream's place on the grid ``epoch + k / fps``."""

    fps: float
    epoch: float
    k: int = 0              #: index of the next deadline
    emitted: int = 0        #: frames stepped
    dropped: int = 0        #: deadlines skipped because the engine was behind
    last_lateness: float = 0.0

    @staticmethod
    def starting_at(fps: float, epoch: float, now: float) -> "Cadence":
        """A cadence whose first deadline is the first grid point at or after ``now``."""
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        k = max(0, math.ceil((now - epoch) * fps - DUE_EPS))
        return Cadence(fps=fps, epoch=epoch, k=k)

    @property
    def period(self) -> float:
        return 1.0 / self.fps

    def deadline(self, k: int | None = None) -> float:
        return self.epoch + (self.k if k is None else k) / self.fps

    def due(self, now: float) -> bool:
        return now + DUE_EPS >= self.deadline()

    def advance(self, now: float) -> tuple[int, float]:
        """Step at ``now`` (which must be due): returns (the deadline index
        stepped, its lateness in seconds). Missed deadlines before it are
        skipped and counted in ``dropped``."""
        behind = int(math.floor((now - self.deadline()) * self.fps + DUE_EPS))
        if behind > 0:                      # whole periods missed: skip to the newest due deadline
            self.dropped += behind
            self.k += behind
        k = self.k
        self.last_lateness = max(0.0, now - self.deadline(k))
        self.k += 1
        self.emitted += 1
        return k, self.last_lateness
