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
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models.constants import EPS_DISPLACEMENT
from models.face import FACE_VERSIONS
from models.face.base import FaceModel
from models.face.labels import COMA_LABELS
from trainers.data.cache import META_FILE, CacheWriter, DataError, FaceData
from trainers.data.coma import frame_path, take_folder, write_frame
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
    ``show_progress``: a progress bar while it runs; ``report``: a summary line at the end."""
    out = Path(out)
    if (out / META_FILE).exists():
        raise DataError(f"{out}: already holds a data folder; choose another --out")
    model = model or face_model(cfg.face_version)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    indices = cfg.subject_indices
    subjects = [subject_name(i) for i in indices]
    labels = list(cfg.labels)
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
    elapsed = time.perf_counter() - t0
    if not report:
        return meta
    sizes = FaceData.open(out).size_bytes()
    summary(f"wrote {writer.count} frames ({len(indices)} subjects x {len(labels)} labels x "
            f"{cfg.performances} take(s), {model.template.n_vertices} vertices) to {out} in {elapsed:.1f} s "
            f"({writer.count / elapsed:.0f} meshes/s): cache {human_bytes(sizes['cache'])}"
            + (f", PLY {human_bytes(sizes['ply'])}" if cfg.write_ply else ""))
    return meta


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
