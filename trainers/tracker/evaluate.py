"""``facecast eval tracker``: the paper's evaluation on held-out renders.

For every test render (SynthFace identities of the test split, never seen
in training): the landmark fitting on its detected landmarks, then each
cascade stage; each result's mesh against the true mesh, after the best
similarity transform (a scaled orthographic camera sees neither the face's
depth offset nor its absolute size). Errors in millimetres: MAE along x, y
and z, RMSE along z (the paper's two measures) and the mean per-vertex
distance; overall, per yaw bin and per expression label, for "landmark fit"
and after each stage. The mean face (mean identity, neutral expression) is
the trivial baseline.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.constants import MM_PER_M

#: yaw bins (absolute degrees)
YAW_BINS = ((0, 15), (15, 30), (30, 45), (45, 61))


def similarity_aligned(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``pred [N, 3]`` moved onto ``truth`` by the best similarity (Umeyama)."""
    p, t = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    pc, tc = p - p.mean(0), t - t.mean(0)
    u, s, vt = np.linalg.svd(tc.T @ pc)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    c = (s * np.diag(d)).sum() / (pc ** 2).sum()
    return c * pc @ (u @ d @ vt).T + t.mean(0)


def errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``[mae_x, mae_y, mae_z, rmse_z, vertex]`` in mm after alignment."""
    d = (similarity_aligned(pred, truth) - truth) * MM_PER_M
    return np.array([*np.abs(d).mean(0), np.sqrt((d[:, 2] ** 2).mean()), np.linalg.norm(d, axis=1).mean()])


def _summary(e: np.ndarray) -> dict:
    """Mean of rows of ``errors``."""
    m = e.mean(axis=0)
    return {"mae_x_mm": float(m[0]), "mae_y_mm": float(m[1]), "mae_z_mm": float(m[2]),
            "mae_mm": float(m[:3].mean()), "rmse_z_mm": float(m[3]), "vertex_mm": float(m[4])}


def evaluate(cascade, samples, face, show_progress: bool = True, plots: Path | None = None) -> dict:
    """Every figure of the module docstring for ``samples`` (a ``TrackerSamples``)."""
    t0 = time.perf_counter()
    fitter = cascade.fitter
    model = fitter.model
    truth = face.vertices(samples.identity, samples.weights)
    mean_face = model.mesh(model.id_mean, model.neutral_exp)
    n, k = len(truth), cascade.trained_stages
    err = np.empty((n, k + 1, 5))
    base = np.empty((n, 5))
    for i in tqdm(range(n), desc="eval tracker", unit="image", disable=not show_progress, file=sys.stderr,
                  leave=False):
        fits = cascade.refine(samples.images[i], fitter.fit(samples.detected[i]), samples.detected[i])
        for s, f in enumerate(fits):
            err[i, s] = errors(model.mesh(f.identity, f.expression), truth[i])
        base[i] = errors(mean_face, truth[i])
    names = ["landmark fit"] + [f"stage {s + 1}" for s in range(k)]
    yaw = np.abs(np.asarray(samples.yaw, np.float64))
    labels = np.asarray(samples.labels)
    out = {
        "stages": names,
        "overall": [_summary(err[:, s]) for s in range(k + 1)],
        "mean_face": _summary(base),
        "per_yaw": {f"{lo}-{min(hi, 60)}": {"images": int(((yaw >= lo) & (yaw < hi)).sum()),
                                            "stages": [_summary(err[(yaw >= lo) & (yaw < hi), s])
                                                       for s in range(k + 1)]}
                    for lo, hi in YAW_BINS if ((yaw >= lo) & (yaw < hi)).any()},
        "per_label": {lab: {"images": int((labels == lab).sum()),
                            "stages": [_summary(err[labels == lab, s]) for s in range(k + 1)]}
                      for lab in sorted(set(labels))},
        "images": n,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    first, last = out["overall"][0]["mae_mm"], out["overall"][-1]["mae_mm"]
    out["cascade_gain"] = {"mae_mm": first - last, "share": (first - last) / first if first else 0.0,
                           "every_yaw_bin": all(v["stages"][-1]["mae_mm"] < v["stages"][0]["mae_mm"]
                                                for v in out["per_yaw"].values())}
    if plots is not None:
        out["plots"] = [str(write_plot(out, Path(plots)))]
    return out


def headline(result: dict) -> str:
    o = result["overall"]
    return (f"eval tracker: {result['images']} held-out renders; MAE {o[0]['mae_mm']:.2f} mm after landmark "
            f"fitting, {o[-1]['mae_mm']:.2f} mm after {len(o) - 1} cascade stages "
            f"({100 * result['cascade_gain']['share']:.1f} % lower; mean face {result['mean_face']['mae_mm']:.2f} mm)")


def write_plot(result: dict, folder: Path) -> Path:
    """MAE per cascade stage, one line per yaw bin and overall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    x = np.arange(len(result["stages"]))
    for name, v in result["per_yaw"].items():
        ax.plot(x, [s["mae_mm"] for s in v["stages"]], marker="o", label=f"|yaw| {name} deg ({v['images']})")
    ax.plot(x, [s["mae_mm"] for s in result["overall"]], "k-", lw=2.5, marker="s", label="all")
    ax.set_xticks(x, result["stages"])
    ax.set_ylabel("MAE (mm, x/y/z mean, after similarity alignment)")
    ax.set_title("tracker on held-out SynthFace renders")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = folder / "tracker_cascade.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
