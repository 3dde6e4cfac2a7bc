"""``facecast train tracker``: the cascade's stages, learned on SynthFace renders.

For every training render (``trainers.tracker.renders``): its ground truth
in the bilinear model's coefficients (the model's closest face to the true
mesh, ``BilinearFace.coefficients``), and the landmark fitting's result on
its detected (noisy) landmarks. Stage ``k`` regresses the remaining
coefficient error ``theta* - theta_k`` from the features at ``theta_k``
(ridge), then every training fit moves by its prediction and the camera is
re-solved: the next stage learns from where this one leaves the faces, as
the paper trains its cascade.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.tracking.bilinear import BilinearConfig, BilinearFace
from models.tracking.cascade import Cascade, CascadeConfig
from models.tracking.fit import FitConfig, LandmarkFitter


@dataclass(frozen=True)
class TrackerTrainConfig:
    images: int = 1200                                   #: training renders
    cascade: CascadeConfig = field(default_factory=CascadeConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    bilinear: BilinearConfig = field(default_factory=BilinearConfig)
    seed: int = 0


def truth(model: BilinearFace, face, samples) -> np.ndarray:
    """``theta*`` ``[n, id_dims + exp_dims]``: each render's true mesh in the model's coefficients
    (canonical representative: the size a scaled orthographic camera cannot see is factored out)."""
    meshes = face.vertices(samples.identity, samples.weights)
    a, b = model.canonical(*model.coefficients(meshes))
    return np.concatenate([a, b], axis=1)


def initial_fits(fitter: LandmarkFitter, samples, show_progress: bool = False) -> list:
    """The landmark fitting of every sample's detected landmarks (what the cascade starts from)."""
    return [fitter.fit(samples.detected[i])
            for i in tqdm(range(len(samples.detected)), desc="tracker: landmark fitting", unit="image",
                          disable=not show_progress, file=sys.stderr, leave=False)]


def train_cascade(samples, model: BilinearFace, face, cfg: TrackerTrainConfig = TrackerTrainConfig(),
                  show_progress: bool = True) -> tuple[Cascade, dict]:
    """The cascade learned on ``samples``; and the training figures (coefficient error per stage)."""
    t0 = time.perf_counter()
    fitter = LandmarkFitter(model, face.template, cfg.fit)
    cascade = Cascade(fitter, cfg.cascade)
    target = truth(model, face, samples)
    fits = initial_fits(fitter, samples, show_progress)
    first = list(fits)              # every stage reads the canonical image of the first fit's pose, as ``refine``
    errors = [float(np.sqrt(((target - np.stack([cascade.theta(f) for f in fits])) ** 2).sum(1).mean()))]
    n = len(fits)
    bar = tqdm(total=cfg.cascade.stages * n * 2, desc="tracker: cascade", unit="step", disable=not show_progress,
               file=sys.stderr, leave=False)
    for k in range(cfg.cascade.stages):
        phis = np.empty((n, 68 * cascade.hog.size + 136), np.float32)
        for i, f in enumerate(fits):
            canonical = cascade.hog.canonical(samples.images[i], first[i].pose)
            phis[i] = cascade.features(samples.images[i], f, samples.detected[i], canonical)
            bar.update()
        theta = np.stack([cascade.theta(f) for f in fits])
        cascade.learn_stage(phis, target - theta)
        moved = []
        for i, f in enumerate(fits):
            x = (phis[i] - cascade.mean[k]) / cascade.scale[k]
            moved.append(cascade.update(f, theta[i] + np.append(x, 1.0) @ cascade.weights[k], samples.detected[i]))
            bar.update()
        fits = moved
        errors.append(float(np.sqrt(((target - np.stack([cascade.theta(f) for f in fits])) ** 2).sum(1).mean())))
        bar.set_postfix_str(f"stage {k + 1}: coefficient error {errors[-1]:.4f}")
    bar.close()
    report = {"images": n, "coefficient_error_per_stage": errors, "seconds": round(time.perf_counter() - t0, 1),
              "config": {"cascade": asdict(cfg.cascade), "fit": asdict(cfg.fit), "bilinear": asdict(cfg.bilinear)}}
    return cascade, report

