"""A data folder as a frame source: ``facecast view DIR`` and ``facecast render
--sequence DIR`` play its sequences.

Each sequence (one subject performing one label) is a clip; frames are
read from the memory-mapped cache as they are shown, never all at once.
Every frame carries, as its scalar, each vertex's distance to its
subject's neutral mesh in millimetres (what the viewer's heat map shows).
``opener`` is this module's ``facecast.sources`` entry: it opens a folder
that holds a ``meta.json`` (or says why a folder an interrupted run left
cannot be played).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.constants import MM_PER_M
from runtime.frames import Clip, Frame, PlaybackSource, SourceError, Topology
from trainers.data.cache import INCOMPLETE_FILE, META_FILE, DataError, FaceData

SCALAR_NAME = "distance to neutral (mm)"


class DataSource(PlaybackSource):
    """Plays a data folder's sequences (one clip each), looping the selected one."""

    def __init__(self, data: FaceData) -> None:
        self.data = data
        self.topology = Topology.from_template(data.template)
        clips = [Clip(q.start, q.start + q.length, data.labels[q.label], data.subjects[q.subject])
                 for q in data.sequences]
        times = np.asarray(data.frame, dtype=np.float64) / data.fps
        super().__init__(str(data.root), clips, times, data.fps)
        self._ranges: dict[int, tuple[float, float]] = {}

    def __len__(self) -> int:
        return self.data.n_frames

    def frame(self, i: int) -> Frame:
        d = self.data
        vertices = np.asarray(d.vertices[i], dtype=np.float32)
        subject = int(d.subject[i])
        return Frame(vertices=vertices, topology=self.topology, t=float(self.times[i]), index=i,
                     scalar=self._distance(vertices, subject), scalar_name=SCALAR_NAME,
                     label=d.labels[int(d.label[i])], subject=d.subjects[subject])

    def scalar_range(self) -> tuple[float, float]:
        """0 to the largest distance to neutral over the selected sequence (mm)."""
        if self._clip not in self._ranges:
            c = self.clip
            subject = int(self.data.subject[c.start])
            v = np.asarray(self.data.vertices[c.start:c.stop], dtype=np.float32)
            top = float(self._distance(v, subject).max())
            self._ranges[self._clip] = (0.0, top if top > 0 else 1.0)
        return self._ranges[self._clip]

    def _distance(self, vertices: np.ndarray, subject: int) -> np.ndarray:
        neutral = np.asarray(self.data.neutral[subject], dtype=np.float32)
        return (np.linalg.norm(vertices - neutral, axis=-1) * MM_PER_M).astype(np.float32)


def opener(uri: str) -> DataSource | None:
    """``facecast.sources`` entry: a folder with ``meta.json`` becomes a ``DataSource``;
    an incomplete one (``incomplete.json``) is a ``SourceError`` naming it."""
    if "://" in uri:
        return None
    root = Path(uri)
    if not ((root / META_FILE).is_file() or (root / INCOMPLETE_FILE).is_file()):
        return None
    try:
        return DataSource(FaceData.open(root))
    except DataError as exc:
        raise SourceError(str(exc)) from exc
