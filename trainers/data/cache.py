"""The fast cache of a 4D data folder: memory-mapped arrays plus ``meta.json``.

Layout of a data folder ``DIR``::

    DIR/meta.json                 what the folder holds (format, subjects, labels,
                                  sequences, fps, topology id, source, sizes)
    DIR/incomplete.json           only while a run writes the folder (or after one was
                                  interrupted): command, start, pid, host, what it writes
    DIR/cache/vertices.npy        float32 [F, N, 3]  every frame, metres
    DIR/cache/subject.npy         int16   [F]        subject index of each frame
    DIR/cache/label.npy           int16   [F]        label index of each frame
    DIR/cache/frame.npy           int32   [F]        frame number inside its sequence
    DIR/cache/sequence.npy        int32   [F]        sequence index of each frame
    DIR/cache/weights.npy         float32 [F, 52]    ARKit weights (NaN where unknown)
    DIR/cache/identity.npy        float32 [S, 35]    identity parameters (NaN where unknown)
    DIR/cache/neutral.npy         float32 [S, N, 3]  each subject's neutral mesh
    DIR/cache/template.npz        the template: vertices, faces, landmark face_idx/bary
    DIR/cache/landmarks.npy       float32 [F, 68, 3] observed landmarks (only in synthetic
                                  data made with landmark noise; see FaceData.landmarks)
    DIR/<subject>/<label>/<label>.<frame:06d>.ply   the CoMA layout (when written)
    DIR/<subject>/<label>.<take>/<label>.<frame:06d>.ply   further takes (2, 3, ...) of a label

Frames are stored sequence after sequence, so a sequence is a slice. A
subject may perform a label several times (takes); each take is its own
sequence. ``meta.json`` files written before takes existed load as take 1.

Complete or not: a run that writes a folder (``facecast data synth``,
``facecast data import``) first writes ``DIR/incomplete.json`` (the
command, when and where it started, and what it writes), and removes it
as its very last step, after ``meta.json``. A folder that still carries
it was left by an interrupted run (or one still running): every reader
refuses it by name (``FaceData.open``, hence every trainer, ``facecast
data info`` and ``import``), and running the same command into it again
cleans up and finishes. Both JSON files are written atomically.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from models.face import ARKIT_NAMES, IDENTITY_NAMES, N_EXPRESSION, FaceTemplate, LandmarkEmbedding

FORMAT = "facecast-4d"
FORMAT_VERSION = 1
META_FILE = "meta.json"
#: present while a run writes the folder, removed as its last step (see the module docstring)
INCOMPLETE_FILE = "incomplete.json"
#: what a temporary file of ``write_json`` is called, beside its file
TMP_SUFFIX = ".tmp"
CACHE_DIR = "cache"
#: the optional cache array of observed landmarks
LANDMARKS = "landmarks"
#: every file ``CacheWriter`` writes into ``cache/``
CACHE_FILES = tuple(f"{name}.npy" for name in ("vertices", "subject", "label", "frame", "sequence", "weights",
                                                 "identity", "neutral", LANDMARKS)) + ("template.npz",)
#: the commands that write data folders, as markers name them
SYNTH_COMMAND = "facecast data synth"
IMPORT_COMMAND = "facecast data import"


class DataError(Exception):
    """A data folder or file that cannot be used; the message names it."""


@dataclass(frozen=True)
class Sequence:
    """One performance: frames ``start .. start + length - 1`` of the cache."""

    subject: int
    label: int
    start: int
    length: int
    source: str          #: the sequence's folder, relative to the data folder ("" if none)
    take: int = 1        #: which performance of this subject and label (1, 2, ...)

    @property
    def frames(self) -> slice:
        return slice(self.start, self.start + self.length)


class FaceData:
    """A data folder opened for reading; arrays are memory-mapped (read-only)."""

    def __init__(self, root: Path, meta: dict, arrays: dict[str, np.ndarray], template: FaceTemplate) -> None:
        self.root = root
        self.meta = meta
        self.vertices = arrays["vertices"]
        self.subject = arrays["subject"]
        self.label = arrays["label"]
        self.frame = arrays["frame"]
        self.sequence = arrays["sequence"]
        self.weights = arrays["weights"]
        self.identity = arrays["identity"]
        self.neutral = arrays["neutral"]
        self.template = template
        #: observed landmarks ``float32 [F, 68, 3]`` (``cache/landmarks.npy``), or None
        self.observed_landmarks: np.ndarray | None = arrays.get(LANDMARKS)
        self.subjects: list[str] = meta["subjects"]
        self.labels: list[str] = meta["labels"]
        self.sequences = [Sequence(**s) for s in meta["sequences"]]

    @property
    def n_frames(self) -> int:
        return len(self.vertices)

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @staticmethod
    def open(root: str | Path) -> "FaceData":
        """Open ``root``; a missing, foreign or incomplete folder is a ``DataError`` naming it."""
        root = Path(root)
        run = incomplete_run(root)
        if run is not None:
            raise incomplete_error(root, run)
        meta_path = root / META_FILE
        if not meta_path.is_file():
            raise DataError(f"{root}: not a facecast data folder (no {META_FILE}); "
                            f"make one with 'facecast data synth' or 'facecast data import'")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{meta_path}: not valid JSON ({exc})") from exc
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise DataError(f"{meta_path}: format {meta.get('format')!r} v{meta.get('version')}, "
                            f"expected {FORMAT!r} v{FORMAT_VERSION}")
        cache = root / CACHE_DIR
        arrays = {}
        for name in ("vertices", "subject", "label", "frame", "sequence", "weights", "identity", "neutral"):
            path = cache / f"{name}.npy"
            try:
                arrays[name] = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise DataError(f"{path}: cannot read cache array ({exc})") from exc
        observed = cache / f"{LANDMARKS}.npy"
        if observed.exists():
            try:
                arrays[LANDMARKS] = np.load(observed, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise DataError(f"{observed}: cannot read cache array ({exc})") from exc
            if arrays[LANDMARKS].shape[0] != len(arrays["vertices"]):
                raise DataError(f"{observed}: {arrays[LANDMARKS].shape[0]} frames, the cache has "
                                f"{len(arrays['vertices'])}")
        template = _load_template(cache / "template.npz", meta.get("template_name", "template"))
        if template.topology_id != meta.get("topology_id"):
            raise DataError(f"{cache / 'template.npz'}: topology id {template.topology_id} does not match "
                            f"meta.json's {meta.get('topology_id')}")
        return FaceData(root, meta, arrays, template)

    def landmarks(self, frames: slice | np.ndarray) -> np.ndarray:
        """Landmarks ``[..., 68, 3]`` of the selected frames.

        The observed landmarks (``cache/landmarks.npy``: synthetic data made
        with ``--landmark-noise-mm``, the true landmarks plus detector noise)
        when the folder has them; otherwise the template's landmark points
        of the cached vertices."""
        if self.observed_landmarks is not None:
            return np.asarray(self.observed_landmarks[frames])
        return self.template.landmark_points(np.asarray(self.vertices[frames]))

    def size_bytes(self) -> dict[str, int]:
        """Bytes on disk: the cache and the PLY tree."""
        cache = sum(p.stat().st_size for p in (self.root / CACHE_DIR).iterdir())
        ply = sum(p.stat().st_size for p in self.root.glob("*/*/*.ply"))   # takes' folders too
        return {"cache": cache, "ply": ply}


def mark_incomplete(root: str | Path, command: str, **details) -> Path:
    """Mark ``root`` as being written by ``command`` (``INCOMPLETE_FILE``: the
    command, its start, process and host, and ``details``, e.g. what it writes);
    returns the marker's path. Replaces an older marker atomically."""
    path = Path(root) / INCOMPLETE_FILE
    write_json(path, {"command": command, "started": datetime.now().astimezone().isoformat(timespec="seconds"),
                      "pid": os.getpid(), "host": socket.gethostname(), **details})
    return path


def mark_complete(root: str | Path) -> None:
    """A run's last step, after ``meta.json``: remove the marker."""
    root = Path(root)
    (root / INCOMPLETE_FILE).unlink(missing_ok=True)
    _fsync_folder(root)


def incomplete_run(root: str | Path) -> dict | None:
    """The marker of the unfinished run that left ``root`` (``{}`` if it cannot be
    read), or None for a folder no run left unfinished."""
    path = Path(root) / INCOMPLETE_FILE
    if not path.exists():
        return None
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return run if isinstance(run, dict) else {}


def incomplete_error(root: str | Path, run: dict, note: str = "") -> DataError:
    """The error for a folder an unfinished run left: the folder, the run, what to do."""
    command = run.get("command") or "an unknown command"
    started = run.get("started") or "an unknown time"
    if run.get("pid"):
        started += f" (pid {run['pid']}" + (f" on {run['host']})" if run.get("host") else ")")
    if command == IMPORT_COMMAND:
        todo = f"re-run `{IMPORT_COMMAND}` with --out {root} (it writes the cache again)"
    else:
        todo = (f"re-run `{command}` into it (--out {root}: it first removes what the interrupted run "
                f"left) or into another folder")
    return DataError(f"{root}: incomplete data folder{note}: left by an interrupted run of `{command}` "
                     f"started at {started}, see {INCOMPLETE_FILE}; {todo}")


def write_json(path: Path, value) -> None:
    """``value`` as JSON at ``path``, atomically: a temporary file beside it,
    flushed to disk, renamed over it; the folder synced."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "w") as fh:
        json.dump(value, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename or removal in it) to disk, where the platform can."""
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


def _load_template(path: Path, name: str) -> FaceTemplate:
    try:
        z = np.load(path)
        emb = LandmarkEmbedding(face_idx=z["landmark_face_idx"], bary=z["landmark_bary"])
        return FaceTemplate(name=name, vertices=z["vertices"], faces=z["faces"], landmarks=emb)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the data folder's template ({exc})") from exc


class CacheWriter:
    """Fills a data folder's cache sequence by sequence, then writes ``meta.json``
    (atomically; the caller's ``mark_complete`` then ends the run).

    Arrays are allocated for ``capacity`` frames up front and shrunk to the
    frames actually added on ``close()`` (the reader skips bad files, so
    fewer may arrive than were counted). With ``landmarks=True`` the cache
    also gets ``landmarks.npy`` and every sequence must bring its observed
    landmarks.
    """

    def __init__(self, root: str | Path, template: FaceTemplate, capacity: int,
                 subjects: list[str], labels: list[str], fps: float, source: dict,
                 identity_names: tuple[str, ...] = IDENTITY_NAMES, landmarks: bool = False) -> None:
        self.root = Path(root)
        self.cache = self.root / CACHE_DIR
        self.cache.mkdir(parents=True, exist_ok=True)
        self.template = template
        self.subjects, self.labels, self.fps, self.source = subjects, labels, fps, source
        n, s = template.n_vertices, len(subjects)
        self.capacity = max(int(capacity), 1)
        mm = np.lib.format.open_memmap
        self.arrays = {
            "vertices": mm(self.cache / "vertices.npy", "w+", np.float32, (self.capacity, n, 3)),
            "subject": mm(self.cache / "subject.npy", "w+", np.int16, (self.capacity,)),
            "label": mm(self.cache / "label.npy", "w+", np.int16, (self.capacity,)),
            "frame": mm(self.cache / "frame.npy", "w+", np.int32, (self.capacity,)),
            "sequence": mm(self.cache / "sequence.npy", "w+", np.int32, (self.capacity,)),
            "weights": mm(self.cache / "weights.npy", "w+", np.float32, (self.capacity, N_EXPRESSION)),
        }
        if landmarks:
            shape = (self.capacity, len(template.landmarks.face_idx), 3)
            self.arrays[LANDMARKS] = mm(self.cache / f"{LANDMARKS}.npy", "w+", np.float32, shape)
        else:  # a folder written again (import into itself) must not keep stale landmarks
            (self.cache / f"{LANDMARKS}.npy").unlink(missing_ok=True)
        self.identity_names = tuple(identity_names)
        self.identity = np.full((s, len(self.identity_names)), np.nan, dtype=np.float32)
        self.neutral = np.full((s, n, 3), np.nan, dtype=np.float32)
        self.sequences: list[Sequence] = []
        self.count = 0

    def add_sequence(self, subject: int, label: int, vertices: np.ndarray,
                     weights: np.ndarray | None = None, source: str = "", take: int = 1,
                     landmarks: np.ndarray | None = None) -> None:
        """Append one sequence ``vertices [T, N, 3]`` (and its ARKit ``weights [T, 52]``,
        its observed ``landmarks [T, 68, 3]`` when the writer keeps them)."""
        t = len(vertices)
        if self.count + t > self.capacity:
            raise ValueError(f"cache capacity {self.capacity} exceeded")
        if (landmarks is not None) != (LANDMARKS in self.arrays):
            raise ValueError("observed landmarks: give them for every sequence exactly when the "
                             "writer was made with landmarks=True")
        s = slice(self.count, self.count + t)
        a = self.arrays
        a["vertices"][s] = vertices
        a["subject"][s] = subject
        a["label"][s] = label
        a["frame"][s] = np.arange(t)
        a["sequence"][s] = len(self.sequences)
        a["weights"][s] = np.nan if weights is None else weights
        if landmarks is not None:
            a[LANDMARKS][s] = landmarks
        self.sequences.append(Sequence(subject, label, self.count, t, source, take))
        self.count += t

    def set_subject(self, subject: int, neutral: np.ndarray | None = None,
                    identity: np.ndarray | None = None) -> None:
        """Record a subject's true neutral mesh and identity parameters (synthetic data)."""
        if neutral is not None:
            self.neutral[subject] = neutral
        if identity is not None:
            self.identity[subject] = identity

    def close(self, extra_meta: dict | None = None) -> Path:
        """Shrink the arrays to the frames added, fill missing neutrals, write meta."""
        names = list(self.arrays)
        for arr in self.arrays.values():
            arr.flush()
        self.arrays.clear()                      # unmap before truncating the files
        for name in names:
            _shrink_npy(self.cache / f"{name}.npy", self.count)
        vertices = np.load(self.cache / "vertices.npy", mmap_mode="r")
        for subj in range(len(self.subjects)):
            if np.isnan(self.neutral[subj]).any():
                first = [q for q in self.sequences if q.subject == subj]
                if first:  # no ground truth: the first frame of the subject's first sequence
                    self.neutral[subj] = vertices[first[0].start]
        np.save(self.cache / "neutral.npy", self.neutral)
        np.save(self.cache / "identity.npy", self.identity)
        t = self.template
        np.savez(self.cache / "template.npz", vertices=t.vertices, faces=t.faces,
                 landmark_face_idx=t.landmarks.face_idx, landmark_bary=t.landmarks.bary)
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "source": self.source,
            "fps": self.fps,
            "n_frames": self.count,
            "n_vertices": t.n_vertices,
            "topology_id": t.topology_id,
            "template_name": t.name,
            "subjects": self.subjects,
            "labels": self.labels,
            "weights": list(ARKIT_NAMES),
            "identity": list(self.identity_names),
            "sequences": [asdict(q) for q in self.sequences],
            **(extra_meta or {}),
        }
        path = self.root / META_FILE
        write_json(path, meta)
        return path


def _shrink_npy(path: Path, n_rows: int) -> None:
    """Cut an ``.npy`` file to its first ``n_rows`` rows, in place: rewrite the
    shape in the header (padded to the same length) and truncate the data."""
    with open(path, "r+b") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(fh)
        header_end = fh.tell()
        if shape[0] == n_rows:
            return
        new_shape = (n_rows, *shape[1:])
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran, "shape": new_shape}
        text = repr(header).encode("latin1")
        prefix_len = 6 + 2 + (2 if version == (1, 0) else 4)
        room = header_end - prefix_len
        if len(text) + 1 > room:
            raise ValueError(f"{path}: header has no room for shape {new_shape}")
        fh.seek(prefix_len)
        fh.write(text + b" " * (room - len(text) - 1) + b"\n")
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        fh.truncate(header_end + n_rows * row)
