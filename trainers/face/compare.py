"""Expression shapes of two face models compared on the part of the face they share.

The protocol (issue 15, item 1): for every ARKit shape, the displacement of
the shape at weight 1 on each model's mean face, put in its model's own
normalised face frame (so size and pose drop out), the target's sampled at
the source vertices through a ``Correspondence``. On the shared region:

- amplitude ratio: area-weighted mean displacement length of the source
  over that of the target;
- cosine: the two fields as vectors (area-weighted), their cosine.

``mouthClose`` is measured on top of ``jawOpen = 1``, as ARKit defines it
(the lips closing while the jaw is open); every other shape from the
neutral face. Figures are reported in millimetres on the source's face
size where a length is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.face.base import FaceModel
from models.face.expression import ARKIT_NAMES, INDEX, N_EXPRESSION
from trainers.face.correspond import Correspondence

#: shapes measured on top of another shape at weight 1 (ARKit's meaning)
BASE_SHAPE = {"mouthClose": "jawOpen"}


def vertex_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """A third of the area of every triangle around each vertex ``[N]``."""
    tri = np.asarray(vertices, np.float64)[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    out = np.zeros(len(vertices))
    np.add.at(out, faces.reshape(-1), np.repeat(area / 3.0, 3))
    return out


def shape_weights(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``[52]`` of a shape's measurement and of its base."""
    base = np.zeros(N_EXPRESSION, dtype=np.float32)
    if name in BASE_SHAPE:
        base[INDEX[BASE_SHAPE[name]]] = 1.0
    shape = base.copy()
    shape[INDEX[name]] = 1.0
    return shape, base


def shape_fields(model: FaceModel, names: tuple[str, ...] = ARKIT_NAMES) -> dict[str, np.ndarray]:
    """Each shape's displacement on the model's mean face, normalised (its own
    face frame): ``name -> [N, 3]``."""
    beta = np.zeros((1, model.n_identity), dtype=np.float32)
    frame = model.template.frame
    shapes, bases = zip(*(shape_weights(n) for n in names))
    w = np.concatenate([np.stack(shapes), np.stack(bases)])
    v = model.vertices(np.repeat(beta, len(w), axis=0), w).astype(np.float64)
    d = v[:len(names)] - v[len(names):]
    local = np.einsum("bnc,ck->bnk", d, frame.rotation) / frame.scale
    return dict(zip(names, local))


@dataclass(frozen=True)
class Agreement:
    """One shape against its reference: ``amplitude_ratio``, ``cosine``, and the
    two mean displacements in mm on the source's face size."""

    amplitude_ratio: float
    cosine: float
    source_mm: float
    reference_mm: float


def agreement(source: np.ndarray, reference: np.ndarray, weights: np.ndarray, scale_m: float) -> Agreement:
    """``source`` and ``reference`` fields ``[N, 3]`` (normalised) on the same
    points with area ``weights [N]`` (zero outside the shared region)."""
    w = weights / weights.sum()
    ls, lr = np.linalg.norm(source, axis=1), np.linalg.norm(reference, axis=1)
    ms, mr = float((w * ls).sum()), float((w * lr).sum())
    dot = float((w * np.einsum("nc,nc->n", source, reference)).sum())
    norm = float(np.sqrt((w * ls ** 2).sum() * (w * lr ** 2).sum()))
    return Agreement(amplitude_ratio=ms / mr if mr > 0 else float("nan"),
                     cosine=dot / norm if norm > 0 else float("nan"),
                     source_mm=ms * scale_m * 1000.0, reference_mm=mr * scale_m * 1000.0)


def compare_shapes(source: FaceModel, reference_fields: dict[str, np.ndarray], corr: Correspondence,
                   names: tuple[str, ...]) -> dict[str, Agreement]:
    """``source``'s shapes against ``reference_fields`` (normalised fields on the
    reference template, ``name -> [M, 3]``), on the shared region of ``corr``."""
    template = source.template
    weights = vertex_areas(template.vertices, template.faces) * corr.shared
    mine = shape_fields(source, names)
    scale = float(template.frame.scale)
    return {n: agreement(mine[n], corr.sample(reference_fields[n]), weights, scale) for n in names}
