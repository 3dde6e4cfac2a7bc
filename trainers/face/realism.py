"""How real a face model's expressions are: the figures of ``facecast bench face``.

Each figure is measured the same way on every model (SynthFace v1, v2, and
ICT-FaceKit when present), each with the generator of its own version
(v1's timelines for v1; the v2 dynamics for v2 and for ICT, which has no
dynamics of its own):

- ``shape_amplitude_ratio`` / ``shape_cosine``: per ARKit shape against
  ICT-FaceKit's (``trainers.face.compare``);
- ``blink_lid_gap_mm``: with both eyeBlinks at 1 on the mean face, the
  largest distance from an upper-lid landmark (37, 38, 43, 44) to the lower
  lid (the polyline through its corners and landmarks);
- ``jaw_chin_travel_mm``: how far the chin landmark (8) moves at jawOpen = 1;
- ``apex_static_share``: per label, the share of the face's vertices
  (``face_mask``) that move less than 0.01 mm from the subject's neutral at
  the apex of its performances;
- ``sequence_static_share``: the largest share, over the performances, of
  the face's vertices that do not move at all (exactly equal in every
  ``frame_step``-th frame);
- ``identity_transfer_error``: one identity's expression displacement
  copied onto another, its error relative to the other's own displacement
  (the 12 labels' apexes over pairs of population identities);
- ``linear_map_residual``: the best linear map (ridge regression, its
  weight chosen on a training subject held out) from the 68 landmarks'
  motion to the dense motion, fitted on some subjects' frames and tested on
  the others': mean vertex error (mm) and its share of the mean motion;
- ``components_99``: principal components needed for 99 % of the variance
  of the expression displacement;
- ``label_separability``: nearest-class-mean accuracy of the apex landmark
  motion (in face-size units), leaving each subject out in turn;
- ``apex_self_intersections``: at the apex of each label, for the first
  ``intersection_subjects`` members, the share of faces whose surface (the
  triangles of ``face_mask``) passes through itself, and the mean number of
  crossing triangle pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.constants import EPS_DISPLACEMENT, MM_PER_M
from models.face.base import FaceModel
from models.face.expression import INDEX, N_EXPRESSION
from models.face.labels import COMA_LABELS, apex_weights
from models.geometry.intersect import self_intersections
from trainers.data.synth import SynthConfig, apex_frame, performance
from trainers.face.compare import compare_shapes
from trainers.face.correspond import Correspondence

#: each eye's upper-lid landmarks and its lower lid from corner to corner
LIDS = (((37, 38), (36, 41, 40, 39)), ((43, 44), (42, 47, 46, 45)))
#: ridge weights tried for the linear map (relative to the mean diagonal of X^T X)
RIDGES = (1e-8, 1e-6, 1e-4, 1e-2, 1.0)
CHIN = 8
VARIANCE_KEPT = 0.99


@dataclass(frozen=True)
class RealismConfig:
    """How much data the figures are measured on."""

    subjects: int = 6                  #: population members performing every label
    test_subjects: int = 2             #: of which held out from the linear map's fit
    frame_step: int = 4                #: every n-th frame of a performance enters the linear map and PCA
    pairs: int = 6                     #: identity pairs for the transfer error
    intersection_subjects: int = 3     #: members whose label apexes are checked for self-intersections
    fps: float = 30.0
    seed: int = 0


def _one(name: str, value: float = 1.0, **more: float) -> np.ndarray:
    w = np.zeros((1, N_EXPRESSION), dtype=np.float32)
    w[0, INDEX[name]] = value
    for k, v in more.items():
        w[0, INDEX[k]] = v
    return w


def _to_polyline(p: np.ndarray, chain: np.ndarray) -> float:
    a, b = chain[:-1], chain[1:]
    ab = b - a
    t = np.clip(np.einsum("kc,kc->k", p - a, ab) / np.einsum("kc,kc->k", ab, ab), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + t[:, None] * ab), axis=1).min())


def blink_lid_gap_mm(model: FaceModel) -> float:
    """Both eyeBlinks at 1 on the mean face: the largest distance from an
    upper-lid landmark to the lower lid (the polyline through its landmarks)."""
    beta = np.zeros((1, model.n_identity), np.float32)
    v = model.vertices(beta, _one("eyeBlinkLeft", eyeBlinkRight=1.0))
    lm = model.landmarks(v.astype(np.float64))[0]
    gaps = [_to_polyline(lm[u], lm[list(lower)]) for uppers, lower in LIDS for u in uppers]
    return float(max(gaps) * MM_PER_M)


def jaw_chin_travel_mm(model: FaceModel) -> float:
    beta = np.zeros((2, model.n_identity), np.float32)
    v = model.vertices(beta, np.concatenate([np.zeros((1, N_EXPRESSION), np.float32), _one("jawOpen")]))
    lm = model.landmarks(v.astype(np.float64))
    return float(np.linalg.norm(lm[1, CHIN] - lm[0, CHIN]) * MM_PER_M)


@dataclass
class Performances:
    """Every performance of a model's population, kept as what the figures
    need: every ``frame_step``-th frame and the apex frame, as landmarks and
    as the face's vertices (``face_mask``), and the subject's neutral."""

    landmarks: list[np.ndarray]        #: [T', 68, 3] per performance
    dense: list[np.ndarray]            #: [T', M, 3] the face's vertices
    apex_landmarks: list[np.ndarray]   #: [68, 3]
    apex_dense: list[np.ndarray]       #: [M, 3]
    neutral_landmarks: list[np.ndarray]
    neutral_dense: list[np.ndarray]
    subject: list[int]
    label: list[int]
    crossings: list[int]               #: crossing triangle pairs at the apex (-1: not checked)
    static: list[float]                #: share of face vertices exactly still over the kept frames


def perform(model: FaceModel, face_version: int, cfg: RealismConfig) -> Performances:
    """Each of ``cfg.subjects`` population members performs every label once
    with the dynamics of ``face_version``."""
    synth = SynthConfig(identities=cfg.subjects, fps=cfg.fps, seed=cfg.seed, face_version=face_version)
    mask = model.face_mask
    out = Performances([], [], [], [], [], [], [], [], [], [])
    faces = model.template.faces[mask[model.template.faces].all(axis=1)]
    for s in range(cfg.subjects):
        beta = model.population_identity(s, cfg.seed)
        neutral = model.neutral(beta[None]).astype(np.float64)
        lm0 = model.landmarks(neutral)[0]
        for li, label in enumerate(COMA_LABELS):
            weights, timeline = performance(synth, s, label, 1)
            a = apex_frame(timeline.__dict__)
            keep = np.unique(np.append(np.arange(0, len(weights), cfg.frame_step), a))
            v = model.vertices(np.repeat(beta[None], len(keep), 0), weights[keep]).astype(np.float64)
            lm = model.landmarks(v)
            k = int(np.flatnonzero(keep == a)[0])
            sub = keep % cfg.frame_step == 0
            out.landmarks.append(lm[sub])
            out.dense.append(v[sub][:, mask])
            out.apex_landmarks.append(lm[k])
            out.apex_dense.append(v[k][mask])
            out.neutral_landmarks.append(lm0)
            out.neutral_dense.append(neutral[0][mask])
            out.subject.append(s)
            out.label.append(li)
            out.crossings.append(len(self_intersections(v[k], faces)) if s < cfg.intersection_subjects else -1)
            still = np.all(v[sub][:, mask] == v[sub][:1, mask], axis=(0, 2))
            out.static.append(float(still.mean()))
    return out


def apex_static_share(perf: Performances) -> dict[str, float]:
    """Per label: mean share of face vertices moving < 0.01 mm at the apex."""
    shares: dict[str, list[float]] = {}
    for a, n, li in zip(perf.apex_dense, perf.neutral_dense, perf.label):
        moved = np.linalg.norm(a - n, axis=-1)
        shares.setdefault(COMA_LABELS[li], []).append(float(np.mean(moved < EPS_DISPLACEMENT)))
    return {k: float(np.mean(v)) for k, v in shares.items()}


def identity_transfer_error(model: FaceModel, cfg: RealismConfig) -> float:
    """Mean relative error of one identity's label apex displacement copied onto another."""
    rng = np.random.default_rng([cfg.seed, 7])
    weights = np.stack([apex_weights(label, rng)[0] for label in COMA_LABELS])
    mask = model.face_mask
    errors = []
    for p in range(cfg.pairs):
        betas = [model.population_identity(2 * p + k, cfg.seed + 1) for k in range(2)]
        d = []
        for beta in betas:
            b = np.repeat(beta[None], len(weights), 0)
            d.append((model.vertices(b, weights) - model.neutral(beta[None]))[:, mask].astype(np.float64))
        for i in range(len(weights)):
            errors.append(np.linalg.norm(d[0][i] - d[1][i]) / max(np.linalg.norm(d[1][i]), 1e-30))
    return float(np.mean(errors))


def _motions(perf: Performances):
    """Landmark motions ``[F, 204]``, dense motions ``[F, 3M]`` and each frame's subject."""
    x = np.concatenate([(lm - n).reshape(len(lm), -1) for lm, n in zip(perf.landmarks, perf.neutral_landmarks)])
    y = np.concatenate([(d - n).reshape(len(d), -1) for d, n in zip(perf.dense, perf.neutral_dense)])
    subj = np.concatenate([np.full(len(lm), s) for lm, s in zip(perf.landmarks, perf.subject)])
    return x, y, subj


def _ridge(x: np.ndarray, y: np.ndarray, weight: float) -> np.ndarray:
    xa = np.hstack([x, np.ones((len(x), 1))])
    gram = xa.T @ xa
    gram[:-1, :-1] += weight * np.trace(gram[:-1, :-1]) / (len(gram) - 1) * np.eye(len(gram) - 1)
    return np.linalg.solve(gram, xa.T @ y)


def _apply(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x @ coef[:-1] + coef[-1]


def _vertex_error(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.linalg.norm((pred - y).reshape(len(y), -1, 3), axis=-1).mean())


def linear_map_residual(perf: Performances, cfg: RealismConfig) -> dict[str, float]:
    x, y, subj = _motions(perf)
    n_train = cfg.subjects - cfg.test_subjects
    train, test = subj < n_train, subj >= n_train
    fit, val = subj < n_train - 1, subj == n_train - 1          # the ridge weight, on training subjects only
    weight = min(RIDGES, key=lambda r: _vertex_error(_apply(_ridge(x[fit], y[fit], r), x[val]), y[val]))
    err = _vertex_error(_apply(_ridge(x[train], y[train], weight), x[test]), y[test])
    motion = np.linalg.norm(y[test].reshape(int(test.sum()), -1, 3), axis=-1).mean()
    return {"mm": float(err * MM_PER_M), "share": float(err / motion), "ridge": weight}


def components_99(perf: Performances) -> int:
    _, y, _ = _motions(perf)
    y = y - y.mean(axis=0)
    # the squared singular values are the eigenvalues of the (frames x frames) Gram matrix
    energy = np.sort(np.clip(np.linalg.eigvalsh(y @ y.T), 0.0, None))[::-1]
    energy = np.cumsum(energy) / np.sum(energy)
    return int(np.searchsorted(energy, VARIANCE_KEPT) + 1)


def apex_self_intersections(perf: Performances) -> dict[str, float]:
    checked = [c for c in perf.crossings if c >= 0]
    return {"share": float(np.mean([c > 0 for c in checked])), "mean_pairs": float(np.mean(checked)),
            "faces": len(checked)}


def label_separability(perf: Performances) -> float:
    """Leave-one-subject-out nearest-class-mean accuracy of apex landmark motions."""
    feats = []
    for lm, lm0 in zip(perf.apex_landmarks, perf.neutral_landmarks):
        feats.append(((lm - lm0) / np.linalg.norm(lm0[45] - lm0[36])).reshape(-1))
    feats, labels, subj = np.array(feats), np.array(perf.label), np.array(perf.subject)
    hits = []
    for s in np.unique(subj):
        train, test = subj != s, subj == s
        means = np.stack([feats[train & (labels == k)].mean(axis=0) for k in range(len(COMA_LABELS))])
        d = np.linalg.norm(feats[test][:, None] - means[None], axis=-1)
        hits.extend(np.argmin(d, axis=1) == labels[test])
    return float(np.mean(hits))


def realism(model: FaceModel, face_version: int, reference: tuple[dict, Correspondence] | None = None,
            cfg: RealismConfig = RealismConfig()) -> dict:
    """Every figure of the module docstring for ``model``; ``reference`` is
    ICT's shape fields and the correspondence of ``model``'s template to it
    (the shape figures are left out without it)."""
    out: dict = {}
    if reference is not None:
        fields, corr = reference
        names = tuple(n for n in fields)
        agree = compare_shapes(model, fields, corr, names)
        out["shape_amplitude_ratio"] = {n: round(a.amplitude_ratio, 4) for n, a in agree.items()}
        out["shape_cosine"] = {n: round(a.cosine, 4) for n, a in agree.items()}
    out["blink_lid_gap_mm"] = round(blink_lid_gap_mm(model), 3)
    out["jaw_chin_travel_mm"] = round(jaw_chin_travel_mm(model), 2)
    perf = perform(model, face_version, cfg)
    out["apex_static_share"] = {k: round(v, 4) for k, v in apex_static_share(perf).items()}
    out["sequence_static_share"] = round(max(perf.static), 4)
    out["identity_transfer_error"] = round(identity_transfer_error(model, cfg), 4)
    out["linear_map_residual"] = {k: round(v, 4) for k, v in linear_map_residual(perf, cfg).items()}
    out["components_99"] = components_99(perf)
    out["label_separability"] = round(label_separability(perf), 4)
    out["apex_self_intersections"] = {k: round(v, 4) for k, v in apex_self_intersections(perf).items()}
    return out
