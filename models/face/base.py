"""What every face model offers: SynthFace v1, SynthFace v2 and ICT-FaceKit.

A face model turns identity coefficients ``[B, K]`` and the 52 ARKit weights
``[B, 52]`` into meshes ``float32 [B, N, 3]`` (metres) on its template. The
data generator, the realism figures, the renderer's galleries and the
trainers take any object with this shape, so a user who has a scanned model
(ICT-FaceKit) runs them on it unchanged.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from models.face.topology import FaceTemplate


@runtime_checkable
class FaceModel(Protocol):
    """The face-model interface (see the module docstring)."""

    #: a short id naming the model and its version ("synthface-1", "synthface-2", "ict-facekit")
    name: str
    template: FaceTemplate
    #: one name per identity coefficient
    identity_names: tuple[str, ...]
    #: bool [N]: the vertices that count as the face in realism figures (the
    #: skin of a mask; the face area of a full head)
    face_mask: np.ndarray

    @property
    def n_identity(self) -> int: ...

    def neutral(self, identity: np.ndarray) -> np.ndarray:
        """Neutral meshes ``float32 [B, N, 3]`` of identities ``[B, K]``."""

    def vertices(self, identity: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Meshes ``float32 [B, N, 3]`` of identities ``[B, K]`` and ARKit weights ``[B, 52]``."""

    def landmarks(self, vertices: np.ndarray) -> np.ndarray:
        """The 68 landmarks ``[..., 68, 3]`` of meshes ``[..., N, 3]``."""

    def sample_identities(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` identities ``float32 [n, K]`` from the model's population prior."""

    def population_identity(self, index: int, seed: int = 0) -> np.ndarray:
        """Identity ``float32 [K]`` of member ``index`` of the population drawn with ``seed``
        (the same person every time)."""


def check_batch(a: np.ndarray, width: int, name: str) -> None:
    """``a`` must be a finite ``[B, width]`` array; a ``ValueError`` names ``name`` otherwise."""
    if a.ndim != 2 or a.shape[1] != width:
        raise ValueError(f"{name} must be [B, {width}], got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity")
