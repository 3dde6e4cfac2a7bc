"""S2D neutralization: the landmark motion from the face to its neutral, decoded by S2D-Dec.

Two parts:

``LandmarkEstimator``
    the neutral landmarks of an expressive face from its own 68 landmarks
    (``[B, 68, 3] -> [B, 68, 3]``), a ridge regression of the landmark
    displacement on the landmarks, fitted on training identities. On
    SynthFace the map is close to linear: it recovers unseen identities'
    neutral landmarks to a few hundredths of a millimetre.

``S2DNeutralizer``
    S2D-Dec decodes landmark motion *from* a neutral face, so it is used in
    the direction it was trained in: with ``delta = L(X) - L_neutral`` the
    expression's landmark motion, the decoder's dense motion for it,
    ``D = S2D(N, L(N) + delta) - N``, is subtracted from the input,
    ``N <- X - D``, starting from ``N = X`` (``iterations`` refinements
    re-decode ``D`` on the latest neutral estimate). Feeding the expressive
    face to the decoder with the reverse motion instead performs worse than
    doing nothing: the decoder never saw neutral-ward motion.

    Transfer: the source's landmark motion ``delta`` added to the target's
    landmarks and decoded on the target, S2D-Dec's own use.

Meshes are ``float32 [B, N, 3]`` metres.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import (
    CheckpointError, CheckpointMeta, check_topology, config_from_dict, load_checkpoint, save_checkpoint, tensor_of,
)
from models.constants import N_LANDMARKS
from models.face import FaceTemplate
from models.neutral.base import Neutralizer, as_batch

FAMILY = "neutral_landmarks"
#: ridge strength relative to the number of samples (the fit is close to noise-free)
DEFAULT_RIDGE = 1e-10
#: rows per S2D-Dec forward
BATCH = 32
#: the dtype of every tensor of its checkpoint (``LandmarkEstimator.save`` writes float64)
DTYPES = {"*": torch.float64}


@dataclass(frozen=True)
class LandmarkEstimatorConfig:
    ridge: float = DEFAULT_RIDGE
    topology_id: str | None = None


class LandmarkEstimator:
    """Neutral landmarks from expressive ones: ``L_n = L + (flat(L) - mean_x) @ A + mean_y``."""

    def __init__(self, mean_x: np.ndarray, coef: np.ndarray, mean_y: np.ndarray,
                 config: LandmarkEstimatorConfig = LandmarkEstimatorConfig()) -> None:
        self.mean_x = np.asarray(mean_x, np.float64)          # [204]
        self.coef = np.asarray(coef, np.float64)              # [204, 204]
        self.mean_y = np.asarray(mean_y, np.float64)          # [204]
        self.config = config

    def estimate(self, landmarks: np.ndarray) -> np.ndarray:
        """``[B, 68, 3]`` expressive landmarks -> ``float32 [B, 68, 3]`` neutral estimates."""
        lm = np.asarray(landmarks, np.float64)
        if lm.shape[-2:] != (N_LANDMARKS, 3):
            raise ValueError(f"landmarks must be [B, {N_LANDMARKS}, 3], got {lm.shape}")
        flat = lm.reshape(len(lm), -1)
        return (lm + ((flat - self.mean_x) @ self.coef + self.mean_y).reshape(lm.shape)).astype(np.float32)

    def meta(self, data: dict | None = None, metrics: dict | None = None) -> CheckpointMeta:
        return CheckpointMeta(family=FAMILY, config=asdict(self.config), topology_id=self.config.topology_id,
                              data=data or {}, metrics=metrics or {})

    def save(self, path: str | Path, data: dict | None = None, metrics: dict | None = None) -> Path:
        state = {k: torch.from_numpy(getattr(self, k).astype(np.float64)) for k in ("mean_x", "coef", "mean_y")}
        return save_checkpoint(path, state, self.meta(data, metrics))


def fit_landmark_estimator(expressive: np.ndarray, neutral: np.ndarray,
                           config: LandmarkEstimatorConfig = LandmarkEstimatorConfig()) -> LandmarkEstimator:
    """Ridge fit on pairs ``expressive [M, 68, 3]`` -> ``neutral [M, 68, 3]`` (their neutrals)."""
    x = np.asarray(expressive, np.float64).reshape(len(expressive), -1)
    y = np.asarray(neutral, np.float64).reshape(len(neutral), -1) - x
    mean_x, mean_y = x.mean(0), y.mean(0)
    xc = x - mean_x
    gram = xc.T @ xc + config.ridge * len(x) * np.eye(x.shape[1])
    coef = np.linalg.solve(gram, xc.T @ (y - mean_y))
    return LandmarkEstimator(mean_x, coef, mean_y, config)


def load_landmark_estimator(path: str | Path, topology_id: str | None = None) -> LandmarkEstimator:
    """The estimator of a ``neutral_landmarks`` checkpoint; a ``CheckpointError`` naming the file
    for another topology, a config that does not fit, or tensors not of the 68 landmarks' shapes."""
    meta, state = load_checkpoint(path, family=FAMILY, dtypes=DTYPES)
    if topology_id is not None:
        check_topology(meta, topology_id, path)
    cfg = config_from_dict(LandmarkEstimatorConfig, meta.config, path)
    if cfg.topology_id != meta.topology_id:
        raise CheckpointError(f"{path}: its config is for topology {cfg.topology_id}, "
                              f"its metadata says {meta.topology_id}")
    k = N_LANDMARKS * 3
    mean_x, coef, mean_y = (tensor_of(path, state, name, shape).numpy()
                            for name, shape in (("mean_x", (k,)), ("coef", (k, k)), ("mean_y", (k,))))
    return LandmarkEstimator(mean_x, coef, mean_y, cfg)


class S2DNeutralizer(Neutralizer):
    """Neutralize and transfer through S2D-Dec (see the module docstring)."""

    name = "s2d"

    def __init__(self, decoder, estimator: LandmarkEstimator, template: FaceTemplate, iterations: int = 1) -> None:
        if iterations < 1:
            raise ValueError("iterations must be at least 1")
        self.decoder = decoder
        self.estimator = estimator
        self.template = template
        self.iterations = iterations
        self.topology_id = template.topology_id

    def motion(self, landmarks: np.ndarray) -> np.ndarray:
        """The expression's landmark motion ``[B, 68, 3]`` (the face's landmarks minus its neutral estimate)."""
        return (np.asarray(landmarks, np.float32) - self.estimator.estimate(landmarks)).astype(np.float32)

    def _decode(self, base: np.ndarray, base_landmarks: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.concatenate([self.decoder.decode(base[i:i + BATCH], base_landmarks[i:i + BATCH],
                                                   target[i:i + BATCH]) for i in range(0, len(base), BATCH)])

    def neutralize(self, meshes: np.ndarray) -> np.ndarray:
        x = as_batch(meshes, self.template.n_vertices)
        delta = self.motion(self.template.landmark_points(x))
        n = x
        for _ in range(self.iterations):
            ln = self.template.landmark_points(n)
            n = x - (self._decode(n, ln, ln + delta) - n)
        return n.astype(np.float32)

    def transfer(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        src = as_batch(source, self.template.n_vertices)
        tgt = as_batch(target, self.template.n_vertices)
        lt = self.template.landmark_points(tgt)
        return self._decode(tgt, lt, lt + self.motion(self.template.landmark_points(src))).astype(np.float32)
