"""Recordings: a stream of frames saved as one ``.npz`` file, and played back.

Format ``facecast-recording`` version 1 (``numpy.savez``, read with
``allow_pickle=False``; strings are unicode arrays):

====================  ==================  ==========================================
key                   array               meaning
====================  ==================  ==========================================
``format``            str                 ``"facecast-recording"``
``version``           int                 ``1``
``vertices``          float32 [T, N, 3]   every frame's mesh, metres
``faces``             int32 [F, 3]        triangles, counter-clockwise seen from outside
``t``                 float64 [T]         media time of each frame, seconds, non-decreasing
``landmarks``         float32 [T, 68, 3]  optional: the 68 iBUG landmarks per frame
``landmark_face_idx`` int32 [68]          optional: the topology's landmark embedding
``landmark_bary``     float32 [68, 3]     (both or neither)
``labels``            str [T]             optional: expression label per frame ("" = none)
``subjects``          str [T]             optional: subject per frame ("" = none)
``weights``           float32 [T, 52]     optional: ARKit blendshape weights
``scalar``            float32 [T, N]      optional: a per-vertex value (e.g. an error)
``scalar_name``       str                 optional: what it is, with its unit
``topology_name``     str                 optional: e.g. ``"synthface"``
``topology_id``       str                 optional: the template's topology id
``fps``               float               optional: nominal frame rate
``wall``              int64 [T]           optional: when the runtime sent each frame (Unix ns)
``seq``               int64 [T]           optional: each frame's ``seq`` in its live stream
====================  ==================  ==========================================

``save_recording`` writes one from frames (atomically, through
``replacing``: a kill at any moment leaves the previous file or the
complete new one), ``load_recording`` reads and checks one, and
``RecordingSource`` plays it (cut into clips where the label or subject
changes). ``opener`` is this module's ``facecast.sources``
entry: it opens any URI that ends in ``.npz``.
"""

from __future__ import annotations

import os
import secrets
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from runtime.frames import Clip, Frame, LandmarkEmbedding, PlaybackSource, SourceError, Topology

FORMAT = "facecast-recording"
VERSION = 1
SUFFIX = ".npz"


class RecordingError(SourceError):
    """A recording file that cannot be read; the message names it."""


@dataclass(frozen=True, eq=False)
class Recording:
    """A recording in memory (shapes as in the module docstring)."""

    vertices: np.ndarray
    topology: Topology
    t: np.ndarray
    landmarks: np.ndarray | None = None
    labels: np.ndarray | None = None
    subjects: np.ndarray | None = None
    weights: np.ndarray | None = None
    scalar: np.ndarray | None = None
    scalar_name: str = ""
    fps: float = 60.0
    wall: np.ndarray | None = None
    seq: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.vertices)


def recording_from_frames(frames: Iterable[Frame], fps: float = 60.0,
                          weights: np.ndarray | None = None) -> Recording:
    """Gather frames (one topology) into a ``Recording``."""
    frames = list(frames)
    if not frames:
        raise ValueError("a recording needs at least one frame")
    topology = frames[0].topology
    if any(f.topology.key != topology.key for f in frames):
        raise ValueError("a recording holds one topology; these frames have several")

    def stack(get, dtype):
        values = [get(f) for f in frames]
        return None if any(v is None for v in values) else np.stack(values).astype(dtype)

    labels = [f.label or "" for f in frames]
    subjects = [f.subject or "" for f in frames]
    return Recording(
        vertices=np.stack([f.vertices for f in frames]).astype(np.float32),
        topology=topology,
        t=np.array([f.t for f in frames], dtype=np.float64),
        landmarks=stack(lambda f: f.landmarks, np.float32),
        labels=np.array(labels) if any(labels) else None,
        subjects=np.array(subjects) if any(subjects) else None,
        weights=weights,
        scalar=stack(lambda f: f.scalar, np.float32),
        scalar_name=frames[0].scalar_name,
        fps=fps,
    )


def save_recording(path: str | Path, recording: Recording) -> Path:
    """Write ``recording`` to ``path`` (``.npz``)."""
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise ValueError(f"{path}: a recording file ends in {SUFFIX}")
    r = recording
    arrays = {"format": np.array(FORMAT), "version": np.array(VERSION),
              "vertices": np.asarray(r.vertices, dtype=np.float32),
              "faces": np.asarray(r.topology.faces, dtype=np.int32),
              "t": np.asarray(r.t, dtype=np.float64), "fps": np.array(float(r.fps)),
              "topology_name": np.array(r.topology.name), "topology_id": np.array(r.topology.id)}
    if r.topology.landmarks is not None:
        arrays["landmark_face_idx"] = r.topology.landmarks.face_idx.astype(np.int32)
        arrays["landmark_bary"] = r.topology.landmarks.bary.astype(np.float32)
    for key in ("landmarks", "weights", "scalar"):
        value = getattr(r, key)
        if value is not None:
            arrays[key] = np.asarray(value, dtype=np.float32)
    for key in ("labels", "subjects"):
        value = getattr(r, key)
        if value is not None:
            arrays[key] = np.asarray(value, dtype=str)
    for key in ("wall", "seq"):
        value = getattr(r, key)
        if value is not None:
            arrays[key] = np.asarray(value, dtype=np.int64)
    if r.scalar is not None:
        arrays["scalar_name"] = np.array(r.scalar_name)
    _check(arrays, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as fh:
        np.savez(fh, **arrays)
    return path


@contextmanager
def replacing(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write in place of ``path``, atomically.

    The block writes a temporary file beside ``path`` (``.NAME.<random>.part``,
    same folder, so same file system); when it ends without an error the file
    is flushed to disk (fsync) and renamed over ``path`` (``os.replace``), and
    the folder synced. Killed or failing at any moment, ``path`` is the
    previous file or the complete new one, never cut; an error (Ctrl-C
    included) removes the temporary file.
    """
    path = Path(path)
    part = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with open(part, "xb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: str | Path) -> None:
    """Flush a folder's entries (a rename in it) to disk, where the platform can."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_recording(path: str | Path) -> Recording:
    """Read and check a recording; a missing, corrupt or foreign file is a
    ``RecordingError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: no such recording file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise RecordingError(f"{path}: not a readable .npz recording ({exc})") from exc
    if str(arrays.get("format", "")) != FORMAT:
        raise RecordingError(f"{path}: not a facecast recording (format {str(arrays.get('format', 'missing'))!r}, "
                             f"expected {FORMAT!r})")
    if int(arrays.get("version", -1)) != VERSION:
        raise RecordingError(f"{path}: recording version {arrays.get('version')} is not {VERSION}")
    _check(arrays, path)
    embedding = None
    if "landmark_face_idx" in arrays:
        embedding = LandmarkEmbedding(face_idx=arrays["landmark_face_idx"].astype(np.int32),
                                      bary=arrays["landmark_bary"].astype(np.float32))
    v = arrays["vertices"]
    topology = Topology(faces=arrays["faces"].astype(np.int32), n_vertices=v.shape[1], landmarks=embedding,
                        name=str(arrays.get("topology_name", "")), id=str(arrays.get("topology_id", "")))
    opt = lambda k: arrays.get(k)                                            # noqa: E731
    return Recording(vertices=v.astype(np.float32, copy=False), topology=topology, t=arrays["t"].astype(np.float64),
                     landmarks=opt("landmarks"), labels=opt("labels"), subjects=opt("subjects"),
                     weights=opt("weights"), scalar=opt("scalar"), scalar_name=str(arrays.get("scalar_name", "")),
                     fps=float(arrays.get("fps", 60.0)), wall=opt("wall"), seq=opt("seq"))


def _check(a: dict, path: Path) -> None:
    """Shapes and types of a recording's arrays (raises ``RecordingError``)."""
    def bad(msg: str) -> RecordingError:
        return RecordingError(f"{path}: {msg}")

    for key in ("vertices", "faces", "t"):
        if key not in a:
            raise bad(f"missing the {key!r} array")
    v, f, t = a["vertices"], a["faces"], a["t"]
    if v.ndim != 3 or v.shape[2] != 3 or len(v) == 0:
        raise bad(f"vertices must be [T, N, 3] with T >= 1, got {list(v.shape)}")
    n_frames, n = v.shape[:2]
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer) or len(f) == 0:
        raise bad(f"faces must be int [F, 3], got {f.dtype} {list(f.shape)}")
    if f.min() < 0 or f.max() >= n:
        raise bad(f"faces index vertices outside 0..{n - 1}")
    if t.shape != (n_frames,) or np.any(np.diff(t) < 0):
        raise bad(f"t must be [{n_frames}] seconds, non-decreasing")
    shapes = {"landmarks": (n_frames, 68, 3), "weights": (n_frames, 52), "scalar": (n_frames, n),
              "labels": (n_frames,), "subjects": (n_frames,), "landmark_face_idx": (68,), "landmark_bary": (68, 3),
              "wall": (n_frames,), "seq": (n_frames,)}
    for key, shape in shapes.items():
        if key in a and a[key].shape != shape:
            raise bad(f"{key} must be {list(shape)}, got {list(a[key].shape)}")
    if ("landmark_face_idx" in a) != ("landmark_bary" in a):
        raise bad("landmark_face_idx and landmark_bary go together")
    if "landmark_face_idx" in a and (a["landmark_face_idx"].min() < 0 or a["landmark_face_idx"].max() >= len(f)):
        raise bad(f"landmark_face_idx names triangles outside 0..{len(f) - 1}")


class RecordingSource(PlaybackSource):
    """Plays a ``Recording`` in a loop, one clip per run of (label, subject)."""

    def __init__(self, recording: Recording, name: str = "recording") -> None:
        self.recording = recording
        n = len(recording)
        labels = recording.labels if recording.labels is not None else np.full(n, "")
        subjects = recording.subjects if recording.subjects is not None else np.full(n, "")
        cuts = [0] + [i for i in range(1, n) if labels[i] != labels[i - 1] or subjects[i] != subjects[i - 1]] + [n]
        clips = [Clip(a, b, str(labels[a]) or None, str(subjects[a]) or None) for a, b in zip(cuts[:-1], cuts[1:])]
        super().__init__(name, clips, recording.t, recording.fps)
        self._ranges: dict[int, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self.recording)

    def frame(self, i: int) -> Frame:
        r = self.recording
        c = next(c for c in self.clips if c.start <= i < c.stop)
        return Frame(vertices=r.vertices[i], topology=r.topology, t=float(r.t[i]), index=i,
                     landmarks=None if r.landmarks is None else r.landmarks[i],
                     scalar=None if r.scalar is None else r.scalar[i], scalar_name=r.scalar_name,
                     label=c.label, subject=c.subject)

    def scalar_range(self) -> tuple[float, float] | None:
        if self.recording.scalar is None:
            return None
        if self._clip not in self._ranges:
            s = self.recording.scalar[self.clip.start:self.clip.stop]
            self._ranges[self._clip] = (min(0.0, float(s.min())), float(s.max()) or 1.0)
        return self._ranges[self._clip]


def opener(uri: str) -> RecordingSource | None:
    """``facecast.sources`` entry: a ``.npz`` path becomes a ``RecordingSource``."""
    if not uri.lower().endswith(SUFFIX) or "://" in uri:
        return None
    return RecordingSource(load_recording(uri), name=uri)
