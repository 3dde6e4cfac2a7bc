"""Table 3's Det-LM row: landmarks re-read off meshes that S2D-Dec decodes.

A motion (a metric landmark trajectory on a subject's neutral landmarks)
goes to S2D-Dec with the subject's neutral mesh, the template's landmark
embedding reads the 68 landmarks back off every decoded mesh, and that
sequence is encoded like any real motion (normalised, resampled) for the
classifier.

``s2d_decoder`` is the one place that knows S2D-Dec's API.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from models import srvf
from models.paths import S2D_SYNTHFACE

#: decode(neutral mesh [V, 3], its landmarks [68, 3], target landmarks [F, 68, 3]) -> meshes [F, V, 3], metres
Decoder = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

#: where the S2D issue ships its checkpoint for the default SynthFace data
S2D_CHECKPOINT = S2D_SYNTHFACE


def s2d_decoder(checkpoint: str | Path, topology_id: str) -> tuple[Decoder | None, str]:
    """S2D-Dec as a ``Decoder``, or ``None`` and the reason it cannot be had.

    The one place that calls S2D-Dec: ``models.s2d.load_s2d(path,
    topology_id)`` and the decoder's ``decode(neutral [B, N, 3],
    neutral_landmarks [B, 68, 3], target_landmarks [B, 68, 3])``; the
    checkpoint must drive ``topology_id``.
    """
    path = Path(checkpoint)
    if not path.is_file():
        return None, (f"S2D-Dec checkpoint not found at {path}: the Det-LM row needs the S2D issue's "
                      f"shipped checkpoint (or pass --s2d FILE)")
    try:
        from models.s2d import load_s2d
    except ImportError as exc:
        return None, f"models.s2d cannot be imported ({exc}); the Det-LM row needs S2D-Dec"
    from models.checkpoint import CheckpointError

    try:
        model, _ = load_s2d(path, topology_id)
    except CheckpointError as exc:
        return None, str(exc)

    def decode(neutral: np.ndarray, neutral_landmarks: np.ndarray, target: np.ndarray) -> np.ndarray:
        f = len(target)
        return np.asarray(model.decode(np.repeat(neutral[None], f, axis=0),
                                       np.repeat(neutral_landmarks[None], f, axis=0), target), dtype=np.float32)

    return decode, f"S2D-Dec from {path}"


def reread_displacements(decode: Decoder, landmark_points: Callable[[np.ndarray], np.ndarray],
                         neutral_mesh: np.ndarray, trajectory: np.ndarray, steps: int) -> torch.Tensor:
    """One motion through S2D-Dec and back to the classifier's input.

    Args:
        decode: the mesh decoder.
        landmark_points: ``[..., V, 3] -> [..., 68, 3]`` the template's landmark embedding.
        neutral_mesh: ``[V, 3]`` the subject's neutral mesh (metres).
        trajectory: ``[F, 68, 3]`` the motion's landmarks (metres), neutral first.
        steps: arc-length steps of the re-read motion.

    Returns:
        ``[steps, K]`` displacements from the start in the normalised frame.
    """
    meshes = decode(neutral_mesh, landmark_points(neutral_mesh), trajectory)
    points = torch.as_tensor(landmark_points(meshes), dtype=torch.float64)
    curve = srvf.landmark_curve(points, steps)
    return (curve[1:] - curve[:1]).float()
