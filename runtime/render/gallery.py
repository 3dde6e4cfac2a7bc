"""Frames of SynthFace for pictures: the template, the 12 CoMA labels at
apex, key ARKit shapes, a population of identities, and a per-vertex
distance in mm.

Every function is deterministic in its ``seed``; ``face_version`` picks
SynthFace v1 (the default) or v2 (``models.face.face_model``), which share
a template and identity space, so the same arguments give the same person
in both; a ``template`` argument runs the same on a user's template (e.g.
the CoMA/FLAME head).
"""

from __future__ import annotations

import numpy as np

from models.constants import MM_PER_M
from models.face import (
    FACE_VERSIONS, N_EXPRESSION, N_IDENTITY, FaceTemplate, SynthFace, face_model, load_template, sample_identities,
)
from models.face.base import FaceModel
from models.face.expression import INDEX
from models.face.labels import COMA_LABELS, apex_weights
from runtime.frames import Frame, Topology

__all__ = ["COMA_LABELS", "FACE_VERSIONS", "KEY_SHAPES", "identity", "identity_frames", "label_frames",
           "load_template", "shape_frames", "template_frame"]

DISTANCE_TO_NEUTRAL = "distance to neutral (mm)"
DISTANCE_TO_MEAN = "distance to the mean face (mm)"

#: the key shapes of ``shape_frames``: (caption, ARKit shapes set to 1 together); ``mouthClose`` on
#: ``jawOpen`` as ARKit defines it (the lips closing while the jaw stays open)
KEY_SHAPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("jawOpen", ("jawOpen",)),
    ("eyeBlink L+R", ("eyeBlinkLeft", "eyeBlinkRight")),
    ("mouthSmile L+R", ("mouthSmileLeft", "mouthSmileRight")),
    ("mouthFrown L+R", ("mouthFrownLeft", "mouthFrownRight")),
    ("mouthPucker", ("mouthPucker",)),
    ("mouthFunnel", ("mouthFunnel",)),
    ("mouthRoll Lower+Upper", ("mouthRollLower", "mouthRollUpper")),
    ("mouthPress L+R", ("mouthPressLeft", "mouthPressRight")),
    ("jawOpen+mouthClose", ("jawOpen", "mouthClose")),
    ("browInnerUp", ("browInnerUp",)),
    ("browDown L+R", ("browDownLeft", "browDownRight")),
    ("cheekPuff", ("cheekPuff",)),
)


def _model(template: FaceTemplate | None, face_version: int = 1) -> FaceModel:
    """SynthFace ``face_version`` on its own template, or on ``template``."""
    if template is None:
        return face_model(face_version)
    if face_version == 2:
        from models.face.model_v2 import SynthFaceV2

        return SynthFaceV2(template)
    if face_version != 1:
        raise ValueError(f"unknown SynthFace version {face_version!r}; known: {', '.join(map(str, FACE_VERSIONS))}")
    return SynthFace(template)


def _distance_frames(model: FaceModel, verts: np.ndarray, neutral: np.ndarray, labels: list[str]) -> list[Frame]:
    """Frames of ``verts [B, N, 3]``, each labelled, the scalar their distance to ``neutral [N, 3]`` (mm)."""
    topology = Topology.from_template(model.template)
    return [Frame(vertices=v, topology=topology, index=i, label=label,
                  scalar=(np.linalg.norm(v - neutral, axis=-1) * MM_PER_M).astype(np.float32),
                  scalar_name=DISTANCE_TO_NEUTRAL)
            for i, (label, v) in enumerate(zip(labels, verts))]


def template_frame(template: FaceTemplate | None = None, face_version: int = 1) -> Frame:
    """The template itself (SynthFace's mask by default; v1 and v2 share it)."""
    model = _model(template, face_version)
    return Frame(vertices=model.template.vertices, topology=Topology.from_template(model.template))


def identity(seed: int) -> np.ndarray:
    """One identity ``float32 [35]``: the mean face for seed ``-1``, else a sample."""
    if seed < 0:
        return np.zeros(N_IDENTITY, dtype=np.float32)
    return sample_identities(1, np.random.default_rng(seed))[0]


def label_frames(labels: tuple[str, ...] = COMA_LABELS, identity_seed: int = -1, seed: int = 0,
                 template: FaceTemplate | None = None, face_version: int = 1) -> list[Frame]:
    """Each label at its apex (one performance each, drawn from ``seed``: the
    same weights for v1 and v2) on one identity; the scalar is each vertex's
    distance to that identity's neutral (mm)."""
    model = _model(template, face_version)
    beta = identity(identity_seed)[None]
    weights = np.stack([apex_weights(label, np.random.default_rng([seed, i]))[0] for i, label in enumerate(labels)])
    verts = model.vertices(np.repeat(beta, len(labels), axis=0), weights)
    return _distance_frames(model, verts, model.neutral(beta)[0], list(labels))


def shape_frames(shapes: tuple[tuple[str, tuple[str, ...]], ...] = KEY_SHAPES, identity_seed: int = -1,
                 template: FaceTemplate | None = None, face_version: int = 1) -> list[Frame]:
    """Each entry of ``shapes`` (caption, ARKit names) with those shapes at
    weight 1 on one identity (the mean face by default), labelled with its
    caption; the scalar is each vertex's distance to the neutral (mm)."""
    model = _model(template, face_version)
    beta = identity(identity_seed)[None]
    weights = np.zeros((len(shapes), N_EXPRESSION), dtype=np.float32)
    for i, (_, names) in enumerate(shapes):
        unknown = [n for n in names if n not in INDEX]
        if unknown:
            raise ValueError(f"unknown ARKit shape(s) {', '.join(unknown)}")
        weights[i, [INDEX[n] for n in names]] = 1.0
    verts = model.vertices(np.repeat(beta, len(shapes), axis=0), weights)
    return _distance_frames(model, verts, model.neutral(beta)[0], [caption for caption, _ in shapes])


def identity_frames(count: int, seed: int = 0, template: FaceTemplate | None = None,
                    face_version: int = 1) -> list[Frame]:
    """``count`` sampled identities at neutral; the scalar is each vertex's
    distance to the mean face (mm). v1 and v2 share the identity space, so
    their neutral faces are the same."""
    if count < 1:
        raise ValueError("identity_frames needs count >= 1")
    model = _model(template, face_version)
    betas = sample_identities(count, np.random.default_rng(seed))
    verts = model.vertices(betas, np.zeros((count, N_EXPRESSION), dtype=np.float32))
    mean = model.template.vertices
    topology = Topology.from_template(model.template)
    return [Frame(vertices=v, topology=topology, index=i, subject=f"identity {i}",
                  scalar=(np.linalg.norm(v - mean, axis=-1) * MM_PER_M).astype(np.float32),
                  scalar_name=DISTANCE_TO_MEAN)
            for i, v in enumerate(verts)]
