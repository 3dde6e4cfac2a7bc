"""Fitting the S2D method's landmark estimator (its S2D-Dec is the shipped or a
trained ``s2d`` checkpoint; nothing else to learn)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from models.constants import MM_PER_M
from models.neutral.s2d import LandmarkEstimator, LandmarkEstimatorConfig, fit_landmark_estimator
from trainers.neutral.data import NeutralSet
from trainers.progress import summary


def train_landmark_estimator(train: NeutralSet, out: str | Path | None = None,
                             config: LandmarkEstimatorConfig | None = None) -> LandmarkEstimator:
    """Fit on every face of ``train`` (its neutral faces included: they map to themselves)."""
    t0 = time.perf_counter()
    cfg = config or LandmarkEstimatorConfig(topology_id=train.template.topology_id)
    lm = train.template.landmark_points(train.meshes)
    target = train.template.landmark_points(train.neutrals)[train.subject]
    est = fit_landmark_estimator(lm, target, cfg)
    fit_mm = float(np.linalg.norm(est.estimate(lm) - target, axis=-1).mean() * MM_PER_M)
    metrics = {"train_landmark_mm": fit_mm, "faces": len(train), "seconds": time.perf_counter() - t0}
    if out is not None:
        est.save(out, data=train.source, metrics=metrics)
    summary(f"neutral landmark estimator: {len(train)} faces in {metrics['seconds']:.1f} s; "
            f"training landmarks recovered to {fit_mm:.4f} mm" + (f"; wrote {out}" if out else ""))
    return est
