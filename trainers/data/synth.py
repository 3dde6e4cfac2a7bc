"""SynthFace 4D data: identities x labels x takes, each a neutral -> apex ->
neutral performance, written in the CoMA layout and into the fast cache at once.

Two generations, chosen by ``SynthConfig.face_version``:

- 1: SynthFace v1 with the v1 timelines (``sequences.sequence_weights``):
  one take per subject and label, noise-free, starting at the exact
  neutral. The same seed gives the same data as before v2 existed.
- 2: SynthFace v2 with the v2 dynamics (``sequences.performance_weights``):
  3 takes per subject and label by default, per-unit timing, overshoot,
  micro-motion, blinks, a resting (not neutral) first frame.

Either may add registration noise to the vertices (``noise.NoiseField``)
and detector noise to observed landmarks (``cache/landmarks.npy``). The
cache keeps the true weights, identity and neutral; the vertices (cache and
PLY) are the observed, noisy ones. Every random draw derives from the seed,
the subject's index, the label and the take, so a subset of subjects
(``only_subjects``) is the same data as in the full set.

A run marks its folder incomplete from its start to its very end
(``cache.mark_incomplete``, listing the PLY folders it writes). A run
into a folder an interrupted run left first removes that run's files, and
only those (``leftovers``): ``meta.json``, ``cache/``'s arrays and the
``<subject>/<label>[.N]/<label>.NNNNNN.ply`` trees the old marker (or
meta) lists; a folder holding anything else, or a complete data set, is
refused.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models.constants import EPS_DISPLACEMENT
from models.face import FACE_VERSIONS
from models.face.base import FaceModel
from models.face.labels import COMA_LABELS
from trainers.data.cache import (
    CACHE_DIR, CACHE_FILES, INCOMPLETE_FILE, META_FILE, SYNTH_COMMAND, TMP_SUFFIX, CacheWriter, DataError, FaceData,
    incomplete_run, mark_complete, mark_incomplete,
)
from trainers.data.coma import frame_path, parse_take_folder, take_folder, write_frame
from trainers.data.noise import MIN_CORRELATION_MM, NoiseField, landmark_noise
from trainers.data.sequences import DynamicsConfig, performance_weights, sequence_weights
from trainers.progress import human_bytes, progress, summary

#: takes per subject and label when ``performances`` is not given, by face version
DEFAULT_PERFORMANCES = {1: 1, 2: 3}
#: default correlation length of the registration noise (mm)
NOISE_CORRELATION_MM = 7.5
#: random-stream tags (the third entry of every seed), one per kind of draw
STREAM_V1, STREAM_V2, STREAM_REGISTRATION, STREAM_LANDMARKS = 1000, 2000, 3000, 4000


@dataclass(frozen=True)
class SynthConfig:
    """What ``facecast data synth`` makes."""

    identities: int = 12                   #: subjects (CoMA has 12)
    labels: tuple[str, ...] = COMA_LABELS  #: expression labels, ``performances`` sequences each per subject
    fps: float = 60.0                      #: frame rate of the sequences
    seed: int = 0                          #: everything random derives from this
    write_ply: bool = True                 #: also write the CoMA PLY tree
    only_subjects: tuple[int, ...] = ()    #: make just these subject indices (same data as in the full set)
    face_version: int = 1                  #: 1: SynthFace v1 + v1 timelines; 2: SynthFace v2 + v2 dynamics
    performances: int | None = None        #: takes per subject and label (None: 1 for v1, 3 for v2)
    registration_noise_mm: float = 0.0     #: RMS of the smooth vertex noise per frame (0: none)
    noise_correlation_mm: float = NOISE_CORRELATION_MM  #: its correlation length over the surface
    landmark_noise_mm: float = 0.0         #: RMS of the observed landmarks' noise (0: no landmarks.npy)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)  #: the v2 performance model

    def __post_init__(self) -> None:
        if self.identities < 1:
            raise ValueError("identities must be at least 1")
        bad = [lab for lab in self.labels if lab not in COMA_LABELS]
        if bad or not self.labels:
            raise ValueError(f"unknown label(s) {bad}; known: {', '.join(COMA_LABELS)}")
        if not self.fps > 0:
            raise ValueError("fps must be positive")
        if any(not 0 <= s < self.identities for s in self.only_subjects):
            raise ValueError(f"only_subjects must lie in 0..{self.identities - 1}")
        if self.face_version not in FACE_VERSIONS:
            raise ValueError(f"face_version must be one of {FACE_VERSIONS}, got {self.face_version}")
        if self.performances is None:
            object.__setattr__(self, "performances", DEFAULT_PERFORMANCES[self.face_version])
        if self.performances < 1:
            raise ValueError(f"performances must be at least 1, got {self.performances}")
        for name in ("registration_noise_mm", "landmark_noise_mm"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 (0: off), got {value}")
        if not self.noise_correlation_mm >= MIN_CORRELATION_MM:
            raise ValueError(f"noise_correlation_mm must be at least {MIN_CORRELATION_MM} mm, "
                             f"got {self.noise_correlation_mm}")

    @property
    def subject_indices(self) -> list[int]:
        return list(self.only_subjects) or list(range(self.identities))


def subject_name(i: int) -> str:
    return f"synth_{i:03d}"


def face_model(version: int) -> FaceModel:
    """SynthFace ``version`` on its own template (``models.face.face_model``)."""
    from models.face import face_model as model_of

    return model_of(version)


def performance(cfg: SynthConfig, index: int, label: str, take: int):
    """Weights ``float32 [T, 52]`` and timeline of subject ``index``'s take ``take``
    of ``label``: v1's ``Timeline`` or v2's ``Performance``."""
    li = COMA_LABELS.index(label)
    if cfg.face_version == 1:
        # take 1 keeps v1's original stream, so v1 data are unchanged
        key = [cfg.seed, index, STREAM_V1 + li] + ([] if take == 1 else [take])
        return sequence_weights(label, cfg.fps, np.random.default_rng(key))
    rng = np.random.default_rng([cfg.seed, index, STREAM_V2 + li, take])
    return performance_weights(label, cfg.fps, rng, cfg.dynamics)


def generate(cfg: SynthConfig, out: str | Path, model: FaceModel | None = None,
             show_progress: bool = True, report: bool = True) -> Path:
    """Write a synthetic data folder; returns its ``meta.json`` path.
    ``model``: the face model (default: the one of ``cfg.face_version``);
    ``show_progress``: a progress bar while it runs; ``report``: a summary line at the end.

    The folder is marked incomplete until the end (module docstring); what an
    interrupted run left there is removed first.

    Raises:
        DataError: ``out`` holds a complete data folder, or files that are not
            an earlier run's (the message names them).
    """
    out = Path(out)
    stale = leftovers(out)
    model = model or face_model(cfg.face_version)
    t0 = time.perf_counter()
    _remove(stale)
    out.mkdir(parents=True, exist_ok=True)
    indices = cfg.subject_indices
    subjects = [subject_name(i) for i in indices]
    labels = list(cfg.labels)
    folders = [f"{subject}/{take_folder(label, take)}" for subject in subjects for label in labels
               for take in range(1, cfg.performances + 1)] if cfg.write_ply else []
    mark_incomplete(out, SYNTH_COMMAND, folders=folders)
    # sample every sequence first so the cache is allocated once, exactly
    plans = []
    for s, index in enumerate(indices):
        for li, label in enumerate(labels):
            for take in range(1, cfg.performances + 1):
                weights, timeline = performance(cfg, index, label, take)
                plans.append((s, li, take, weights, timeline))
    capacity = sum(len(p[3]) for p in plans)
    observe = cfg.landmark_noise_mm > 0
    writer = CacheWriter(out, model.template, capacity, subjects, labels, cfg.fps,
                         source={"kind": "synthface", "template": model.template.name, "model": model.name},
                         identity_names=model.identity_names, landmarks=observe)
    betas = [model.population_identity(index, cfg.seed) for index in indices]
    for s, beta in enumerate(betas):
        writer.set_subject(s, neutral=model.neutral(beta[None])[0], identity=beta)
    noise = (NoiseField.build(model.template.vertices, cfg.noise_correlation_mm)
             if cfg.registration_noise_mm > 0 else None)
    timelines = []
    faces = model.template.faces
    for s, li, take, weights, timeline in progress(plans, desc="synth", unit="seq", enabled=show_progress):
        key = [cfg.seed, indices[s], COMA_LABELS.index(labels[li]), take]
        verts = model.vertices(np.repeat(betas[s][None], len(weights), axis=0), weights)
        landmarks = None
        if observe:
            rng = np.random.default_rng([STREAM_LANDMARKS, *key])
            truth = model.landmarks(verts)                       # the clean mesh's, before registration noise
            landmarks = truth + landmark_noise(len(truth), truth.shape[-2], cfg.landmark_noise_mm, rng)
        if noise is not None:
            rng = np.random.default_rng([STREAM_REGISTRATION, *key])
            verts += noise.sample(len(verts), cfg.registration_noise_mm, rng)
        source = ""
        if cfg.write_ply:
            folder = out / subjects[s] / take_folder(labels[li], take)
            folder.mkdir(parents=True, exist_ok=True)
            for f, v in enumerate(verts):
                write_frame(frame_path(out, subjects[s], labels[li], f, take), v, faces)
            source = f"{subjects[s]}/{take_folder(labels[li], take)}"
        writer.add_sequence(s, li, verts, weights, source=source, take=take, landmarks=landmarks)
        timelines.append(asdict(timeline))
    config = asdict(cfg)
    config["labels"] = list(cfg.labels)
    meta = writer.close({"generator": config, "timelines": timelines})
    mark_complete(out)
    elapsed = time.perf_counter() - t0
    if not report:
        return meta
    sizes = FaceData.open(out).size_bytes()
    summary(f"wrote {writer.count} frames ({len(indices)} subjects x {len(labels)} labels x "
            f"{cfg.performances} take(s), {model.template.n_vertices} vertices) to {out} in {elapsed:.1f} s "
            f"({writer.count / elapsed:.0f} meshes/s): cache {human_bytes(sizes['cache'])}"
            + (f", PLY {human_bytes(sizes['ply'])}" if cfg.write_ply else ""))
    return meta


def leftovers(out: Path) -> list[Path]:
    """What an earlier, unfinished synth run left in ``out``: its files, then its
    folders (deepest first), to remove before a new run. Its own files only: the
    marker's and meta's temporaries, ``meta.json``, ``cache/``'s arrays, and the
    PLY files ``<label>.NNNNNN.ply`` in the ``<subject>/<label>[.N]`` folders
    its marker (or ``meta.json``) lists. The marker itself stays until the new
    run replaces it, so a run interrupted while cleaning is cleaned next time.

    Raises:
        DataError: ``out`` holds a complete data folder (no marker), a run of
            another command, or anything else (named).
    """
    if not out.exists():
        return []
    if not out.is_dir():
        raise DataError(f"{out}: a file, not a folder; choose another --out")
    run = incomplete_run(out)
    if run is None and (out / META_FILE).exists():
        raise DataError(f"{out}: already holds a data folder; choose another --out")
    if run and run.get("command", SYNTH_COMMAND) != SYNTH_COMMAND:
        raise DataError(f"{out}: an interrupted run of `{run['command']}` left it; re-run that, or choose "
                        f"another --out")
    if run and run.get("host") == socket.gethostname() and _running(run.get("pid")):
        raise DataError(f"{out}: a run of `{SYNTH_COMMAND}` started at {run.get('started')} (pid {run['pid']}) "
                        f"is still writing it; wait for it, or choose another --out")
    listed = set((run or {}).get("folders", [])) | _meta_folders(out / META_FILE)
    files, folders, foreign = [], [], []
    for entry in sorted(out.iterdir()):
        if entry.is_symlink():                              # never followed: its target is not ours
            foreign.append(entry)
        elif entry.name in (META_FILE, META_FILE + TMP_SUFFIX, INCOMPLETE_FILE + TMP_SUFFIX) and entry.is_file():
            files.append(entry)
        elif entry.name == INCOMPLETE_FILE and entry.is_file():
            continue
        elif entry.name == CACHE_DIR and entry.is_dir():
            for f in sorted(entry.iterdir()):
                (files if f.name in CACHE_FILES and f.is_file() and not f.is_symlink() else foreign).append(f)
            folders.append(entry)
        elif entry.is_dir() and any(name.startswith(entry.name + "/") for name in listed):
            for take_dir in sorted(entry.iterdir()):
                if (f"{entry.name}/{take_dir.name}" not in listed or take_dir.is_symlink()
                        or not take_dir.is_dir()):
                    foreign.append(take_dir)
                    continue
                frame = re.compile(rf"{re.escape(parse_take_folder(take_dir.name)[0])}\.\d{{6}}\.ply")
                for f in sorted(take_dir.iterdir()):
                    (files if frame.fullmatch(f.name) and f.is_file() else foreign).append(f)
                folders.append(take_dir)
            folders.append(entry)
        else:
            foreign.append(entry)
    if foreign:
        names = ", ".join(str(p.relative_to(out)) for p in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise DataError(f"{out}: holds {names}, which no earlier run of `{SYNTH_COMMAND}` there lists "
                        f"({INCOMPLETE_FILE} or {META_FILE}); it only removes its own files: move "
                        f"{'them' if len(foreign) > 1 else 'it'} away or choose another --out")
    return files + folders


def _running(pid) -> bool:
    """Whether another process ``pid`` runs on this host."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                        # e.g. another user's process
        return True
    return True


def _meta_folders(path: Path) -> set[str]:
    """The PLY folders a (possibly half-written) ``meta.json`` lists."""
    try:
        meta = json.loads(path.read_text())
        return {q["source"] for q in meta["sequences"] if q.get("source")}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _remove(stale: list[Path]) -> None:
    """Remove what ``leftovers`` listed (files first, then the emptied folders)."""
    for path in stale:
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Stillness:
    """How much of a sequence does not move. ``static``: share of all vertices
    exactly equal in every frame; ``still_at_apex``: share of the face's
    vertices (``face_mask``) less than ``EPS_DISPLACEMENT`` (0.01 mm) from the
    subject's neutral at the apex frame."""

    static: float
    still_at_apex: float


def stillness(vertices: np.ndarray, neutral: np.ndarray, apex: int, face_mask: np.ndarray) -> Stillness:
    """``Stillness`` of one sequence ``vertices [T, N, 3]`` of a subject with
    ``neutral [N, 3]``, its apex at frame ``apex``, ``face_mask`` bool [N]."""
    v = np.asarray(vertices)
    static = np.all(v == v[:1], axis=(0, 2))
    moved = np.linalg.norm(v[apex].astype(np.float64) - neutral, axis=-1)
    return Stillness(static=float(static.mean()),
                     still_at_apex=float(np.mean(moved[face_mask] < EPS_DISPLACEMENT)))


def apex_frame(timeline: dict) -> int:
    """The apex frame of a recorded timeline (``meta.json``'s ``timelines``): the
    middle of the settled hold (v2) or of the hold (v1)."""
    start = timeline.get("settled", timeline["apex"])
    return (start + timeline["release"]) // 2
