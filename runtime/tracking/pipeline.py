"""Live tracking as stages: source -> detect -> landmarks -> fit -> cascade -> filter -> sink.

Each stage is a function of its inputs and the ``TrackState`` it may update;
``Tracker.process`` chains them for one frame and times each (``ms``), so a
benchmark, a test or the runtime source can run, replace or measure any one
of them.

- ``detect``: dlib's HOG detector, only when the track is lost or every
  ``detect_every`` frames (it is the slow stage, ~20-100 ms); between
  detections the box comes from the previous frame's landmarks.
- ``landmarks``: dlib's 68-point predictor in that box (under a millisecond).
- ``fit``: the bilinear model's landmark fitting (``models.tracking.fit``),
  warm-started from the previous frame's fit, with the identity frozen once
  the track has been confident for ``freeze_after`` frames (the mean of those
  frames' identities).
- ``cascade``: the trained regression stages (``models.tracking.cascade``),
  when a cascade is given.
- ``filter``: a One Euro filter on the expression coefficients and the pose
  (yaw, pitch, roll, scale, translation).
- ``sink``: the mesh (model space, metres: the face without the head pose),
  its ARKit weights, and the pose as metadata.

A frame with no usable face (no detection, two faces of which none
continues the track, a black frame, a read error) gives a ``TrackedFrame``
that holds the last good mesh and says why (``status`` "held",
``problem``); nothing raises.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from models.tracking.camera import Pose, rotation_from_euler
from models.tracking.fit import Fit, LandmarkFitter
from runtime.tracking.frames import BLACK_FRAME, is_black

#: a fit whose RMS landmark residual exceeds this share of the inter-ocular distance loses the track
LOST_RESIDUAL = 0.15


@dataclass(frozen=True)
class TrackerConfig:
    detect_every: int = 10          #: re-detect at least this often (frames), even when tracking
    upsample: int = 0               #: dlib detector upsampling (0: fastest; faces above ~80 px)
    freeze_after: int = 15          #: confident frames before the identity freezes (0: never)
    fit_iterations: int = 2         #: landmark fitting rounds per frame when warm-started
    min_cutoff: float = 1.0         #: One Euro filter: Hz for a still face (MediaPipe's faces use 0.05 ...
    beta: float = 0.5               #: ... and beta 80 in face sizes per second; ours: per unit of ``smooth``)
    d_cutoff: float = 1.0


@dataclass
class TrackState:
    """What the tracker carries from one frame to the next."""

    box: tuple[int, int, int, int] | None = None
    since_detect: int = 0
    detected: tuple[int, int, int, int] | None = None   #: the detector's last box ...
    anchor: np.ndarray | None = None                    #: ... and its landmarks' centre x, y and spread
    fit: Fit | None = None
    identity: np.ndarray | None = None           #: frozen identity
    confident: list[np.ndarray] = field(default_factory=list)
    filter: object | None = None
    units: np.ndarray | None = None               #: the filter's unit per dimension
    id_core: np.ndarray | None = None             #: the frozen identity's expression basis [exp, 3N]
    last: "TrackedFrame | None" = None


@dataclass(frozen=True)
class TrackedFrame:
    """One tracked frame: ``mesh [N, 3]`` (model space), ``weights [52]``, ``pose`` (yaw, pitch,
    roll in degrees), ``landmarks [68, 2]`` (the detector's, pixels), ``status`` ("tracking",
    "held" or "none": nothing tracked yet) and ``problem`` (why it is held)."""

    t: float
    mesh: np.ndarray | None
    weights: np.ndarray | None
    pose: tuple[float, float, float] | None
    landmarks: np.ndarray | None
    status: str
    problem: str | None = None
    ms: dict = field(default_factory=dict)


# ---- stages --------------------------------------------------------------------------------------

def detect(detector, image: np.ndarray, state: TrackState, cfg: TrackerConfig) -> str | None:
    """Update ``state.box`` (detection when lost or due); the problem, if any."""
    due = state.box is None or state.since_detect >= cfg.detect_every
    if not due:
        state.since_detect += 1
        return None
    faces = detector.detect(image, upsample=cfg.upsample)
    state.since_detect = 0
    if not faces:
        state.box = None
        return "no face found"
    if len(faces) > 1 and state.box is not None:                       # keep the face that continues the track
        prev = np.array(state.box, float)
        faces = sorted(faces, key=lambda f: np.abs(np.array(f.box, float) - prev).sum())
    state.box = faces[0].box
    return None


def landmarks(predictor, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """68 landmarks ``[68, 2]`` (pixels) in ``box``."""
    return predictor.landmarks(image, box)


def box_following(detected: tuple[int, int, int, int], anchor: np.ndarray, lm: np.ndarray,
                  shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The next frame's box: the detector's last box, moved and scaled as the landmarks moved since
    (``anchor`` = their centre and spread on the detection frame). The predictor was trained on
    detector boxes, so a box drawn around the landmarks themselves would shift them frame to
    frame; on a still face this box does not move at all."""
    centre, spread = lm.mean(axis=0), lm.std(axis=0).mean()
    k = spread / max(anchor[2], 1e-6)
    left, top, right, bottom = np.asarray(detected, float)
    c0 = np.array([(left + right) / 2, (top + bottom) / 2])
    half = np.array([(right - left) / 2, (bottom - top) / 2]) * k
    c = c0 + centre - anchor[:2]
    h, w = shape[:2]
    lo = np.clip(np.round(c - half), 0, [w - 1, h - 1]).astype(int)
    hi = np.clip(np.round(c + half), 0, [w - 1, h - 1]).astype(int)
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def fit(fitter: LandmarkFitter, lm: np.ndarray, state: TrackState, cfg: TrackerConfig) -> Fit:
    """Landmark fitting, warm-started and with the frozen identity once there is one."""
    if state.fit is None:
        return fitter.fit(lm, identity=state.identity)
    return fitter.fit(lm, init=state.fit, identity=state.identity, iterations=cfg.fit_iterations)


def refine(cascade, image: np.ndarray, f: Fit, lm: np.ndarray, state: TrackState) -> Fit:
    """The cascade's stages after the fit (none when no cascade is trained)."""
    if cascade is None or cascade.trained_stages == 0:
        return f
    return cascade.refine(image, f, lm, freeze_identity=state.identity is not None)[-1]


def confident(f: Fit, lm: np.ndarray) -> bool:
    """Whether a fit explains its landmarks well enough to keep the track."""
    iod = np.linalg.norm(lm[36:42].mean(axis=0) - lm[42:48].mean(axis=0))
    return bool(np.isfinite(f.rms_px) and f.rms_px < LOST_RESIDUAL * max(iod, 1.0))


def smooth(fitter: LandmarkFitter, f: Fit, t: float, state: TrackState, cfg: TrackerConfig
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Euro filtering of ``[expression, yaw, pitch, roll, scale, tx, ty]``; returns
    ``(identity, expression, pose vector)``."""
    from runtime.tracking.filters import OneEuroFilter

    x = np.concatenate([f.expression, f.pose.euler, [f.pose.scale], f.pose.translation])
    if state.filter is None:
        state.filter = OneEuroFilter(min_cutoff=cfg.min_cutoff, beta=cfg.beta, d_cutoff=cfg.d_cutoff)
        # one unit per dimension, so one beta fits all: the expression prior's spread, 3 degrees,
        # 2 % of the face's scale, 2 pixels
        state.units = np.concatenate([np.sqrt(fitter.model.exp_var), np.full(3, np.radians(3.0)),
                                      [0.02 * f.pose.scale], [2.0, 2.0]])
    y = state.filter(x / state.units, t) * state.units
    n = len(f.expression)
    return f.identity, y[:n], y[n:]


def sink(fitter: LandmarkFitter, a: np.ndarray, b: np.ndarray, pose: np.ndarray, lm: np.ndarray,
         t: float, ms: dict, state: TrackState | None = None) -> TrackedFrame:
    """The frame the runtime streams. With a frozen identity its expression basis (``Cr x2 a``,
    kept in ``state``) makes the mesh a small product instead of a pass over the whole core."""
    if state is not None and state.identity is not None and np.array_equal(a, state.identity):
        if state.id_core is None:
            state.id_core = fitter.model.identity_core(a).reshape(len(b), -1)
        mesh = (b.astype(np.float32) @ state.id_core).reshape(-1, 3)
    else:
        mesh = fitter.model.mesh(a, b).astype(np.float32)
    weights = fitter.model.blendshapes(fitter.model.gauge(a, b)[1])        # the map reads the canonical gauge
    return TrackedFrame(t, mesh, weights, tuple(float(np.degrees(v)) for v in pose[:3]), lm, "tracking", None, ms)


def posed(pose: np.ndarray) -> Pose:
    """A pose vector ``[yaw, pitch, roll, scale, tx, ty]`` as a camera ``Pose``."""
    return Pose(rotation_from_euler(*pose[:3]), float(pose[3]), np.asarray(pose[4:6]))


# ---- the chain -----------------------------------------------------------------------------------

class Tracker:
    """The stages chained for one frame at a time (``process``); stateful between frames."""

    def __init__(self, fitter: LandmarkFitter, dlib68, cascade=None, config: TrackerConfig = TrackerConfig()):
        self.fitter = fitter
        self.dlib68 = dlib68
        self.cascade = cascade
        self.config = config
        self.state = TrackState()

    def held(self, t: float, problem: str, ms: dict) -> TrackedFrame:
        """The last good frame again, saying why."""
        last = self.state.last
        self.state.fit = None
        self.state.filter = None
        if last is None:
            return TrackedFrame(t, None, None, None, None, "none", problem, ms)
        return TrackedFrame(t, last.mesh, last.weights, last.pose, None, "held", problem, ms)

    def process(self, image: np.ndarray | None, t: float, problem: str | None = None) -> TrackedFrame:
        """Track one frame (``image`` uint8 ``[H, W, 3]`` RGB, or None with the reader's ``problem``)."""
        cfg, st, ms = self.config, self.state, {}
        if image is None:
            return self.held(t, problem or "no image", ms)
        if problem is None and is_black(image):
            problem = BLACK_FRAME                                  # an image that did not come through a reader
        if problem is not None:
            st.box = None
            return self.held(t, problem, ms)
        t0 = time.perf_counter()
        why = detect(self.dlib68, image, st, cfg)
        ms["detect"] = (time.perf_counter() - t0) * 1e3
        if why is not None:
            return self.held(t, why, ms)
        t0 = time.perf_counter()
        lm = landmarks(self.dlib68, image, st.box)
        ms["landmarks"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        f = fit(self.fitter, lm, st, cfg)
        ms["fit"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        f = refine(self.cascade, image, f, lm, st)
        ms["cascade"] = (time.perf_counter() - t0) * 1e3
        if not confident(f, lm):
            st.box = None                                              # detect again next frame
            return self.held(t, f"lost the face (landmark residual {f.rms_px:.1f} px)", ms)
        st.fit = f
        if st.since_detect == 0:                                       # this frame's box came from the detector
            st.detected = st.box
            st.anchor = np.array([*lm.mean(axis=0), lm.std(axis=0).mean()])
        st.box = box_following(st.detected, st.anchor, lm, image.shape)
        if cfg.freeze_after and st.identity is None:
            st.confident.append(self.fitter.model.canonical(f.identity, f.expression)[0])   # one gauge and size
            if len(st.confident) >= cfg.freeze_after:
                st.identity = np.mean(st.confident, axis=0)
        t0 = time.perf_counter()
        a, b, pose = smooth(self.fitter, f, t, st, cfg)
        ms["filter"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        out = sink(self.fitter, a, b, pose, lm, t, ms, st)
        ms["sink"] = (time.perf_counter() - t0) * 1e3
        st.last = out
        return out
