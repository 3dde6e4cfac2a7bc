"""Stream sources: what a session shows at each media time, sans I/O.

A source's ``step(t)`` returns a ``Pose``: the identity, the motion and how
far along it (``progress`` 0 = neutral, 1 = apex), and when two motions are
being blended, the second one and the blend weight ``tau``. The engine turns
poses into meshes (baked clip or live S2D-Dec decode, see
``runtime.animation``). A source that already has a mesh (tracking, issue 9)
sets ``mesh``; one that has landmarks to decode (transfer) sets ``target``.
``step`` returns None when the stream has ended.

Sources here:
    generate   one label: neutral -> apex -> hold -> neutral, once or looped;
               ``set`` of another label blends to it along the sphere's geodesic
    playlist   a timed list of labels, each blending into the next at its apex
    neutral    another stream's faces, neutralized frame by frame
    transfer   another stream's expression on a chosen identity
    track      a camera, video or image folder tracked live (``runtime.tracking.source``)

The last two follow another stream (``FollowSource``): they have no pose of
their own; the engine computes their meshes after the streams they follow,
all of a tick's together per method (``Engine._derive``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from models.motion3dgan import progress_at
from runtime.animation import AnimationError, Animator, ClipSpec, Identity, MotionRef

#: fractions of a generate clip spent rising to the apex, holding it, and returning
ONSET, HOLD, OFFSET = 0.3, 0.3, 0.3
DEFAULT_DURATION = 3.0        #: seconds of a generate clip
DEFAULT_ITEM = 2.5            #: seconds of a playlist item
DEFAULT_BLEND = 0.5           #: seconds of a geodesic blend between two motions
DURATION_RANGE = (0.5, 600.0)


@dataclass(frozen=True)
class Pose:
    """What to show at one media time."""

    identity: Identity
    motion: MotionRef | None = None     #: None: the neutral face
    progress: float = 0.0               #: along ``motion``: 0 neutral, 1 apex
    to: MotionRef | None = None         #: blending towards this motion ...
    tau: float = 0.0                    #: ... this far (0..1), along the sphere's geodesic
    label: str | None = None
    mesh: np.ndarray | None = None      #: [N, 3] when the source has the mesh itself
    target: np.ndarray | None = None    #: [68, 3] landmarks to decode on ``identity``
    weights: np.ndarray | None = None   #: [52] ARKit blendshape weights when the source knows them
    meta: dict | None = None            #: source-specific frame metadata (``track``: status, problem, head pose)


class Source(ABC):
    """The interface every stream source implements."""

    kind: str = ""

    @abstractmethod
    def step(self, t: float) -> Pose | None:
        """The pose at media time ``t`` (s); None when the stream has ended."""

    def set(self, t: float, args: dict) -> None:
        """Change what the source shows from media time ``t`` (``AnimationError`` if it cannot)."""
        raise AnimationError(f"a {self.kind} stream has nothing to set")

    def wanted(self) -> list[ClipSpec]:
        """Clips worth baking ahead, most urgent first."""
        return []

    def first(self) -> list[ClipSpec]:
        """Clips that must be baked before the stream starts (it shows its neutral until then)."""
        return []

    def describe(self) -> dict:
        return {}

    def close(self) -> None:
        """Release what the source holds (a camera, a thread); called when its stream ends."""


def check_duration(value, what: str) -> float:
    lo, hi = DURATION_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise AnimationError(f"{what} must be a number of seconds in {lo}..{hi}, got {value!r}")
    return float(value)


def check_blend(value, shortest: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= shortest / 2:
        raise AnimationError(f"blend must be seconds in 0..{shortest / 2:g} (half the shortest clip), got {value!r}")
    return float(value)


class GenerateSource(Source):
    """One expression label: a Motion3DGAN sample played neutral -> apex -> hold
    -> neutral over ``duration`` seconds, once (then the stream ends) or looped.

    ``set({"label": ...})`` samples the new label's motion and blends to it
    over ``blend`` seconds along the sphere's geodesic while the clip plays on;
    ``set({"identity": ...})`` switches the face (the identity object is made
    by the engine).
    """

    kind = "generate"

    def __init__(self, animator: Animator, identity: Identity, label: str, seed: int,
                 duration: float = DEFAULT_DURATION, loop: bool = False, blend: float = DEFAULT_BLEND) -> None:
        self.animator = animator
        self.identity = identity
        self.duration = check_duration(duration, "duration")
        self.blend = check_blend(blend, self.duration)
        self.loop = bool(loop)
        self.seed = seed
        self.motion = animator.motion(label, seed)
        self._next: MotionRef | None = None
        self._blend_from = 0.0

    def _progress(self, t: float) -> float:
        d = self.duration
        u = t % d if self.loop else t
        return progress_at(u, ONSET * d, HOLD * d, OFFSET * d)

    def step(self, t: float) -> Pose | None:
        if not self.loop and t >= self.duration:
            return None
        p = self._progress(t)
        if self._next is not None:
            tau = 1.0 if self.blend == 0 else (t - self._blend_from) / self.blend
            if tau >= 1.0:
                self.motion, self._next = self._next, None
            else:
                label = self._next.label if tau >= 0.5 else self.motion.label
                return Pose(self.identity, self.motion, p, self._next, max(tau, 0.0), label)
        return Pose(self.identity, self.motion, p, label=self.motion.label)

    def set(self, t: float, args: dict) -> None:
        if "identity" in args:
            self.identity = args["identity"]
        if "label" in args:
            self.seed += 1
            new = self.animator.motion(args["label"], self.seed)
            if self._next is not None:                     # a blend in progress: continue from where it got
                self.motion = self._next
            self._next, self._blend_from = new, t

    def wanted(self) -> list[ClipSpec]:
        return [ClipSpec(self.identity, m) for m in (self._next, self.motion) if m is not None]

    def first(self) -> list[ClipSpec]:
        return [ClipSpec(self.identity, self.motion)]

    def describe(self) -> dict:
        return {"label": (self._next or self.motion).label, "duration": self.duration, "loop": self.loop,
                "identity": self.identity.key}


class PlaylistSource(Source):
    """A timed list of labels. Each item rises from neutral (or arrives from the
    previous item's blend at its apex), holds, and either blends into the next
    item over its last ``blend`` seconds, at the apex, along the sphere's
    geodesic, or (``blend`` 0, or the end of a list that does not loop)
    returns to neutral."""

    kind = "playlist"

    def __init__(self, animator: Animator, identity: Identity, items: list[tuple[str, float]], seed: int,
                 loop: bool = False, blend: float = DEFAULT_BLEND) -> None:
        if not items:
            raise AnimationError("a playlist needs at least one item")
        self.animator = animator
        self.identity = identity
        self.items = [(label, check_duration(d, f"item {i} duration")) for i, (label, d) in enumerate(items)]
        self.blend = check_blend(blend, min(d for _, d in self.items))
        self.loop = bool(loop)
        self.motions = [animator.motion(label, seed + i) for i, (label, _) in enumerate(self.items)]
        self.starts = np.concatenate([[0.0], np.cumsum([d for _, d in self.items])])
        self.total = float(self.starts[-1])

    def locate(self, t: float) -> tuple[int, float, bool] | None:
        """(item, time into it, first pass) at media time ``t``; None past the end of a non-looping list."""
        if t >= self.total and not self.loop:
            return None
        u = t % self.total
        k = int(np.searchsorted(self.starts, u, side="right")) - 1
        k = min(k, len(self.items) - 1)
        return k, u - float(self.starts[k]), t < self.total

    def step(self, t: float) -> Pose | None:
        where = self.locate(t)
        if where is None:
            return None
        k, s, first_pass = where
        last = len(self.items) - 1
        d = self.items[k][1]
        blend_in = self.blend > 0 and (k > 0 or (self.loop and not first_pass))
        blend_out = self.blend > 0 and (k < last or self.loop)
        onset = 0.0 if blend_in else ONSET * d
        offset = 0.0 if blend_out else OFFSET * d
        hold = d if blend_out else max(0.0, (ONSET + HOLD + OFFSET) * d - onset - offset)   # then neutral
        p = progress_at(s, onset, hold, offset)
        motion = self.motions[k]
        if blend_out and s > d - self.blend:
            nxt = self.motions[(k + 1) % len(self.items)]
            tau = (s - (d - self.blend)) / self.blend
            return Pose(self.identity, motion, p, nxt, tau, nxt.label if tau >= 0.5 else motion.label)
        return Pose(self.identity, motion, p, label=motion.label)

    def set(self, t: float, args: dict) -> None:
        if "label" in args:
            raise AnimationError("a playlist's labels are fixed; close it and open another")
        if "identity" in args:
            self.identity = args["identity"]

    def wanted(self) -> list[ClipSpec]:
        n = len(self.motions)
        clips = []
        for k, m in enumerate(self.motions):        # in play order: item, its transition, next item ...
            clips.append(ClipSpec(self.identity, m))
            if self.blend > 0 and (k < n - 1 or self.loop):
                clips.append(ClipSpec(self.identity, m, self.motions[(k + 1) % n]))
        return clips

    def first(self) -> list[ClipSpec]:
        return [ClipSpec(self.identity, self.motions[0])]

    def describe(self) -> dict:
        return {"items": [list(i) for i in self.items], "blend": self.blend, "loop": self.loop,
                "identity": self.identity.key}


class FollowSource(Source):
    """A stream made from another stream's frames (``follow``: its id), with a method."""

    def __init__(self, follow: str, method: str) -> None:
        self.follow = follow
        self.method = method

    def step(self, t: float) -> Pose | None:
        raise AnimationError(f"a {self.kind} stream has no pose of its own; the engine derives its frames")

    def describe(self) -> dict:
        return {"of": self.follow, "method": self.method}


class NeutralSource(FollowSource):
    """The followed stream's faces, each replaced by its neutral (``models.neutral``)."""

    kind = "neutral"


class TransferSource(FollowSource):
    """The followed stream's expression on ``identity``: by its landmark motion
    decoded by S2D-Dec (``method`` "s2d"), or by a latent swap through the
    PointNet VAE ("vae"). ``set({"identity": ...})`` changes the face."""

    kind = "transfer"

    def __init__(self, follow: str, method: str, identity: Identity) -> None:
        super().__init__(follow, method)
        self.identity = identity

    def set(self, t: float, args: dict) -> None:
        if set(args) - {"identity"}:
            raise AnimationError("a transfer stream can only set its 'identity'")
        self.identity = args["identity"]

    def describe(self) -> dict:
        return {**super().describe(), "identity": self.identity.key}
