"""Landmark fitting of the bilinear model, as in the cascaded-regression paper.

Given 68 image landmarks (iBUG order, pixels), find the pose ``(R, s, t)``,
identity ``a`` and expression ``b`` whose projected model landmarks match
them::

    min  sum_l w_l | s F (R S(a, b)_l)[:2] + t - p_l |^2
         + lambda1 (a - mu_a)' Sigma_a^-1 (a - mu_a) + lambda2 (b - mu_b)' Sigma_b^-1 (b - mu_b)

alternating three linear problems: the pose with the shape fixed
(``camera.solve_pose``), then ``a`` with ``b`` fixed and ``b`` with ``a``
fixed (each a ridge regression, since ``S`` is linear in either). Residuals
are measured in millimetres (pixels over ``s``), so the ``lambda`` do not
depend on the image's size. The 17 jaw landmarks are a contour
(``contour.py``): before each round, each takes the vertex on its line that
is the silhouette under the current pose.

An identity can be frozen (the live tracker's, once it is confident): then
only pose and expression move.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.constants import MM_PER_M
from models.tracking.bilinear import BilinearFace
from models.tracking.camera import FLIP, Pose, solve_pose
from models.tracking.contour import CONTOUR, contour_lines, silhouette_ids


@dataclass(frozen=True)
class FitConfig:
    iterations: int = 4           #: rounds of pose -> identity -> expression
    lambda_id: float = 2.0        #: identity prior weight (mm^2 per squared Mahalanobis unit)
    lambda_exp: float = 2.0       #: expression prior weight
    contour_weight: float = 0.5   #: weight of the 17 jaw landmarks against the inner 51


@dataclass(frozen=True)
class Fit:
    """A fitted face: ``identity [id_dims]``, ``expression [exp_dims]``, its ``pose``, the 68
    vertices its landmarks sit on, and the RMS landmark residual in pixels."""

    identity: np.ndarray
    expression: np.ndarray
    pose: Pose
    landmark_ids: np.ndarray
    rms_px: float = field(default=float("nan"))


class LandmarkFitter:
    """Fits ``BilinearFace`` to 68 image landmarks (see the module docstring)."""

    def __init__(self, model: BilinearFace, template, config: FitConfig = FitConfig()):
        if model.n_vertices != template.n_vertices or model.topology_id != template.topology_id:
            raise ValueError(f"the bilinear model ({model.topology_id}) is not on template {template.name!r} "
                             f"({template.topology_id})")
        self.model = model
        self.config = config
        self.lines = contour_lines(template)
        self.fixed = template.landmarks.vertex_ids(template.faces)
        # every vertex a landmark can sit on, and the core at those only
        self.candidates = np.unique(np.concatenate([self.fixed, self.lines.vertices]))
        self._slot = np.full(template.n_vertices, -1, np.int64)
        self._slot[self.candidates] = np.arange(len(self.candidates))
        self.sub = model.sub(self.candidates)                         # [id, exp, M, 3]
        self._flat = self.sub.reshape(model.id_dims, model.exp_dims, -1)               # [id, exp, 3M]
        self._a_key: bytes | None = None
        self._a_flat: np.ndarray | None = None
        self.weights = np.ones(68)
        self.weights[CONTOUR] = config.contour_weight

    # ---- the model at the landmark candidates ------------------------------------------------
    def candidate_points(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``[M, 3]``: the candidate vertices of face ``(a, b)``. The core contracted with the last
        identity is kept: calls with the same ``a`` (a frozen identity, the expression solves, a
        cascade stage) cost a ``[exp] x [exp, 3M]`` product."""
        key = np.asarray(a, np.float64).tobytes()
        if key != self._a_key:
            self._a_key = key
            self._a_flat = np.tensordot(np.asarray(a, np.float64), self._flat, axes=(0, 0))    # [exp, 3M]
        return (np.asarray(b, np.float64) @ self._a_flat).reshape(-1, 3)

    def landmark_ids(self, a: np.ndarray, b: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        """The 68 landmark vertices under ``rotation`` (jaw on the silhouette)."""
        pts = np.zeros((self.model.n_vertices, 3))
        pts[self.candidates] = self.candidate_points(a, b)
        contour = silhouette_ids(rotation, pts, self.lines)
        return np.concatenate([contour, self.fixed[17:]])

    def landmarks3d(self, a: np.ndarray, b: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """``[68, 3]`` model landmarks at vertices ``ids``."""
        return self.candidate_points(a, b)[self._slots(ids)]

    def _slots(self, ids: np.ndarray) -> np.ndarray:
        return self._slot[np.asarray(ids, np.int64)]

    # ---- fitting -----------------------------------------------------------------------------
    def initial(self, landmarks: np.ndarray, identity: np.ndarray | None = None) -> Fit:
        """Mean identity (or ``identity``), neutral expression, the pose from a frontal correspondence."""
        a = self.model.id_mean.copy() if identity is None else np.asarray(identity, np.float64)
        b = self.model.neutral_exp.copy()
        ids = self.fixed.copy()
        pose = solve_pose(self.landmarks3d(a, b, ids), landmarks, self.weights)
        return Fit(a, b, pose, ids)

    def fit(self, landmarks: np.ndarray, init: Fit | None = None, identity: np.ndarray | None = None,
            iterations: int | None = None) -> Fit:
        """Fit to ``landmarks [68, 2]`` (pixels), from ``init`` (warm start) or ``initial``;
        ``identity`` given: frozen at it."""
        lm = np.asarray(landmarks, np.float64)
        if lm.shape != (68, 2) or not np.isfinite(lm).all():
            raise ValueError(f"fit needs 68 finite landmarks [68, 2], got {lm.shape}")
        state = init if init is not None else self.initial(lm, identity)
        a = state.identity if identity is None else np.asarray(identity, np.float64)
        b, pose = state.expression, state.pose
        for _ in range(self.config.iterations if iterations is None else iterations):
            ids = self.landmark_ids(a, b, pose.rotation)
            pose = solve_pose(self.landmarks3d(a, b, ids), lm, self.weights)
            core = self.sub[:, :, self._slots(ids)]                     # [id, exp, 68, 3]
            if identity is None:
                a = self._ridge(np.tensordot(b, core, axes=(0, 1)).transpose(1, 2, 0), lm, pose, a_prior=True)
            b = self._ridge(np.tensordot(a, core, axes=(0, 0)).transpose(1, 2, 0), lm, pose, a_prior=False)
        ids = self.landmark_ids(a, b, pose.rotation)
        pose = solve_pose(self.landmarks3d(a, b, ids), lm, self.weights)
        return Fit(a, b, pose, ids, self.rms(a, b, pose, ids, lm))

    def _ridge(self, basis: np.ndarray, lm: np.ndarray, pose: Pose, a_prior: bool) -> np.ndarray:
        """Solve the coefficients of ``basis [68, 3, D]`` (landmarks linear in them) against ``lm``."""
        r = pose.rotation[:2]                                          # [2, 3]
        jac = np.matmul(r, basis) * FLIP[None, :, None]                  # [68, 2, D]: image-plane metres per unit
        target = (lm - pose.translation) / pose.scale                   # metres
        w = np.repeat(self.weights, 2) * MM_PER_M ** 2
        j = jac.reshape(-1, jac.shape[-1])
        y = target.reshape(-1)
        m = self.model
        mean, var, lam = ((m.id_mean, m.id_var, self.config.lambda_id) if a_prior
                          else (m.exp_mean, m.exp_var, self.config.lambda_exp))
        prior = lam / np.maximum(var, 1e-12)
        lhs = j.T @ (w[:, None] * j) + np.diag(prior)
        rhs = j.T @ (w * y) + prior * mean
        return np.linalg.solve(lhs, rhs)

    def rms(self, a: np.ndarray, b: np.ndarray, pose: Pose, ids: np.ndarray, lm: np.ndarray) -> float:
        """RMS landmark residual (pixels) of a fit."""
        return float(np.sqrt(((pose.project(self.landmarks3d(a, b, ids)) - lm) ** 2).sum(-1).mean()))

    def mesh(self, fit: Fit) -> np.ndarray:
        """The fitted face ``float32 [N, 3]`` in model space (metres, no pose)."""
        return self.model.mesh(fit.identity, fit.expression)
