"""Timelines of 4D expression sequences: neutral -> apex -> hold -> neutral.

A sequence of ``label`` is a weight curve per ARKit unit over frames: a
neutral lead-in, an eased onset to the apex, an apex hold with a slow
drift, an eased offset, and a neutral tail, about 140 frames at 60 fps as
CoMA's sequences. Durations are drawn in seconds (so any frame rate works),
the easing curve per sequence, and secondary units lag the primary ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.face.labels import apex_weights

#: phase durations in seconds (uniform ranges); at 60 fps the total is ~140 frames
LEAD_S = (0.1, 0.3)
ONSET_S = (0.45, 0.8)
HOLD_S = (0.5, 0.9)
OFFSET_S = (0.45, 0.8)
TAIL_S = (0.1, 0.3)
#: how late (seconds) a secondary unit may start and end
SECONDARY_LAG_S = (0.0, 0.1)
#: relative amplitude and period (s) of the drift during the apex hold
HOLD_DRIFT = 0.04
HOLD_DRIFT_PERIOD_S = (0.6, 1.5)


@dataclass(frozen=True)
class Timeline:
    """Frame indices of the phases: onset starts at ``onset``, the apex is
    reached at ``apex``, held until ``release``, neutral again at ``end``."""

    n_frames: int
    onset: int
    apex: int
    release: int
    end: int


def _ease(t: np.ndarray, kind: int, power: float) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    if kind == 0:                                    # smoothstep
        return t * t * (3 - 2 * t)
    if kind == 1:                                    # sine in-out
        return 0.5 - 0.5 * np.cos(np.pi * t)
    if kind == 2:                                    # fast start, slow settle
        return 1.0 - (1.0 - t) ** power
    return np.where(t < 0.5, 0.5 * (2 * t) ** power, 1 - 0.5 * (2 - 2 * t) ** power)  # power in-out


def _activation(frames: np.ndarray, tl: Timeline, rng: np.random.Generator) -> np.ndarray:
    """Activation curve in [0, 1] over ``frames`` for one timeline."""
    kind_on, kind_off = rng.integers(0, 4, size=2)
    p_on, p_off = rng.uniform(1.6, 3.0, size=2)
    up = _ease((frames - tl.onset) / max(tl.apex - tl.onset, 1), kind_on, p_on)
    down = _ease((frames - tl.release) / max(tl.end - tl.release, 1), kind_off, p_off)
    return np.where(frames < tl.release, up, 1.0 - down)


def sample_timeline(fps: float, rng: np.random.Generator) -> Timeline:
    """Phase boundaries of one sequence at ``fps``."""
    d = [rng.uniform(*r) * fps for r in (LEAD_S, ONSET_S, HOLD_S, OFFSET_S, TAIL_S)]
    marks = np.round(np.cumsum(d)).astype(int)
    onset, apex, release, end, total = marks
    return Timeline(n_frames=int(total) + 1, onset=int(onset), apex=int(apex), release=int(release), end=int(end))


def sequence_weights(label: str, fps: float, rng: np.random.Generator) -> tuple[np.ndarray, Timeline]:
    """ARKit weights ``float32 [T, 52]`` of one performance of ``label``."""
    apex, secondary = apex_weights(label, rng)
    tl = sample_timeline(fps, rng)
    frames = np.arange(tl.n_frames, dtype=np.float64)
    main = _activation(frames, tl, rng)
    drift_period = rng.uniform(*HOLD_DRIFT_PERIOD_S) * fps
    hold = (frames >= tl.apex) & (frames < tl.release)
    main = main * (1.0 + HOLD_DRIFT * hold * np.sin(2 * np.pi * (frames - tl.apex) / drift_period))
    weights = main[:, None] * apex[None, :]
    for unit in np.flatnonzero(secondary):
        lag = int(round(rng.uniform(*SECONDARY_LAG_S) * fps))
        shifted = Timeline(tl.n_frames, tl.onset + lag, tl.apex + lag, tl.release + lag,
                           min(tl.end + lag, tl.n_frames - 1))
        weights[:, unit] = _activation(frames, shifted, rng) * apex[unit]
    return np.clip(weights, 0.0, 1.0).astype(np.float32), tl
