"""Timelines of 4D expression sequences: neutral -> apex -> hold -> neutral.

A sequence of ``label`` is a weight curve per ARKit unit over frames: a
neutral lead-in, an eased onset to the apex, an apex hold with a slow
drift, an eased offset, and a neutral tail, about 140 frames at 60 fps as
CoMA's sequences. Durations are drawn in seconds (so any frame rate works),
the easing curve per sequence, and secondary units lag the primary ones.

Two generations live here side by side:

- v1 (``sequence_weights``, ``Timeline``): the above, noise-free; kept
  bit-for-bit so ``--face-version 1`` makes the same data for the same seed.
- v2 (``performance_weights``, ``Performance``, ``DynamicsConfig``): the
  same phases with per-unit onset and release times, an overshoot that
  settles at the apex, micro-motion, resting tone in every unit,
  spontaneous blinks, and a first frame that is a resting (not a neutral)
  face. See the block comment above ``DynamicsConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.face.expression import INDEX, N_EXPRESSION
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


#: ``_ease`` kinds: smoothstep, sine in-out, fast start / slow settle, power in-out
EASE_KINDS = 4
EASE_SINE = 1


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


# --------------------------------------------------------------------------
# v2 dynamics (``facecast data synth --face-version 2``)
# --------------------------------------------------------------------------
#
# A v2 performance of ``label`` is, per ARKit unit u and time t (seconds):
#
#     w_u(t) = rest_u + fluct_u(t) + apex_u * a_u(t) * (1 + micro_u(t)),
#     eyeBlink{Left,Right}(t) = max(w, blink(t)),     soft-limited into (0, 1)
#
# ``rest_u`` and ``fluct_u`` are every unit's resting tone and its slow,
# tiny fluctuation (no frame is exactly neutral, the first one included);
# ``a_u`` is the active unit's activation: its own onset time (the units of
# one performance start over a spread of 50-300 ms, and release likewise),
# an eased rise that overshoots the apex, a damped settle, a hold, an eased
# release; ``micro_u`` is a small band-limited fluctuation of the active
# units; ``blink`` places spontaneous blinks at a realistic rate. The soft
# limit (``soft_limit``) saturates a unit smoothly, as a muscle does, instead
# of clipping it: a unit pushed past 1 still fluctuates, and no weight is
# ever exactly 0 or 1.

#: the units a blink drives, both lids together
BLINK_UNITS = (INDEX["eyeBlinkLeft"], INDEX["eyeBlinkRight"])
MOUTH_CLOSE, JAW_OPEN = INDEX["mouthClose"], INDEX["jawOpen"]


@dataclass(frozen=True)
class DynamicsConfig:
    """The v2 performance model. Ranges ``(lo, hi)`` are drawn uniformly per
    performance (or per unit where said); times in seconds, frequencies in
    Hz, weights in ARKit units [0, 1], so any frame rate gives the same motion."""

    lead_s: tuple[float, float] = (0.1, 0.3)            #: rest before the first unit moves
    onset_s: tuple[float, float] = (0.45, 0.8)          #: a unit's eased rise from rest to its peak
    hold_s: tuple[float, float] = (0.5, 0.9)            #: last unit's peak -> first unit's release
    offset_s: tuple[float, float] = (0.45, 0.8)         #: a unit's eased release back to rest
    ease_power: tuple[float, float] = (1.6, 3.0)        #: power of the power-law easing curves
    tail_s: tuple[float, float] = (0.1, 0.3)            #: rest after the last unit is back
    onset_spread_s: tuple[float, float] = (0.05, 0.30)  #: first to last unit's onset start
    release_spread_s: tuple[float, float] = (0.05, 0.30)  #: first to last unit's release start
    overshoot: tuple[float, float] = (0.05, 0.15)       #: peak above the held apex, relative
    damping: tuple[float, float] = (0.45, 0.7)          #: damping ratio of the settle
    settle_s: tuple[float, float] = (0.15, 0.3)         #: peak -> within ``settle_tolerance`` of the apex
    settle_tolerance: float = 0.02                      #: relative band that counts as settled
    micro_rms: float = 0.015                            #: active units' fluctuation, relative RMS
    micro_band_hz: tuple[float, float] = (0.3, 4.0)     #: its frequency band
    rest_level: tuple[float, float] = (0.01, 0.04)      #: every unit's resting tone (per unit)
    rest_rms: float = 0.003                             #: every unit's fluctuation, absolute RMS
    rest_band_hz: tuple[float, float] = (0.2, 3.0)      #: its frequency band
    noise_components: int = 8                           #: sinusoids per band-limited signal
    blink_rate_per_min: tuple[float, float] = (10.0, 20.0)  #: spontaneous blinks per minute
    blink_duration_s: tuple[float, float] = (0.10, 0.25)    #: lids leave rest -> back at rest
    blink_min_gap_s: float = 0.4                        #: shortest time between two blink starts
    blink_peak: tuple[float, float] = (0.9, 1.0)        #: eyeBlink weight with the lids closed
    blink_close_share: float = 0.35                     #: share of a blink spent closing
    blink_closed_share: float = 0.15                    #: share spent closed (the rest: opening)
    floor_knee: float = 0.005                           #: weights below this bend softly towards 0
    saturation_knee: float = 0.1                        #: weights above 1 - this bend softly towards 1

    def __post_init__(self) -> None:
        for name in ("lead_s", "onset_s", "hold_s", "offset_s", "ease_power", "tail_s", "onset_spread_s",
                     "release_spread_s", "overshoot", "damping", "settle_s", "micro_band_hz",
                     "rest_level", "rest_band_hz", "blink_rate_per_min", "blink_duration_s", "blink_peak"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"DynamicsConfig.{name} must be a range 0 <= lo <= hi, got {(lo, hi)}")
        if not (0 < self.damping[0] and self.damping[1] < 1):
            raise ValueError(f"DynamicsConfig.damping must lie in (0, 1) (an underdamped settle), "
                             f"got {self.damping}")
        if self.micro_band_hz[0] <= 0 or self.rest_band_hz[0] <= 0:
            raise ValueError("DynamicsConfig: frequency bands must be above 0 Hz")
        if self.noise_components < 1:
            raise ValueError("DynamicsConfig.noise_components must be at least 1")
        if not 0 < self.settle_tolerance < self.overshoot[0]:
            raise ValueError(f"DynamicsConfig.settle_tolerance must lie between 0 and the smallest "
                             f"overshoot {self.overshoot[0]}, got {self.settle_tolerance}")
        if self.blink_close_share + self.blink_closed_share >= 1 or min(self.blink_close_share,
                                                                        self.blink_closed_share) < 0:
            raise ValueError("DynamicsConfig: blink close + closed shares must be >= 0 and sum below 1")
        if not (0 < self.floor_knee and 0 < self.saturation_knee and self.floor_knee + self.saturation_knee < 1):
            raise ValueError("DynamicsConfig: floor_knee and saturation_knee must be > 0 and sum below 1")
        if self.blink_min_gap_s * self.blink_rate_per_min[1] / 60.0 >= 1:
            raise ValueError("DynamicsConfig.blink_min_gap_s is too long for the highest blink rate")


@dataclass(frozen=True)
class Performance:
    """What one v2 performance did. Frame fields as ``Timeline`` (``onset``: the
    first unit starts; ``apex``: the last unit peaks; ``settled``: every unit has
    settled on its apex; ``release``: the first unit releases; ``end``: the last
    unit is back at rest); per-unit times in seconds from frame 0."""

    n_frames: int
    onset: int
    apex: int
    settled: int
    release: int
    end: int
    units: tuple[int, ...]             #: the active units (ARKit indices)
    onset_s: tuple[float, ...]         #: each active unit's onset start
    release_s: tuple[float, ...]       #: each active unit's release start
    rise_s: float                      #: each unit's rise time, onset start -> peak
    fall_s: float                      #: each unit's release time, release start -> rest
    overshoot: float                   #: peak above the apex, relative
    settle_s: float                    #: peak -> settled
    blinks_s: tuple[tuple[float, float], ...]  #: (start, duration) of each blink


def band_noise(t: np.ndarray, n: int, band_hz: tuple[float, float], rms: float, components: int,
               rng: np.random.Generator) -> np.ndarray:
    """``n`` band-limited signals ``float64 [T, n]`` at times ``t [T]`` (seconds):
    each a sum of ``components`` sinusoids with frequencies drawn in ``band_hz``
    and random phases, scaled to the expected RMS ``rms``. A function of time,
    not of frames: the same draws give the same curve at any frame rate."""
    freq = rng.uniform(*band_hz, size=(components, n))
    phase = rng.uniform(0.0, 2 * np.pi, size=(components, n))
    waves = np.sin(2 * np.pi * freq[None] * t[:, None, None] + phase[None])   # [T, K, n]
    return waves.sum(axis=1) * (rms / np.sqrt(components / 2.0))


def soft_limit(w: np.ndarray, floor_knee: float, saturation_knee: float) -> np.ndarray:
    """``w [...]`` mapped smoothly into the open interval (0, 1): unchanged between
    ``floor_knee`` and ``1 - saturation_knee``; below, ``k e^(w/k - 1)`` (k the
    floor knee); above, ``1 - k e^((1 - k - w)/k)`` (k the saturation knee).
    Continuous with slope 1 at both knees and strictly increasing."""
    lo, hi = floor_knee, 1.0 - saturation_knee
    below = lo * np.exp(np.minimum(w, lo) / lo - 1.0)
    above = 1.0 - saturation_knee * np.exp((hi - np.maximum(w, hi)) / saturation_knee)
    return np.where(w < lo, below, np.where(w > hi, above, w))


def damped_settle(tau: np.ndarray, overshoot: float, damping: float, settle_s: float,
                  tolerance: float) -> np.ndarray:
    """Relative level ``[...]`` after the peak at ``tau`` seconds (``tau >= 0``):
    ``1 + A e^(-a tau) (cos(w tau) + (a / w) sin(w tau))``, the transient of an
    underdamped second-order response of damping ratio ``damping``. It starts at
    ``1 + overshoot`` with zero slope (a smooth peak), swings below 1 once, and
    its envelope is within ``tolerance`` of 1 from ``settle_s`` on."""
    root = np.sqrt(1.0 - damping ** 2)
    envelope0 = overshoot / root                       # the envelope's start, A * sqrt(1 + (a/w)^2)
    alpha = max(np.log(envelope0 / tolerance), 0.0) / settle_s
    omega = alpha * root / damping
    tau = np.maximum(tau, 0.0)
    decay = np.exp(-alpha * tau)
    return 1.0 + overshoot * decay * (np.cos(omega * tau) + (alpha / omega) * np.sin(omega * tau))


def _spread(n: int, spread: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` offsets ``[n]`` (seconds) whose first is 0 and last ``spread`` (all 0 if ``n == 1``)."""
    x = rng.uniform(0.0, 1.0, size=n)
    if n < 2:
        return np.zeros(n)
    return (x - x.min()) / (x.max() - x.min()) * spread


def blink_times(duration_s: float, cfg: DynamicsConfig, rng: np.random.Generator) -> tuple[tuple[float, float], ...]:
    """``(start, length)`` seconds of the spontaneous blinks in ``duration_s``: a
    renewal process at a rate drawn from ``cfg.blink_rate_per_min`` whose gaps are
    ``blink_min_gap_s`` plus an exponential (so the mean gap is 60 / rate s),
    started at a random phase."""
    mean_gap = 60.0 / rng.uniform(*cfg.blink_rate_per_min)
    scale = mean_gap - cfg.blink_min_gap_s

    def gap() -> float:
        return cfg.blink_min_gap_s + rng.exponential(scale)

    t = -rng.uniform(0.0, 1.0) * gap()
    out = []
    while True:
        t += gap()
        if t >= duration_s:
            return tuple(out)
        if t >= 0.0:
            out.append((float(t), float(rng.uniform(*cfg.blink_duration_s))))


def blink_curve(t: np.ndarray, blinks: tuple[tuple[float, float], ...], peak: float,
                cfg: DynamicsConfig) -> np.ndarray:
    """The eyeBlink weight ``[T]`` at times ``t [T]``: each blink closes the lids
    (sine ease to ``peak``), holds them closed, opens them more slowly."""
    out = np.zeros_like(t)
    for start, length in blinks:
        close = cfg.blink_close_share * length
        closed = cfg.blink_closed_share * length
        opening = length - close - closed
        u = t - start
        up = _ease(u / close, EASE_SINE, 1.0)
        down = _ease((u - close - closed) / opening, EASE_SINE, 1.0)
        out = np.maximum(out, peak * np.where(u < close + closed, up, 1.0 - down) * (u >= 0))
    return out


def performance_weights(label: str, fps: float, rng: np.random.Generator,
                        cfg: DynamicsConfig = DynamicsConfig()) -> tuple[np.ndarray, Performance]:
    """ARKit weights ``float32 [T, 52]`` in [0, 1] of one v2 performance of
    ``label`` at ``fps``, and what it did (see the block comment above)."""
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    apex, _ = apex_weights(label, rng)
    units = np.flatnonzero(apex > 0.0)
    lead = rng.uniform(*cfg.lead_s)
    rise, fall = rng.uniform(*cfg.onset_s), rng.uniform(*cfg.offset_s)
    starts = lead + _spread(len(units), rng.uniform(*cfg.onset_spread_s), rng)
    peaks = starts + rise
    release0 = peaks.max() + rng.uniform(*cfg.hold_s)
    releases = release0 + _spread(len(units), rng.uniform(*cfg.release_spread_s), rng)
    ends = releases + fall
    total = ends.max() + rng.uniform(*cfg.tail_s)
    n_frames = int(round(total * fps)) + 1
    t = np.arange(n_frames, dtype=np.float64) / fps

    overshoot, damping, settle = (rng.uniform(*r) for r in (cfg.overshoot, cfg.damping, cfg.settle_s))
    kind_on, kind_off = rng.integers(0, EASE_KINDS, size=2)
    p_on, p_off = rng.uniform(*cfg.ease_power, size=2)
    tu = t[:, None]
    up = np.where(tu < peaks, (1.0 + overshoot) * _ease((tu - starts) / rise, kind_on, p_on),
                  damped_settle(tu - peaks, overshoot, damping, settle, cfg.settle_tolerance))
    down = 1.0 - _ease((tu - releases) / fall, kind_off, p_off)
    micro = band_noise(t, len(units), cfg.micro_band_hz, cfg.micro_rms, cfg.noise_components, rng)
    active = apex[units] * up * down * (1.0 + micro)                                    # [T, U]

    rest = rng.uniform(*cfg.rest_level, size=N_EXPRESSION)
    weights = rest + band_noise(t, N_EXPRESSION, cfg.rest_band_hz, cfg.rest_rms, cfg.noise_components, rng)
    weights[:, units] += active
    blinks = blink_times(total, cfg, rng)
    lids = blink_curve(t, blinks, rng.uniform(*cfg.blink_peak), cfg)
    for unit in BLINK_UNITS:
        weights[:, unit] = np.maximum(weights[:, unit], lids)

    def frame(seconds: float) -> int:
        return int(round(seconds * fps))

    perf = Performance(
        n_frames=n_frames, onset=frame(starts.min()), apex=frame(peaks.max()),
        settled=frame(peaks.max() + settle), release=frame(releases.min()), end=frame(ends.max()),
        units=tuple(int(u) for u in units), onset_s=tuple(float(s) for s in starts),
        release_s=tuple(float(s) for s in releases), rise_s=float(rise), fall_s=float(fall),
        overshoot=float(overshoot), settle_s=float(settle), blinks_s=blinks)
    weights = soft_limit(weights, cfg.floor_knee, cfg.saturation_knee)
    # ARKit's mouthClose closes the lips of an open jaw: never more than jawOpen opened them
    weights[:, MOUTH_CLOSE] = np.minimum(weights[:, MOUTH_CLOSE], weights[:, JAW_OPEN])
    return np.clip(weights, 0.0, 1.0).astype(np.float32), perf           # clip: float32 rounding only
