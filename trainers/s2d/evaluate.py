"""``facecast eval s2d``: the S2D paper's Tables 1 and 2 on a data folder.

Table 1: mean +- std per-vertex error (mm) of S2D-Dec and its baselines
(PCA-220, PCA-38, DL-3DMM with 220 atoms, the Neural3DMM-style
autoencoder), k-fold over identities and over expressions; the errors of
all test pairs of all folds are pooled. Table 2: the loss ablation (L_dr
only; + unweighted L_pr; + landmark-weighted L_pr) on one identity fold.
Also the cumulative per-vertex error curves (PNG), "do nothing" (the
neutral itself), and a yardstick that is not in the paper: the
least-squares linear map from landmark motion to vertex motion, learned on
the training pairs (how far a purely linear model gets on this data).

``--quick``: the shipped checkpoint and the PCA baselines on its own held-out
fold, in under two minutes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.constants import MM_PER_M
from models.s2d import load_s2d
from trainers.data.cache import FaceData
from trainers.progress import summary
from trainers.s2d.baselines import fit_meshes, train_dl, train_pca
from trainers.s2d.pairs import PairSet, make_pairs
from trainers.s2d.train import (
    S2DTrainConfig,
    make_split,
    predict,
    train_s2d,
    vertex_errors_mm,
)

#: the paper's Table 1 on CoMA (mm), the reference our figures sit beside
PAPER_TABLE1 = {"identity": {"S2D-Dec": 0.55, "PCA-220": 0.80, "DL-3DMM": 0.89, "Neural3DMM": 3.74}}
METHODS = ("S2D-Dec", "PCA-220", "PCA-38", "DL-3DMM", "Neural3DMM")
#: Table 2's rows: the loss terms (and S2DLoss weighting) of each variant
ABLATION = (("L_dr", "none"), ("L_dr + L_pr (unweighted)", "uniform"),
            ("L_dr + L_pr (landmark-weighted)", "landmark"))
CURVE_MAX_MM = 2.0
#: ridge of the linear-map yardstick, relative to the mean diagonal of its Gram matrix
LINEAR_MAP_RIDGE = 1e-4


def _stats(errors: list[np.ndarray]) -> dict[str, float]:
    e = np.concatenate([x.ravel() for x in errors])
    return {"mean_mm": round(float(e.mean()), 4), "std_mm": round(float(e.std()), 4),
            "median_mm": round(float(np.median(e)), 4)}


def linear_map(train: PairSet, test: PairSet) -> np.ndarray:
    """A yardstick, not one of the paper's methods: the (lightly ridged) least-squares linear map
    from the 204 landmark coordinates' motion to the vertices' motion, learned
    on the training pairs and applied to the test pairs. Returns test meshes."""
    def xy(p: PairSet):
        x = (p.target_lm - p.neutral_lm[p.seq]).reshape(len(p), -1).double().numpy()
        y = (p.target - p.neutral[p.seq]).reshape(len(p), -1).double().numpy()
        return x, y

    x, y = xy(train)
    gram = x.T @ x
    ridge = LINEAR_MAP_RIDGE * np.trace(gram) / len(gram)       # landmark motions are highly correlated
    a = np.linalg.solve(gram + ridge * np.eye(len(gram)), x.T @ y)
    xt, _ = xy(test)
    return (test.neutral[test.seq].double().numpy() + (xt @ a).reshape(len(test), -1, 3)).astype(np.float32)


def _fold_errors(data: FaceData, cfg: S2DTrainConfig, methods: tuple[str, ...], bar=None) -> dict[str, np.ndarray]:
    """Per-vertex errors ``[pairs, N]`` of each method on one fold (``bar``:
    a progress bar advanced once per method)."""
    split = make_split(data, cfg.split, cfg.folds, cfg.fold)
    train_pairs = make_pairs(data, split.train, cfg.frame_step)
    test_pairs = make_pairs(data, split.test, cfg.frame_step)
    t = data.template
    lw = t.landmarks.vertex_weights(t.n_vertices, t.faces)
    out = {"do nothing": np.linalg.norm((test_pairs.target - test_pairs.neutral[test_pairs.seq]).numpy(),
                                        axis=-1) * MM_PER_M,
           "linear map": vertex_errors_mm(linear_map(train_pairs, test_pairs), test_pairs)}
    pca = dict(zip(("PCA-220", "PCA-38"), train_pca(train_pairs, (220, 38), lw, seed=cfg.seed)))
    for name in methods:
        if bar is not None:
            bar.set_postfix_str(f"{cfg.split} fold {cfg.fold}: {name}")
        if name in pca:
            out[name] = vertex_errors_mm(fit_meshes(pca[name], test_pairs), test_pairs)
        elif name == "DL-3DMM":
            model = train_dl(train_pairs, 220, lw, seed=cfg.seed)
            out[name] = vertex_errors_mm(fit_meshes(model, test_pairs), test_pairs)
        else:
            which = "s2d" if name == "S2D-Dec" else "neural3dmm"
            net, _, _ = train_s2d(data, replace(cfg, model=which), show_progress=False)
            out[name] = vertex_errors_mm(predict(net, test_pairs), test_pairs)
        if bar is not None:
            bar.update(1)
    return out


def cumulative_plot(errors: dict[str, list[np.ndarray]], path: Path, title: str) -> None:
    """Share of vertices within each error (mm), one curve per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0.0, CURVE_MAX_MM, 201)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for name, parts in errors.items():
        e = np.sort(np.concatenate([p.ravel() for p in parts]))
        ax.plot(grid, np.searchsorted(e, grid, side="right") / len(e) * 100, label=name)
    ax.set_xlabel("per-vertex error (mm)")
    ax.set_ylabel("vertices within (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def full_eval(data: FaceData, split: str, base: S2DTrainConfig, plot_dir: Path, ablation: bool = True) -> dict:
    """Table 1 for one split (k folds, errors pooled over all test pairs), and
    Table 2 on its last fold."""
    pooled: dict[str, list[np.ndarray]] = {}
    per_fold = []
    steps = base.folds * len(METHODS) + (len(ABLATION) if ablation else 0)
    bar = tqdm(total=steps, desc=f"eval s2d {split}", unit="model", file=sys.stderr, dynamic_ncols=True)
    for fold in range(base.folds):
        t0 = time.perf_counter()
        errs = _fold_errors(data, replace(base, split=split, fold=fold), METHODS, bar)
        row = {k: round(float(v.mean()), 4) for k, v in errs.items()}
        per_fold.append(row)
        for k, v in errs.items():
            pooled.setdefault(k, []).append(v)
        bar.write(f"eval s2d {split} fold {fold}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items())
                  + f" mm ({time.perf_counter() - t0:.0f} s)")
    methods = {k: _stats(v) for k, v in pooled.items()}
    plot = plot_dir / f"s2d_cumulative_{split}.png"
    cumulative_plot(pooled, plot, f"S2D-Dec and baselines, {split} split, {base.folds} folds")
    result = {
        "split": split, "methods": methods, "per_fold_mean_mm": per_fold,
        "ratio_pca220_to_s2d": round(methods["PCA-220"]["mean_mm"] / methods["S2D-Dec"]["mean_mm"], 3),
        "paper_coma_mm": PAPER_TABLE1.get(split, {}), "curves_png": str(plot),
        "data": str(data.root), "frame_step": base.frame_step, "folds": base.folds,
        "minutes_per_network": (base.time_limit_s or 0) / 60,
    }
    if ablation:
        result["ablation"] = ablation_table(data, replace(base, split=split, fold=base.folds - 1), bar)
    bar.close()
    m = result["methods"]
    summary(f"eval s2d {split}: S2D-Dec {m['S2D-Dec']['mean_mm']:.4f} mm, PCA-220 {m['PCA-220']['mean_mm']:.4f}, "
            f"PCA-38 {m['PCA-38']['mean_mm']:.4f}, DL-3DMM {m['DL-3DMM']['mean_mm']:.4f}, "
            f"Neural3DMM {m['Neural3DMM']['mean_mm']:.4f} (pooled over {base.folds} folds)")
    return result


def ablation_table(data: FaceData, cfg: S2DTrainConfig, bar=None) -> dict:
    """Table 2 on one fold: the three loss variants, same data and budget."""
    split = make_split(data, cfg.split, cfg.folds, cfg.fold)
    test_pairs = make_pairs(data, split.test, cfg.frame_step)
    rows = {}
    for label, weighting in ABLATION:
        if bar is not None:
            bar.set_postfix_str(f"ablation: {label}")
        net, _, _ = train_s2d(data, replace(cfg, weighting=weighting), show_progress=False)
        rows[label] = _stats([vertex_errors_mm(predict(net, test_pairs), test_pairs)])
        if bar is not None:
            bar.update(1)
            bar.write(f"eval s2d ablation {label}: {rows[label]['mean_mm']:.4f} mm")
    return {"split": cfg.split, "fold": cfg.fold, "rows": rows}


def quick_eval(data: FaceData, checkpoint: Path, pca_step: int = 8) -> dict:
    """The shipped checkpoint and the PCA baselines on the checkpoint's held-out
    fold (PCA learned on every ``pca_step``-th training frame, for speed)."""
    model, meta = load_s2d(checkpoint, data.template.topology_id)
    c = meta.data.get("config", {})
    cfg = S2DTrainConfig(split=c.get("split", "identity"), folds=c.get("folds", 4), fold=c.get("fold", 3),
                         frame_step=c.get("frame_step", 4))
    split = make_split(data, cfg.split, cfg.folds, cfg.fold)
    train_pairs = make_pairs(data, split.train, max(cfg.frame_step, pca_step))
    test_pairs = make_pairs(data, split.test, cfg.frame_step)
    t = data.template
    lw = t.landmarks.vertex_weights(t.n_vertices, t.faces)
    errors = {"S2D-Dec": vertex_errors_mm(predict(model, test_pairs), test_pairs)}
    for m in train_pca(train_pairs, (220, 38), lw):
        errors[m.name] = vertex_errors_mm(fit_meshes(m, test_pairs), test_pairs)
    errors["linear map"] = vertex_errors_mm(linear_map(train_pairs, test_pairs), test_pairs)
    errors["do nothing"] = vertex_errors_mm(test_pairs.neutral[test_pairs.seq].numpy(), test_pairs)
    methods = {k: _stats([v]) for k, v in errors.items()}
    return {"split": cfg.split, "fold": cfg.fold, "folds": cfg.folds, "checkpoint": str(checkpoint),
            "recorded_test_mean_mm": meta.metrics.get("test_mean_mm"), "methods": methods,
            "ratio_pca220_to_s2d": round(methods["PCA-220"]["mean_mm"] / methods["S2D-Dec"]["mean_mm"], 3),
            "test_pairs": len(test_pairs), "pca_train_pairs": len(train_pairs)}


def evaluate_checkpoint_on(data: FaceData, checkpoint: Path, frames: np.ndarray, step: int) -> float:
    """Mean per-vertex error (mm) of a checkpoint on cache ``frames``."""
    model, _ = load_s2d(checkpoint, data.template.topology_id)
    pairs = make_pairs(data, frames, step)
    return float(vertex_errors_mm(predict(model, pairs), pairs).mean())


