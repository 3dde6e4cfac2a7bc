"""The cascade of the cascaded-regression tracker: image features -> parameter updates.

After landmark fitting (``fit.py``), ``K`` stages each refine the face's
identity and expression coefficients ``theta = [a; b]``::

    phi_k   = [ HOG of 64x64 patches at the projected model landmarks P(theta_k) ;
                the landmark displacements l - P(theta_k) ]
    theta_k+1 = theta_k + W_k [phi_k; 1]
    camera re-solved linearly (``camera.solve_pose``) for theta_k+1

``W_k`` is a ridge regressor learned from training renders (``trainers/tracker``):
the target is the ground-truth coefficients minus the current ones.

Scale: the image is first warped by a similarity so the face has a
canonical size (``CANONICAL_SCALE`` pixels per metre, about 200 pixels from
brow to chin), so a 64x64 patch covers the same piece of face at any
distance from the camera. HOG is OpenCV's (``cv2.HOGDescriptor``: 16x16
cells, 9 orientations, one L2-Hys-normalised block per patch; 144 values
per landmark), evaluated only at the 68 patch locations. Displacements are
measured in the canonical image, in pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from models.tracking.camera import Pose, solve_pose
from models.tracking.fit import Fit, LandmarkFitter

#: pixels per metre of the canonical face image
CANONICAL_SCALE = 1500.0
#: side of a patch (pixels of the canonical image)
PATCH = 64
#: side of a HOG cell
CELL = 16
#: orientation bins
BINS = 9


@dataclass(frozen=True)
class CascadeConfig:
    stages: int = 4                 #: K
    ridge: float = 1.0              #: ridge strength, relative to the features' mean squared norm per sample
    displacement_weight: float = 1.0  #: scale of the displacement features against the HOG ones

    def to_dict(self) -> dict:
        return asdict(self)


class HogFeatures:
    """HOG of 64x64 patches at given points of a canonical face image (OpenCV)."""

    def __init__(self) -> None:
        import cv2

        self._cv2 = cv2
        self.hog = cv2.HOGDescriptor((PATCH, PATCH), (PATCH, PATCH), (PATCH, PATCH), (CELL, CELL), BINS)
        self.size = (PATCH // CELL) ** 2 * BINS                            # per landmark

    def canonical(self, image: np.ndarray, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
        """The image warped so the face is at ``CANONICAL_SCALE`` with its origin in the middle:
        ``(gray uint8 [S, S], the 2x3 affine map from image pixels to it)``."""
        cv2 = self._cv2
        k = CANONICAL_SCALE / pose.scale
        side = int(round(0.30 * CANONICAL_SCALE)) + PATCH                  # the face (about 0.2 m) plus margins
        centre = np.asarray(pose.translation, np.float64)
        m = np.array([[k, 0.0, side / 2 - k * centre[0]], [0.0, k, side / 2 - k * centre[1]]])
        gray = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        out = cv2.warpAffine(gray, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out, m

    def __call__(self, canonical: np.ndarray, points: np.ndarray) -> np.ndarray:
        """``float32 [68 * 144]``: HOG at ``points [68, 2]`` (canonical pixels; patches clamped inside)."""
        side = canonical.shape[0]
        corners = np.clip(np.round(points - PATCH / 2).astype(int), 0, side - PATCH)
        locations = [(int(x), int(y)) for x, y in corners]
        return self.hog.compute(canonical, (CELL, CELL), (0, 0), locations).reshape(-1).astype(np.float32)


class Cascade:
    """``K`` ridge stages (``weights[k]`` ``[D + 1, P]``) with the feature normalisation
    (``mean[k]``, ``scale[k]`` ``[D]``), applied after a ``LandmarkFitter``."""

    def __init__(self, fitter: LandmarkFitter, config: CascadeConfig = CascadeConfig(),
                 weights: list[np.ndarray] | None = None, mean: list[np.ndarray] | None = None,
                 scale: list[np.ndarray] | None = None):
        self.fitter = fitter
        self.config = config
        self.hog = HogFeatures()
        self.weights = weights or []
        self.mean = mean or []
        self.scale = scale or []

    @property
    def trained_stages(self) -> int:
        return len(self.weights)

    def theta(self, fit: Fit) -> np.ndarray:
        """The fit's coefficients ``[a; b]`` in the model's canonical representative (``BilinearFace.canonical``)."""
        a, b = self.fitter.model.canonical(fit.identity, fit.expression)
        return np.concatenate([a, b])

    def features(self, image: np.ndarray, fit: Fit, landmarks: np.ndarray,
                 canonical: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """``phi``: HOG at the projected model landmarks and the displacements to ``landmarks``.
        ``canonical``: the frame's canonical image and map, when already made (``refine`` makes
        it once per frame, from the first fit's pose)."""
        f = self.fitter
        model_lm = fit.pose.project(f.landmarks3d(fit.identity, fit.expression, fit.landmark_ids))
        canon, m = canonical if canonical is not None else self.hog.canonical(image, fit.pose)
        to_canon = lambda p: p @ m[:, :2].T + m[:, 2]                     # noqa: E731
        hog = self.hog(canon, to_canon(model_lm))
        disp = (to_canon(landmarks) - to_canon(model_lm)).reshape(-1) / PATCH * self.config.displacement_weight
        return np.concatenate([hog, disp.astype(np.float32)])

    def update(self, fit: Fit, theta: np.ndarray, landmarks: np.ndarray, freeze_identity: bool = False) -> Fit:
        """The fit with coefficients ``theta`` (canonical), its contour and camera re-solved linearly.
        ``freeze_identity``: the fit's own identity kept, the expression brought to its representative
        (``S(r a, b) = S(a, r b)`` with ``r`` the canonical identity's scale over the fit's)."""
        f = self.fitter
        n_id = len(fit.identity)
        a, b = theta[:n_id], theta[n_id:]
        if freeze_identity:
            r = f.model.canonical(fit.identity, fit.expression)[0][0] / fit.identity[0]
            a, b = fit.identity, b * r
        ids = f.landmark_ids(a, b, fit.pose.rotation)
        pose = solve_pose(f.landmarks3d(a, b, ids), landmarks, f.weights)
        return Fit(a, b, pose, ids, f.rms(a, b, pose, ids, landmarks))

    def step(self, k: int, image: np.ndarray, fit: Fit, landmarks: np.ndarray,
             freeze_identity: bool = False, canonical: tuple[np.ndarray, np.ndarray] | None = None) -> Fit:
        """Stage ``k`` applied to ``fit``."""
        phi = (self.features(image, fit, landmarks, canonical) - self.mean[k]) / self.scale[k]
        w = self.weights[k]
        delta = phi.astype(np.float32) @ w[:-1] + w[-1]
        return self.update(fit, self.theta(fit) + delta, landmarks, freeze_identity)

    def refine(self, image: np.ndarray, fit: Fit, landmarks: np.ndarray, stages: int | None = None,
               freeze_identity: bool = False) -> list[Fit]:
        """Every stage's fit, starting with ``fit`` (the landmark fitting's): ``[fit, after 1, ...]``."""
        out = [fit]
        n = self.trained_stages if stages is None else min(stages, self.trained_stages)
        canonical = self.hog.canonical(image, fit.pose) if n else None
        for k in range(n):
            out.append(self.step(k, image, out[-1], landmarks, freeze_identity, canonical))
        return out

    def learn_stage(self, phis: np.ndarray, deltas: np.ndarray) -> None:
        """Fit the next stage: features ``[n, D]`` -> coefficient updates ``[n, P]`` (ridge, solved
        in the dual when there are fewer samples than features)."""
        mean = phis.mean(axis=0)
        scale = phis.std(axis=0) + 1e-6
        x = ((phis - mean) / scale).astype(np.float64)
        x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
        lam = self.config.ridge * (x ** 2).sum(axis=1).mean()
        if len(x) < x.shape[1]:
            w = x.T @ np.linalg.solve(x @ x.T + lam * np.eye(len(x)), deltas)
        else:
            w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ deltas)
        self.weights.append(w.astype(np.float32))
        self.mean.append(mean.astype(np.float32))
        self.scale.append(scale.astype(np.float32))


# ---- checkpoint ----------------------------------------------------------------------------------

FAMILY = "tracker"
#: the dtype of each tensor of its checkpoint (``save_tracker``: regressors float16)
DTYPES = {"stage*.weights": "float16", "stage*.mean": "float32", "stage*.scale": "float32"}


def save_tracker(path, cascade: Cascade, data: dict | None = None, metrics: dict | None = None):
    """One safetensors file: every stage's regressor (float16) and feature normalisation; the
    config names the bilinear model and the fitting it runs after (rebuilt from SynthFace)."""
    import torch

    from models.checkpoint import CheckpointMeta, save_checkpoint

    f = cascade.fitter
    state = {}
    for k in range(cascade.trained_stages):
        state[f"stage{k}.weights"] = torch.from_numpy(cascade.weights[k].astype(np.float16))
        state[f"stage{k}.mean"] = torch.from_numpy(cascade.mean[k])
        state[f"stage{k}.scale"] = torch.from_numpy(cascade.scale[k])
    config = {"cascade": cascade.config.to_dict(), "fit": asdict(f.config), "bilinear": asdict(f.model.config),
              "trained_stages": cascade.trained_stages}
    meta = CheckpointMeta(family=FAMILY, config=config, topology_id=f.model.topology_id, data=dict(data or {}),
                          metrics=dict(metrics or {}))
    return save_checkpoint(path, state, meta)


def _check_stages(path, state: dict, stages: int, thetas: int | None) -> None:
    """Refuse stage tensors that are missing, extra, or not of the features' and the model's sizes:
    ``stage{k}.weights [D + 1, P]``, ``stage{k}.mean`` and ``.scale [D]`` with ``D`` the HOG and
    displacement features of the 68 landmarks and ``P`` the model's coefficients (``thetas``;
    None: any, the same for every stage)."""
    from models.checkpoint import CheckpointError, tensor_of
    from models.constants import N_LANDMARKS

    d = N_LANDMARKS * ((PATCH // CELL) ** 2 * BINS + 2)
    names = {f"stage{k}.{part}" for k in range(stages) for part in ("weights", "mean", "scale")}
    extra = sorted(set(state) - names)
    if extra:
        raise CheckpointError(f"{path}: tensors {', '.join(map(repr, extra))} beyond its {stages} trained stages")
    for k in range(stages):
        p = tensor_of(path, state, f"stage{k}.weights", (d + 1, thetas)).shape[1]
        thetas = p if thetas is None else thetas
        tensor_of(path, state, f"stage{k}.mean", (d,))
        tensor_of(path, state, f"stage{k}.scale", (d,))


def load_tracker(path, face=None, cache=None) -> Cascade:
    """The cascade of a ``tracker`` checkpoint with its fitter (the bilinear model from the cache,
    or built); refuses (``CheckpointError`` naming the file) a checkpoint for another topology,
    a config that does not fit, or stage tensors not of the features' and the model's sizes."""
    import torch

    from models.checkpoint import (
        CheckpointError, building, check_topology, config_from_dict, config_parts, load_checkpoint,
    )
    from models.face import synthface
    from models.tracking.bilinear import BilinearConfig, load_bilinear
    from models.tracking.fit import FitConfig

    dtypes = {pattern: getattr(torch, name) for pattern, name in DTYPES.items()}
    meta, state = load_checkpoint(path, family=FAMILY, dtypes=dtypes)
    face = face or synthface()
    check_topology(meta, face.template.topology_id, path)
    cascade, fit, bilinear, n = config_parts(meta.config, ("cascade", "fit", "bilinear", "trained_stages"), path)
    cascade = config_from_dict(CascadeConfig, cascade, path)
    fit = config_from_dict(FitConfig, fit, path)
    bilinear = config_from_dict(BilinearConfig, bilinear, path)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise CheckpointError(f"{path}: trained_stages must be a count, got {n!r}")
    if min(bilinear.identities, bilinear.id_dims, bilinear.exp_dims) < 1:
        raise CheckpointError(f"{path}: bilinear config {asdict(bilinear)} needs positive sizes")
    _check_stages(path, state, n, None)
    model = load_bilinear(face, bilinear, cache=cache)
    _check_stages(path, state, n, model.id_dims + model.exp_dims)
    with building(path, "tracker"):
        fitter = LandmarkFitter(model, face.template, fit)
    return Cascade(fitter, cascade,
                   [state[f"stage{k}.weights"].numpy().astype(np.float32) for k in range(n)],
                   [state[f"stage{k}.mean"].numpy() for k in range(n)],
                   [state[f"stage{k}.scale"].numpy() for k in range(n)])
