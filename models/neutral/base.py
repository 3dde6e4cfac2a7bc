"""The one interface every neutralization method implements.

Meshes are registered faces of one topology, ``float32 [B, N, 3]`` in
metres, in the face's own frame (no rigid pose to remove). A method
neutralizes a batch at once (the runtime hands it every stream of a tick
together) and, where it can, moves one face's expression onto another.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from models.checkpoint import CheckpointMeta


class Neutralizer(ABC):
    """``neutralize(meshes) -> meshes``; ``transfer(source, target) -> meshes``."""

    #: the method's name in ``facecast eval neutral`` and the runtime's ``method`` argument
    name: str = ""
    #: the face topology it was built for (None: any)
    topology_id: str | None = None

    @abstractmethod
    def neutralize(self, meshes: np.ndarray) -> np.ndarray:
        """Expressive faces ``[B, N, 3]`` -> their neutral faces ``float32 [B, N, 3]``."""

    def transfer(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The expressions of ``source [B, N, 3]`` on the neutral faces ``target [B, N, 3]``.

        The default moves each source's expression displacement (the face
        minus its neutralized self) onto the target; methods with a better
        route (a latent swap) override it."""
        source = np.asarray(source, np.float32)
        return (np.asarray(target, np.float32) + source - self.neutralize(source)).astype(np.float32)

    def reconstruct(self, meshes: np.ndarray) -> np.ndarray | None:
        """The method's reconstruction of its input, for methods that encode
        and decode (``E_rec``); None for the others."""
        return None

    def meta(self) -> CheckpointMeta | None:
        """What to save with the method's checkpoint (None: nothing to save)."""
        return None


def as_batch(meshes: np.ndarray, n_vertices: int | None = None) -> np.ndarray:
    """``[N, 3]`` or ``[B, N, 3]`` -> a float32 ``[B, N, 3]`` copy; a clear error otherwise."""
    a = np.asarray(meshes, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[2] != 3 or (n_vertices is not None and a.shape[1] != n_vertices):
        want = f"[B, {n_vertices}, 3]" if n_vertices is not None else "[B, N, 3]"
        raise ValueError(f"meshes must be {want}, got shape {tuple(a.shape)}")
    return a


class MeanFace(Neutralizer):
    """The trivial baseline: every face's neutral is the training identities' mean neutral."""

    name = "mean_face"

    def __init__(self, mean: np.ndarray, topology_id: str | None = None) -> None:
        self.mean = np.asarray(mean, np.float32)
        self.topology_id = topology_id

    def neutralize(self, meshes: np.ndarray) -> np.ndarray:
        a = as_batch(meshes, len(self.mean))
        return np.broadcast_to(self.mean, a.shape).copy()
