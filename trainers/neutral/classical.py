"""Fitting the classical neutralizer (Pan et al., CVPR 2010) on a ``NeutralSet``.

Nothing is trained by gradient descent: ``models.neutral.classical.fit_classical``
computes the Karcher means, the two PCA spaces and the RBF regression in
closed form, with a progress bar per stage. The checkpoint's metrics are the
method's figures on the training faces (or on ``test`` when given).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from models.neutral.classical import Classical, ClassicalConfig, fit_classical, save_classical
from trainers.neutral.data import NeutralSet
from trainers.progress import progress, summary

#: faces per ``neutralize`` call when computing the checkpoint's figures
EVAL_BATCH = 32
#: at most this many faces enter those figures
EVAL_FACES = 512


def _bar(enabled: bool):
    def bar(items, total, desc):
        return progress(items, total=total, desc=desc, unit="step", enabled=enabled)
    return bar


def classical_figures(model: Classical, data: NeutralSet, faces: int = EVAL_FACES, seed: int = 0) -> dict:
    """AVDneu (mean, median, mm) on up to ``faces`` expressive faces of ``data``, the do-nothing
    distance, and the change of ``data``'s neutral faces."""
    from trainers.neutral.evaluate import batched, vertex_mm

    rng = np.random.default_rng(seed)
    idx = data.expressive()
    idx = np.sort(rng.choice(idx, min(faces, len(idx)), replace=False))
    err = vertex_mm(batched(model.neutralize, data.meshes[idx]), data.targets(idx))
    still = data.meshes[data.labels == "neutral"][:faces]
    return {"faces": int(len(idx)), "avd_neu_mm": float(err.mean()), "avd_neu_median_mm": float(np.median(err)),
            "input_to_neutral_mm": float(vertex_mm(data.meshes[idx], data.targets(idx)).mean()),
            "neutral_change_mm": (float(vertex_mm(batched(model.neutralize, still), still).mean())
                                  if len(still) else float("nan"))}


def train_classical(train: NeutralSet, out: str | Path | None = None, config: ClassicalConfig = ClassicalConfig(),
                    show_progress: bool = True, *, test: NeutralSet | None = None) -> Classical:
    """Fit on every face of ``train`` (its neutrals included: they map to themselves); write the
    checkpoint to ``out`` if given."""
    t0 = time.perf_counter()
    model = fit_classical(train.meshes, train.neutrals, train.template.faces, train.template.topology_id, config,
                          subject=train.subject, progress=_bar(show_progress),
                          data={"train": train.source, "train_identities": int(train.n_subjects),
                                "train_faces": len(train)})
    fit_s = time.perf_counter() - t0
    figures = classical_figures(model, test if test is not None else train)
    model.metrics = {**figures, "evaluated_on": "test" if test is not None else "train",
                     "fit_seconds": round(fit_s, 1)}
    if out is not None:
        save_classical(model, out)
    summary(f"classical neutralizer: fitted on {len(train)} faces in {fit_s:.0f} s; "
            f"AVDneu {figures['avd_neu_mm']:.3f} mm on {model.metrics['evaluated_on']} faces "
            f"(input {figures['input_to_neutral_mm']:.3f} mm)" + (f"; wrote {out}" if out else ""))
    return model
