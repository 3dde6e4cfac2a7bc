"""SynthFace 4D data: identities x labels, each a neutral -> apex -> neutral
sequence, written in the CoMA layout and into the fast cache at once."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.face import synthface
from models.face.base import FaceModel
from models.face.labels import COMA_LABELS
from trainers.data.cache import META_FILE, CacheWriter, DataError, FaceData
from trainers.data.coma import frame_path, write_frame
from trainers.data.sequences import sequence_weights
from trainers.progress import human_bytes, progress, summary


@dataclass(frozen=True)
class SynthConfig:
    """What ``facecast data synth`` makes."""

    identities: int = 12                   #: subjects (CoMA has 12)
    labels: tuple[str, ...] = COMA_LABELS  #: expression labels, one sequence each per subject
    fps: float = 60.0                      #: frame rate of the sequences
    seed: int = 0                          #: everything random derives from this
    write_ply: bool = True                 #: also write the CoMA PLY tree
    only_subjects: tuple[int, ...] = ()    #: make just these subject indices (same data as in the full set)

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

    @property
    def subject_indices(self) -> list[int]:
        return list(self.only_subjects) or list(range(self.identities))


def subject_name(i: int) -> str:
    return f"synth_{i:03d}"


def generate(cfg: SynthConfig, out: str | Path, model: FaceModel | None = None,
             show_progress: bool = True, report: bool = True) -> Path:
    """Write a synthetic data folder; returns its ``meta.json`` path.
    ``show_progress``: a progress bar while it runs; ``report``: a summary line at the end."""
    out = Path(out)
    if (out / META_FILE).exists():
        raise DataError(f"{out}: already holds a data folder; choose another --out")
    model = model or synthface()
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    indices = cfg.subject_indices
    subjects = [subject_name(i) for i in indices]
    labels = list(cfg.labels)
    # sample every sequence first so the cache is allocated once, exactly
    plans = []
    for s, index in enumerate(indices):
        beta = model.population_identity(index, cfg.seed)
        for li, label in enumerate(labels):
            rng = np.random.default_rng([cfg.seed, index, 1000 + COMA_LABELS.index(label)])
            weights, timeline = sequence_weights(label, cfg.fps, rng)
            plans.append((s, li, beta, weights, timeline))
    capacity = sum(len(p[3]) for p in plans)
    writer = CacheWriter(out, model.template, capacity, subjects, labels, cfg.fps,
                         source={"kind": "synthface", "template": model.template.name, "model": model.name},
                         identity_names=model.identity_names)
    for s, index in enumerate(indices):
        beta = model.population_identity(index, cfg.seed)
        writer.set_subject(s, neutral=model.neutral(beta[None])[0], identity=beta)
    timelines = []
    faces = model.template.faces
    for s, li, beta, weights, timeline in progress(plans, desc="synth", unit="seq", enabled=show_progress):
        verts = model.vertices(np.repeat(beta[None], len(weights), axis=0), weights)
        source = ""
        if cfg.write_ply:
            folder = out / subjects[s] / labels[li]
            folder.mkdir(parents=True, exist_ok=True)
            for f, v in enumerate(verts):
                write_frame(frame_path(out, subjects[s], labels[li], f), v, faces)
            source = f"{subjects[s]}/{labels[li]}"
        writer.add_sequence(s, li, verts, weights, source=source)
        timelines.append(asdict(timeline))
    config = asdict(cfg)
    config["labels"] = list(cfg.labels)
    meta = writer.close({"generator": config, "timelines": timelines})
    elapsed = time.perf_counter() - t0
    if not report:
        return meta
    sizes = FaceData.open(out).size_bytes()
    summary(f"wrote {writer.count} frames ({len(indices)} subjects x {len(labels)} labels, "
            f"{model.template.n_vertices} vertices) to {out} in {elapsed:.1f} s "
            f"({writer.count / elapsed:.0f} meshes/s): cache {human_bytes(sizes['cache'])}"
            + (f", PLY {human_bytes(sizes['ply'])}" if cfg.write_ply else ""))
    return meta
