"""Expressive faces paired with their true neutrals, for training and
evaluating the neutralizers.

``NeutralSet`` holds ``M`` expressive (and some neutral) faces of ``S``
identities with each identity's neutral face::

    meshes    float32 [M, N, 3]   the faces (metres)
    subject   int32   [M]         each face's identity, into ``neutrals``
    neutrals  float32 [S, N, 3]   the true neutral face of each identity
    weights   float32 [M, 52]     ARKit weights of each face (NaN where unknown)
    labels    [M] str             CoMA label of each face, "mix" for a random
                                  blendshape mix, "neutral" for a neutral face
    identity  float32 [S, 35]     SynthFace identity parameters (NaN where unknown)

Two makers: ``synth_set`` draws identities from the SynthFace population
(the ``train`` and ``test`` splits are disjoint populations: different seeds
of the identity prior, neither holding the default data folder's subjects
for ``test``) and renders a fixed number of expressions per identity, and
``folder_set`` reads a 4D data folder (CoMA layout or ``facecast data
synth``) for users with real data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.face import N_EXPRESSION, FaceTemplate, SynthFace, population_identity, synthface
from models.face.labels import COMA_LABELS, apex_weights
from trainers.progress import progress

SPLITS = ("train", "test")
#: the identity prior's seed offset of each split (the default data folder uses seed 0)
SPLIT_SEED = {"train": 0, "test": 7919}
#: a label apex is played at this share of its full intensity (uniform)
PARTIAL = (0.35, 1.0)
#: a random mix drives this many ARKit units ...
MIX_UNITS = (2, 6)
#: ... each at a weight in this range
MIX_WEIGHT = (0.15, 0.9)
CHUNK = 256


@dataclass(frozen=True)
class NeutralDataConfig:
    identities: int = 240         #: identities drawn for the split
    expressions: int = 24         #: expressive faces per identity (plus its neutral once)
    mix_share: float = 0.25       #: share of those that are random blendshape mixes (the rest label apexes)
    split: str = "train"          #: "train" or "test" (disjoint populations)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.identities < 1 or self.expressions < 1:
            raise ValueError("identities and expressions must be at least 1")
        if not 0.0 <= self.mix_share <= 1.0:
            raise ValueError("mix_share must lie in 0..1")


@dataclass
class NeutralSet:
    meshes: np.ndarray
    subject: np.ndarray
    neutrals: np.ndarray
    weights: np.ndarray
    labels: np.ndarray
    identity: np.ndarray
    template: FaceTemplate
    source: dict

    def __len__(self) -> int:
        return len(self.meshes)

    @property
    def n_subjects(self) -> int:
        return len(self.neutrals)

    def targets(self, index: np.ndarray | slice) -> np.ndarray:
        """The true neutral of each selected face ``float32 [B, N, 3]``."""
        return self.neutrals[self.subject[index]]

    def expressive(self) -> np.ndarray:
        """Indices of the faces that are not neutral."""
        return np.flatnonzero(self.labels != "neutral")

    def epoch(self, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
        """One shuffled pass as index batches (the last partial batch dropped)."""
        order = rng.permutation(len(self))
        return [order[i:i + batch] for i in range(0, len(order) - batch + 1, batch)]

    def mean_neutral(self) -> np.ndarray:
        return self.neutrals.mean(axis=0).astype(np.float32)


def split_identities(split: str, n: int, seed: int = 0) -> np.ndarray:
    """``float32 [n, 35]``: members 0..n-1 of the split's SynthFace population."""
    return np.stack([population_identity(i, seed + SPLIT_SEED[split]) for i in range(n)])


def sample_expressions(n: int, rng: np.random.Generator, mix_share: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """``n`` expressions: ``(weights float32 [n, 52], labels [n] str)``.

    A label apex (one of the 12 CoMA labels, in turn, at 35-100 % of its
    intensity) or, with probability ``mix_share``, a random mix of 2-5 ARKit
    units."""
    weights = np.zeros((n, N_EXPRESSION), np.float32)
    labels = np.empty(n, dtype=object)
    start = int(rng.integers(len(COMA_LABELS)))
    for i in range(n):
        if rng.random() < mix_share:
            units = rng.choice(N_EXPRESSION, size=int(rng.integers(*MIX_UNITS)), replace=False)
            weights[i, units] = rng.uniform(*MIX_WEIGHT, size=len(units))
            labels[i] = "mix"
        else:
            label = COMA_LABELS[(start + i) % len(COMA_LABELS)]
            w, _ = apex_weights(label, rng)
            weights[i] = w * rng.uniform(*PARTIAL)
            labels[i] = label
    return weights, labels.astype(str)


def synth_set(cfg: NeutralDataConfig, face: SynthFace | None = None, show_progress: bool = True) -> NeutralSet:
    """Render ``cfg.identities x (cfg.expressions + 1)`` SynthFace faces (one neutral each)."""
    face = face or synthface()
    rng = np.random.default_rng([cfg.seed, SPLIT_SEED[cfg.split], 1])
    ids = split_identities(cfg.split, cfg.identities, cfg.seed)
    per = cfg.expressions + 1
    weights = np.zeros((cfg.identities * per, N_EXPRESSION), np.float32)
    labels = np.empty(cfg.identities * per, dtype=object)
    for s in range(cfg.identities):
        w, lab = sample_expressions(cfg.expressions, rng, cfg.mix_share)
        weights[s * per + 1:(s + 1) * per] = w
        labels[s * per] = "neutral"
        labels[s * per + 1:(s + 1) * per] = lab
    subject = np.repeat(np.arange(cfg.identities, dtype=np.int32), per)
    meshes = np.empty((len(subject), face.template.n_vertices, 3), np.float32)
    chunks = range(0, len(subject), CHUNK)
    for i in progress(chunks, total=len(chunks), desc=f"SynthFace {cfg.split} faces", unit="chunk",
                      enabled=show_progress):
        sl = slice(i, i + CHUNK)
        meshes[sl] = face.vertices(ids[subject[sl]], weights[sl])
    neutrals = face.neutral(ids).astype(np.float32)
    return NeutralSet(meshes, subject, neutrals, weights, labels.astype(str), ids.astype(np.float32),
                      face.template, {"kind": "synthface", **asdict(cfg)})


def folder_set(root: str | Path, subjects: list[int] | None = None) -> NeutralSet:
    """Every frame of a 4D data folder (or of some of its subjects) with its subject's neutral."""
    from trainers.data.cache import FaceData

    data = FaceData.open(root)
    subject = np.asarray(data.subject, np.int32)
    keep = np.arange(len(subject)) if subjects is None else np.flatnonzero(np.isin(subject, subjects))
    remap = np.full(len(data.subjects), -1, np.int32)
    chosen = sorted(set(subject[keep].tolist()))
    remap[chosen] = np.arange(len(chosen), dtype=np.int32)
    label_names = np.array(data.labels)[np.asarray(data.label)[keep]]
    meshes = np.asarray(data.vertices[keep], np.float32)
    neutral = np.asarray(data.neutral[chosen], np.float32)
    still = np.linalg.norm(meshes - neutral[remap[subject[keep]]], axis=-1).max(axis=1) < 1e-6
    labels = np.where(still, "neutral", label_names)
    return NeutralSet(meshes, remap[subject[keep]], neutral, np.asarray(data.weights[keep], np.float32),
                      labels.astype(str), np.asarray(data.identity[chosen], np.float32), data.template,
                      {"kind": "folder", "path": str(Path(root).resolve()), "subjects": chosen})

