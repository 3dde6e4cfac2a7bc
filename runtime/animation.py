"""Identities, motions, and the clip cache that lets the engine bake, sans I/O.

A generated clip is known ahead of time, so the engine works like a game
engine with animation clips (see ../shared/ARCHITECTURE.md, "why the engine
bakes"): for each (identity, motion) it decodes the motion's 30 keyframes
once with S2D-Dec (keyframe 0 is the identity's own neutral), keeps them in
an LRU cache, and per frame only interpolates two decoded keyframes. Baking
is spread over ticks (a few rows per tick, inside the tick's one batched
forward) so opening a stream never stalls the others.

What is not a baked clip is decoded live, one row per frame in the tick's
batched forward: geodesic blends between two motions (a label change
mid-stream, playlist transitions), clips whose bake has not finished, and
streams opened in ``live`` mode.

Shapes: meshes ``float32 [N, 3]`` metres; landmark sets ``float32 [68, 3]``;
trajectories ``[T + 1, 68, 3]`` (neutral first, apex last); baked clips
``[T + 1, N, 3]``.
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from models import motion3dgan
from models.face import N_IDENTITY, SynthFace, population_identity
from models.motion3dgan import Motion, Motion3DGAN

#: largest SynthFace population index a client may ask for
MAX_IDENTITY_INDEX = 1_000_000
#: an uploaded neutral mesh must lie within this distance of the origin (metres)
MAX_MESH_EXTENT = 10.0
#: identity parameters are clipped to this many standard deviations (as the population prior)
MAX_IDENTITY_SIGMA = 3.0


class AnimationError(ValueError):
    """A bad identity, label or motion request; the message says what and why."""


@dataclass(frozen=True, eq=False)
class Identity:
    """A face to animate: its neutral mesh and landmarks, and a cache key."""

    key: str
    neutral: np.ndarray      #: float32 [N, 3]
    landmarks: np.ndarray    #: float32 [68, 3]


def make_identity(spec, face: SynthFace) -> Identity:
    """An identity from a control-message value.

    ``None`` or an int ``i``: population member ``i`` (``{"index": i}`` too);
    ``{"params": [35 numbers]}``: SynthFace identity parameters;
    ``{"mesh": ...}``: a neutral mesh on the runtime's topology, as raw
    little-endian float32 bytes, a base64 string of those bytes, or a nested
    ``[N, 3]`` list (metres).
    """
    if spec is None:
        spec = 0
    if isinstance(spec, bool):
        raise AnimationError("identity must be an index, {\"index\"}, {\"params\"} or {\"mesh\"}, not a boolean")
    if isinstance(spec, int):
        spec = {"index": spec}
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in ("index", "params", "mesh"):
        raise AnimationError("identity must be an index, or a map with one of 'index', 'params', 'mesh'")
    (kind, value), = spec.items()
    if kind == "index":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_IDENTITY_INDEX:
            raise AnimationError(f"identity index must be an integer in 0..{MAX_IDENTITY_INDEX}, got {value!r}")
        return _identity(f"synth:{value}", face.neutral(population_identity(value)[None])[0], face)
    if kind == "params":
        beta = _numbers(value, (N_IDENTITY,), "identity params")
        if np.abs(beta).max() > MAX_IDENTITY_SIGMA:
            raise AnimationError(f"identity params are standard deviations within +-{MAX_IDENTITY_SIGMA}")
        return _identity("params:" + _digest(beta), face.neutral(beta[None])[0], face)
    n = face.template.n_vertices
    if isinstance(value, str):
        try:
            value = base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise AnimationError(f"identity mesh: not base64 ({exc})") from exc
    if isinstance(value, (bytes, bytearray)):
        if len(value) != n * 12:
            raise AnimationError(f"identity mesh: {n} vertices as float32 are {n * 12} bytes, got {len(value)} "
                                 f"(it must be a neutral face on the runtime's topology)")
        mesh = np.frombuffer(bytes(value), dtype="<f4").reshape(n, 3).astype(np.float32)
    else:
        mesh = _numbers(value, (n, 3), "identity mesh")
    if not np.isfinite(mesh).all() or np.abs(mesh).max() > MAX_MESH_EXTENT:
        raise AnimationError(f"identity mesh: coordinates must be finite metres within {MAX_MESH_EXTENT} m")
    return _identity("mesh:" + _digest(mesh), mesh, face)


def _identity(key: str, neutral: np.ndarray, face: SynthFace) -> Identity:
    return Identity(key, neutral, face.landmarks(neutral[None])[0].astype(np.float32))


def _numbers(value, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as exc:
        raise AnimationError(f"{what}: expected numbers of shape {list(shape)} ({exc})") from exc
    if a.shape != shape:
        raise AnimationError(f"{what}: expected shape {list(shape)}, got {list(a.shape)}")
    if not np.isfinite(a).all():
        raise AnimationError(f"{what}: numbers must be finite")
    return a


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float32).tobytes()).hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class MotionRef:
    """One sampled motion (a single Motion3DGAN sample) and its cache key."""

    key: str
    label: str
    motion: Motion


def interpolate(keyframes: np.ndarray, progress: float) -> np.ndarray:
    """``[T + 1, ..., 3]`` keyframes equally spaced in progress -> the frame at ``progress`` in [0, 1]."""
    steps = keyframes.shape[0] - 1
    pos = min(max(float(progress), 0.0), 1.0) * steps
    lo = min(int(pos), steps - 1)
    w = np.float32(pos - lo)
    a, b = keyframes[lo], keyframes[lo + 1]
    return a + w * (b - a)


@dataclass(frozen=True, eq=False)
class ClipSpec:
    """A clip the engine can bake: one motion from neutral to apex (parameter:
    progress), or, with ``to``, the transition at the apex from ``motion`` to
    ``to`` along the sphere's geodesic (parameter: the blend weight tau)."""

    identity: Identity
    motion: MotionRef
    to: MotionRef | None = None

    @property
    def key(self) -> tuple[str, str]:
        m = self.motion.key if self.to is None else f"{self.motion.key}>{self.to.key}"
        return self.identity.key, m


@dataclass
class BakeJob:
    spec: ClipSpec
    rows: np.ndarray                       #: [T + 1, 68, 3] landmarks of the keyframes
    clip: np.ndarray                       #: [T + 1, N, 3], filled row by row
    next_row: int


@dataclass(frozen=True)
class BakeRow:
    key: tuple[str, str]
    row: int
    identity: Identity
    target: np.ndarray                     #: [68, 3] landmarks to decode


@dataclass
class Animator:
    """Motions, their landmark keyframes on each identity, and baked clips.

    ``cache_clips`` bounds the baked clips kept (LRU; about 1.9 MB each for a
    5k-vertex face); landmark keyframes and motions are small and bounded
    the same way.
    """

    model: Motion3DGAN
    cache_clips: int = 256
    _motions: OrderedDict = field(default_factory=OrderedDict)
    _rows: OrderedDict = field(default_factory=OrderedDict)
    _clips: OrderedDict = field(default_factory=OrderedDict)
    _jobs: OrderedDict = field(default_factory=OrderedDict)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.model.cfg.labels

    def check_label(self, label: str) -> str:
        """``label`` if the motion model knows it, else an ``AnimationError`` naming the known ones."""
        if label not in self.labels:
            raise AnimationError(f"unknown expression label {label[:64]!r}; known: {', '.join(self.labels)}")
        return label

    def motion(self, label: str, seed: int) -> MotionRef:
        """The motion of ``label`` drawn with ``seed`` (the same every time)."""
        self.check_label(label)
        key = f"{label}#{seed}"
        if key not in self._motions:
            self._motions[key] = MotionRef(key, label, motion3dgan.sample(self.model, label, 1, seed=seed))
        self._motions.move_to_end(key)
        _trim(self._motions, 4 * self.cache_clips)
        return self._motions[key]

    def landmarks(self, spec: ClipSpec) -> np.ndarray:
        """``[T + 1, 68, 3]`` metres: the landmark keyframes of a clip.

        A motion: neutral (exactly the identity's) to apex. A transition:
        the apex of the motion ``tau`` of the way from ``motion`` to ``to``,
        for ``tau`` equally spaced from 0 to 1.
        """
        key = spec.key
        if key not in self._rows:
            if spec.to is None:
                rows = self._apply(spec.motion.motion, spec.identity)[0]
                rows[0] = spec.identity.landmarks
            else:
                taus = torch.linspace(0.0, 1.0, spec.motion.motion.q.shape[1] + 1, dtype=torch.float32)
                mixed = motion3dgan.blend(spec.motion.motion, spec.to.motion, taus)
                rows = self._apply(mixed, spec.identity)[:, -1]
            self._rows[key] = rows
        self._rows.move_to_end(key)
        _trim(self._rows, 4 * self.cache_clips)
        return self._rows[key]

    def blended(self, identity: Identity, a: MotionRef, b: MotionRef, tau: float) -> np.ndarray:
        """``[T + 1, 68, 3]``: the keyframes of the motion ``tau`` of the way
        from ``a`` to ``b`` along the sphere's geodesic (not cached)."""
        rows = self._apply(motion3dgan.blend(a.motion, b.motion, float(tau)), identity)[0]
        rows[0] = identity.landmarks
        return rows

    @staticmethod
    def _apply(motion: Motion, identity: Identity) -> np.ndarray:
        with torch.no_grad():
            return motion3dgan.apply_motion(motion, torch.from_numpy(identity.landmarks)).numpy().astype(np.float32)

    # ---- baking -----------------------------------------------------------
    def clip(self, spec: ClipSpec) -> np.ndarray | None:
        """The baked clip ``[T + 1, N, 3]``, or None while it is not baked."""
        clip = self._clips.get(spec.key)
        if clip is not None:
            self._clips.move_to_end(spec.key)
        return clip

    def request(self, spec: ClipSpec) -> None:
        """Queue a bake of this clip (nothing if baked or queued)."""
        key = spec.key
        if key in self._clips or key in self._jobs:
            return
        rows = self.landmarks(spec)
        clip = np.empty((rows.shape[0],) + spec.identity.neutral.shape, dtype=np.float32)
        first = 0
        if spec.to is None:                  # a motion starts at the identity's own neutral
            clip[0] = spec.identity.neutral
            first = 1
        self._jobs[key] = BakeJob(spec, rows, clip, first)

    @property
    def pending_rows(self) -> int:
        return sum(j.clip.shape[0] - j.next_row for j in self._jobs.values())

    def take_rows(self, limit: int) -> list[BakeRow]:
        """Up to ``limit`` rows to decode this tick, oldest job first."""
        rows: list[BakeRow] = []
        for key, job in self._jobs.items():
            while job.next_row < job.clip.shape[0] and len(rows) < limit:
                rows.append(BakeRow(key, job.next_row, job.spec.identity, job.rows[job.next_row]))
                job.next_row += 1
            if len(rows) >= limit:
                break
        return rows

    def store(self, rows: list[BakeRow], meshes: np.ndarray) -> None:
        """Put decoded rows into their clips; a finished clip moves to the cache."""
        for row, mesh in zip(rows, meshes):
            job = self._jobs.get(row.key)
            if job is not None:
                job.clip[row.row] = mesh
        # rows are stored in the tick they were taken, so a job whose rows are
        # all taken is complete
        for key in [k for k, j in self._jobs.items() if j.next_row >= j.clip.shape[0]]:
            self._clips[key] = self._jobs.pop(key).clip
        _trim(self._clips, self.cache_clips)

    def cache_info(self) -> dict:
        return {"clips": len(self._clips), "clip_limit": self.cache_clips, "bake_jobs": len(self._jobs),
                "bake_rows_pending": self.pending_rows,
                "clip_mb": round(sum(c.nbytes for c in self._clips.values()) / 2 ** 20, 1)}


def _trim(cache: OrderedDict, limit: int) -> None:
    while len(cache) > limit:
        cache.popitem(last=False)
