"""Frames of SynthFace for pictures: the template, the 12 CoMA labels at
apex, a population of identities, and a per-vertex distance in mm.

Every function is deterministic in its ``seed``; a ``template`` argument
runs the same on a user's template (e.g. the CoMA/FLAME head).
"""

from __future__ import annotations

import numpy as np

from models.constants import MM_PER_M
from models.face import (
    N_EXPRESSION, N_IDENTITY, FaceTemplate, SynthFace, load_template, sample_identities, synthface,
)
from models.face.labels import COMA_LABELS, apex_weights
from runtime.frames import Frame, Topology

__all__ = ["COMA_LABELS", "identity", "identity_frames", "label_frames", "load_template", "template_frame"]

DISTANCE_TO_NEUTRAL = "distance to neutral (mm)"
DISTANCE_TO_MEAN = "distance to the mean face (mm)"


def _model(template: FaceTemplate | None) -> SynthFace:
    return synthface() if template is None else SynthFace(template)


def template_frame(template: FaceTemplate | None = None) -> Frame:
    """The template itself (SynthFace's mask by default)."""
    model = _model(template)
    return Frame(vertices=model.template.vertices, topology=Topology.from_template(model.template))


def identity(seed: int) -> np.ndarray:
    """One identity ``float32 [35]``: the mean face for seed ``-1``, else a sample."""
    if seed < 0:
        return np.zeros(N_IDENTITY, dtype=np.float32)
    return sample_identities(1, np.random.default_rng(seed))[0]


def label_frames(labels: tuple[str, ...] = COMA_LABELS, identity_seed: int = -1, seed: int = 0,
                 template: FaceTemplate | None = None) -> list[Frame]:
    """Each label at its apex (one performance each, drawn from ``seed``) on one
    identity; the scalar is each vertex's distance to that identity's neutral (mm)."""
    model = _model(template)
    beta = identity(identity_seed)[None]
    weights = np.stack([apex_weights(label, np.random.default_rng([seed, i]))[0] for i, label in enumerate(labels)])
    verts = model.vertices(np.repeat(beta, len(labels), axis=0), weights)
    neutral = model.neutral(beta)[0]
    topology = Topology.from_template(model.template)
    return [Frame(vertices=v, topology=topology, index=i, label=label,
                  scalar=(np.linalg.norm(v - neutral, axis=-1) * MM_PER_M).astype(np.float32),
                  scalar_name=DISTANCE_TO_NEUTRAL)
            for i, (label, v) in enumerate(zip(labels, verts))]


def identity_frames(count: int, seed: int = 0, template: FaceTemplate | None = None) -> list[Frame]:
    """``count`` sampled identities at neutral; the scalar is each vertex's
    distance to the mean face (mm)."""
    if count < 1:
        raise ValueError("identity_frames needs count >= 1")
    model = _model(template)
    betas = sample_identities(count, np.random.default_rng(seed))
    verts = model.vertices(betas, np.zeros((count, N_EXPRESSION), dtype=np.float32))
    mean = model.template.vertices
    topology = Topology.from_template(model.template)
    return [Frame(vertices=v, topology=topology, index=i, subject=f"identity {i}",
                  scalar=(np.linalg.norm(v - mean, axis=-1) * MM_PER_M).astype(np.float32),
                  scalar_name=DISTANCE_TO_MEAN)
            for i, v in enumerate(verts)]
