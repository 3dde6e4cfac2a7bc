"""Frames and frame sources: what the viewer and ``facecast render`` draw.

A ``Frame`` is one mesh at one time: ``vertices float32 [N, 3]`` (metres) on
a ``Topology`` (faces, and the 68-landmark embedding when known), with
optional landmarks, a per-vertex scalar (e.g. an error in mm), a label and
a subject. A ``FrameSource`` hands out frames; a window does not read
files, it polls a source. Sources come from openers registered under the
``facecast.sources`` entry-point group: each opener is a callable
``opener(uri) -> FrameSource | None`` that returns None for a URI it does
not handle. ``open_source(uri)`` asks them in turn (the data-folder opener
lives in ``trainers.data.playback``, the ``.npz`` recording opener in
``clients.recording``; live ``tcp://`` / ``ws://`` streams register theirs
the same way).

Two ways to read a source:
    ``poll(clock)``  the frame to show at ``clock`` seconds of play time, or
                     None when the one on screen is still current (never blocks;
                     what a window calls once per refresh);
    ``frames()``     every frame of the current selection in order (what a
                     video writer iterates; finite for recordings).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from models.face import FaceTemplate, LandmarkEmbedding

__all__ = ["Clip", "Frame", "FrameSource", "LandmarkEmbedding", "PlaybackSource", "SourceError", "Topology",
           "open_source", "openers"]

SOURCES = "facecast.sources"
#: a frame is due when play time reaches its time within this (s): float sums of 1/fps
TIME_EPS = 1e-9


class SourceError(Exception):
    """A URI no source can open, or a source that cannot be read; the message names it."""


@dataclass(frozen=True, eq=False)
class Topology:
    """The connectivity frames share: ``faces int32 [F, 3]`` over ``n_vertices``,
    the landmark embedding when known, a display ``name`` and an ``id``."""

    faces: np.ndarray
    n_vertices: int
    landmarks: LandmarkEmbedding | None = None
    name: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        f = self.faces
        if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
            raise ValueError(f"topology {self.name!r}: faces must be [F, 3], got {f.shape}")
        if f.min() < 0 or f.max() >= self.n_vertices:
            raise ValueError(f"topology {self.name!r}: face indices outside 0..{self.n_vertices - 1}")

    @staticmethod
    def from_template(template: FaceTemplate) -> "Topology":
        return Topology(faces=template.faces, n_vertices=template.n_vertices, landmarks=template.landmarks,
                        name=template.name, id=template.topology_id)

    @property
    def key(self) -> str:
        """What GPU uploads are cached by: the id, or a hash of the faces."""
        if self.id:
            return self.id
        return hashlib.sha256(self.faces.astype(np.int32).tobytes()).hexdigest()[:16] + f":{self.n_vertices}"


@dataclass(frozen=True, eq=False)
class Frame:
    """One mesh at one time (metres, seconds)."""

    vertices: np.ndarray                  #: float32 [N, 3]
    topology: Topology
    t: float = 0.0                        #: media time (s)
    index: int = 0                        #: frame number in its source
    landmarks: np.ndarray | None = None   #: float32 [68, 3]; else from the topology's embedding
    scalar: np.ndarray | None = None      #: float32 [N], e.g. an error in mm
    scalar_name: str = ""                 #: what the scalar is, with its unit
    label: str | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        n = self.topology.n_vertices
        if self.vertices.shape != (n, 3):
            raise ValueError(f"frame vertices must be [{n}, 3] for topology {self.topology.name!r}, "
                             f"got {list(self.vertices.shape)}")
        if self.scalar is not None and self.scalar.shape != (n,):
            raise ValueError(f"frame scalar must be [{n}], got {list(self.scalar.shape)}")
        if self.landmarks is not None and self.landmarks.shape != (68, 3):
            raise ValueError(f"frame landmarks must be [68, 3], got {list(self.landmarks.shape)}")

    def landmark_points(self) -> np.ndarray | None:
        """The 68 landmarks: given, or evaluated from the topology's embedding (None if neither)."""
        if self.landmarks is not None:
            return self.landmarks
        if self.topology.landmarks is not None:
            return self.topology.landmarks.evaluate(self.vertices, self.topology.faces)
        return None


class FrameSource(ABC):
    """Where frames come from: a recording, a data folder, a live stream."""

    #: what the source shows (a path, a stream name)
    name: str = ""
    #: nominal frame rate (frames per second)
    fps: float = 60.0

    @abstractmethod
    def poll(self, clock: float) -> Frame | None:
        """The frame to show at ``clock`` seconds of play time, or None if the
        last one returned is still current. Never blocks."""

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """The frames of the current selection, in order."""

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def labels(self) -> list[str]:
        """Labels that ``select`` can switch to (empty when the source has none)."""
        return []

    def subjects(self) -> list[str]:
        """Subjects that ``select`` can switch to (empty when the source has none)."""
        return []

    def select(self, label: str | None = None, subject: str | None = None) -> None:
        """Show ``label`` (and/or ``subject``); play restarts at the next ``poll``."""
        if label is not None or subject is not None:
            raise SourceError(f"{self.name}: this source cannot switch label or subject")

    def current(self) -> dict:
        """What is selected now: ``{"label": ..., "subject": ...}`` (None when not applicable)."""
        return {"label": None, "subject": None}

    def scalar_range(self) -> tuple[float, float] | None:
        """The range of the frames' scalar over the current selection, when known."""
        return None

    def close(self) -> None:
        """Release what the source holds (files, sockets)."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class Clip:
    """A stretch of a playback source: frames ``start .. stop - 1``."""

    start: int
    stop: int
    label: str | None = None
    subject: str | None = None


class PlaybackSource(FrameSource):
    """A finite, indexable sequence of frames cut into clips (a recording's
    labels, a data folder's sequences), played in a loop.

    Subclasses give ``__len__``, ``frame(i)`` and ``times``; ``clips`` lists
    the clips (the whole source when there is no cut).
    """

    def __init__(self, name: str, clips: list[Clip], times: np.ndarray, fps: float) -> None:
        if not clips:
            raise SourceError(f"{name}: no frames to play")
        self.name = name
        self.clips = clips
        self.times = np.asarray(times, dtype=np.float64)
        self.fps = float(fps)
        self._clip = 0
        self._origin: float | None = None
        self._shown = -1

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def frame(self, i: int) -> Frame:
        """Frame ``i`` of the whole source."""

    # ------------------------------------------------------------------ play
    @property
    def clip(self) -> Clip:
        return self.clips[self._clip]

    def index_at(self, clock: float) -> int:
        """The frame of the current clip due at ``clock`` (looping)."""
        if self._origin is None:
            self._origin = clock
        c = self.clip
        t = self.times[c.start:c.stop] - self.times[c.start]
        period = t[-1] + 1.0 / self.fps
        k = int(np.searchsorted(t, (clock - self._origin) % period + TIME_EPS, side="right")) - 1
        return c.start + max(k, 0)

    def poll(self, clock: float) -> Frame | None:
        i = self.index_at(clock)
        if i == self._shown:
            return None
        self._shown = i
        return self.frame(i)

    def frames(self) -> Iterator[Frame]:
        c = self.clip
        for i in range(c.start, c.stop):
            yield self.frame(i)

    # ------------------------------------------------------------- selection
    def labels(self) -> list[str]:
        return _unique(c.label for c in self.clips if c.label is not None)

    def subjects(self) -> list[str]:
        return _unique(c.subject for c in self.clips if c.subject is not None)

    def current(self) -> dict:
        return {"label": self.clip.label, "subject": self.clip.subject}

    def select(self, label: str | None = None, subject: str | None = None) -> None:
        want_label = self.clip.label if label is None else label
        want_subject = self.clip.subject if subject is None else subject
        for name, value, known in (("label", label, self.labels()), ("subject", subject, self.subjects())):
            if value is not None and value not in known:
                raise SourceError(f"{self.name}: no {name} {value!r}; it has {', '.join(known) or 'none'}")
        exact = [i for i, c in enumerate(self.clips) if c.label == want_label and c.subject == want_subject]
        # a pair that does not exist: keep what was asked for explicitly, relax the other
        loose = [i for i, c in enumerate(self.clips)
                 if (label is None or c.label == label) and (subject is None or c.subject == subject)]
        self._clip = (exact or loose)[0]
        self._origin = None
        self._shown = -1


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


# ------------------------------------------------------------------- opening
Opener = Callable[[str], "FrameSource | None"]


def openers() -> list[tuple[str, Opener]]:
    """The registered openers ``(name, callable)``, by name."""
    found = []
    for ep in sorted(entry_points(group=SOURCES), key=lambda e: e.name):
        found.append((ep.name, ep.load()))
    return found


def open_source(uri: str, extra: list[tuple[str, Opener]] | None = None) -> FrameSource:
    """The source for ``uri`` from the first opener that takes it.

    ``extra`` openers are asked first (tests, embedding applications).

    Raises:
        SourceError: no opener takes ``uri`` (the message names it, and says
            when it is a path that does not exist), or the one that does
            cannot read it.
    """
    candidates = list(extra or []) + openers()
    if not candidates:
        raise SourceError("no frame sources are registered under 'facecast.sources'; install facecast "
                          "(make demo, or pip install -e .) so its entry points exist")
    for _, opener in candidates:
        source = opener(uri)
        if source is not None:
            return source
    if "://" not in uri and not Path(uri).exists():
        raise SourceError(f"{uri}: no such file or folder")
    names = ", ".join(name for name, _ in candidates)
    raise SourceError(f"{uri}: no frame source opens this (tried: {names}); expected a data folder "
                      f"(with meta.json), a .npz recording or a live tcp://HOST:PORT stream")
