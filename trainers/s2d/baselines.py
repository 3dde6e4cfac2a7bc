"""The linear baselines of the S2D paper's Table 1, learned on the same pairs.

- PCA-k: principal components of the training displacements (target minus
  its neutral), fitted to the target landmarks with a Gaussian prior on the
  coefficients (ridge on coefficients scaled by their standard deviation).
- DL-3DMM: a dictionary of 220 atoms learned by sparse dictionary learning
  (scikit-learn's MiniBatchDictionaryLearning) on the same displacements,
  fitted to the landmarks by ridge least squares.

The ridge strength of each is chosen on a validation part of the training
subjects (never on the test fold).
"""

from __future__ import annotations

import numpy as np
import torch

from models.constants import MM_PER_M
from models.linear3dmm import Linear3DMM
from trainers.s2d.pairs import PairSet

#: candidate ridge strengths (relative to the landmark-row energy of the basis)
RIDGES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: displacements used to learn the dictionary (dictionary learning is slow)
DL_SAMPLES = 1500
#: fraction of the training sequences kept aside to choose the ridge strength
VALIDATION_SHARE = 0.15


def displacements(pairs: PairSet) -> np.ndarray:
    """Training displacements ``[M, N * 3]`` (metres)."""
    n = pairs.neutral[pairs.seq]
    return (pairs.target - n).reshape(len(pairs), -1).numpy().astype(np.float64)


def _validation_split(pairs: PairSet, seed: int) -> tuple[np.ndarray, np.ndarray]:
    seqs = np.unique(pairs.seq.numpy())
    rng = np.random.default_rng(seed)
    held = rng.choice(seqs, max(1, round(VALIDATION_SHARE * len(seqs))), replace=False)
    val = np.isin(pairs.seq.numpy(), held)
    return np.flatnonzero(~val), np.flatnonzero(val)


def fit_meshes(model: Linear3DMM, pairs: PairSet, idx: np.ndarray | None = None) -> np.ndarray:
    idx = np.arange(len(pairs)) if idx is None else idx
    n, nl, _, tl = pairs.batch(torch.as_tensor(idx))
    return model.fit(n.numpy().astype(np.float64), nl.numpy().astype(np.float64),
                     tl.numpy().astype(np.float64)).astype(np.float32)


def _mean_error(model: Linear3DMM, pairs: PairSet, idx: np.ndarray) -> float:
    pred = fit_meshes(model, pairs, idx)
    return float(np.linalg.norm(pred - pairs.target[torch.as_tensor(idx)].numpy(), axis=-1).mean() * MM_PER_M)


def _choose_ridge(name: str, learn, pairs: PairSet, landmark_weights: np.ndarray, seed: int) -> Linear3DMM:
    """``learn(idx) -> (mean, basis)`` on most training sequences, pick the
    ridge on the rest, then learn again on all of them with that ridge."""
    fit_idx, val_idx = _validation_split(pairs, seed)

    def model(mean: np.ndarray, basis: np.ndarray, ridge: float) -> Linear3DMM:
        return Linear3DMM(name, mean, basis, landmark_weights, ridge * _row_energy(basis, landmark_weights))

    mean, basis = learn(fit_idx)
    best = min(RIDGES, key=lambda r: _mean_error(model(mean, basis, r), pairs, val_idx))
    return model(*learn(np.arange(len(pairs))), best)


def _principal(d: np.ndarray, components: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the top ``components`` principal directions of ``d [M, 3N]``,
    each scaled by its standard deviation (so coefficients are ~N(0, 1)).
    Computed from the (examples x examples) Gram matrix: far cheaper than an
    SVD of the data when 3N >> examples."""
    mean = d.mean(axis=0)
    x = d - mean
    evals, evecs = np.linalg.eigh(x @ x.T)
    order = np.argsort(evals)[::-1][:min(components, len(evals))]
    sv = np.sqrt(np.clip(evals[order], 1e-30, None))
    directions = (evecs[:, order].T @ x) / sv[:, None]                   # [K, 3N], unit rows
    return mean, directions * (sv / np.sqrt(max(len(d) - 1, 1)))[:, None]


def train_pca(pairs: PairSet, components: int | tuple[int, ...], landmark_weights: np.ndarray,
              seed: int = 0):
    """PCA-k of the displacements (one model, or one per k sharing a single
    decomposition); the ridge of each is chosen on held-out training sequences."""
    ks = (components,) if isinstance(components, int) else tuple(components)
    d_all = displacements(pairs)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def learn_for(k: int):
        def learn(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            key = len(idx)
            if key not in cache:
                cache[key] = _principal(d_all[idx], max(ks))
            mean, basis = cache[key]
            return mean, basis[:k]
        return learn

    models = [_choose_ridge(f"PCA-{k}", learn_for(k), pairs, landmark_weights, seed) for k in ks]
    return models[0] if isinstance(components, int) else models


def train_dl(pairs: PairSet, atoms: int, landmark_weights: np.ndarray, seed: int = 0) -> Linear3DMM:
    """DL-3DMM with ``atoms`` dictionary atoms (sparse dictionary learning)."""
    from sklearn.decomposition import MiniBatchDictionaryLearning

    d_all = displacements(pairs)

    def learn(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = d_all[idx]
        mean = d.mean(axis=0)
        rng = np.random.default_rng(seed)
        sample = d[rng.choice(len(d), min(DL_SAMPLES, len(d)), replace=False)] - mean
        scale = np.abs(sample).max()
        learner = MiniBatchDictionaryLearning(n_components=atoms, alpha=0.1, batch_size=64, max_iter=20,
                                              random_state=seed)
        learner.fit(sample / scale)
        return mean, learner.components_ * scale

    return _choose_ridge(f"DL-3DMM-{atoms}", learn, pairs, landmark_weights, seed)


def _row_energy(basis: np.ndarray, landmark_weights: np.ndarray) -> float:
    """Mean squared norm of the basis's landmark rows (the ridge's unit)."""
    n = landmark_weights.shape[1]
    rows = np.einsum("ln,knc->klc", landmark_weights, basis.reshape(len(basis), n, 3))
    return float(np.mean(np.sum(rows.reshape(len(basis), -1) ** 2, axis=1)))
