"""``facecast eval neutral``: every neutralizer side by side on unseen identities.

The test faces are SynthFace renders of the ``test`` population (identities
no method or S2D-Dec trained on): for each identity, its true neutral and
``expressions`` faces (the 12 labels at 35-100 % intensity and random
blendshape mixes). Figures, in millimetres:

    avd_neu_mm      mean over faces of the mean per-vertex distance from the
                    neutralized face to the true neutral (AVDneu); median too
    e_dis_mm        within-identity spread of the predicted neutrals: mean
                    distance of each to its identity's mean prediction
    e_rec_mm        reconstruction error, for methods that encode and decode
    rank1           identification: each neutralized face's nearest true
                    neutral (by mean vertex distance) is its own identity's
                    (Kacem's protocol, neutrals as the gallery)
    transfer_mm     identity A's expression moved onto identity B's neutral,
                    against B's true mesh for A's blendshape weights
    ms_per_frame    one face at a time (median), as a live stream asks

Baselines: "do nothing" (the input itself, ``input_to_neutral_mm``) and
"mean face" (the training identities' mean neutral for everyone).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.constants import MM_PER_M
from models.face import synthface
from models.neutral import MeanFace, Neutralizer
from trainers.neutral.data import NeutralDataConfig, NeutralSet, split_identities, synth_set

#: the methods in the order of the table
ORDER = ("classical", "latent_gan", "pointnet_vae", "pointnet_vae_gt", "s2d", "mean_face")
#: faces per call of ``neutralize`` while evaluating
BATCH = 32
#: gallery rows compared at once in rank-1 identification
GALLERY_CHUNK = 64


@dataclass(frozen=True)
class NeutralEvalConfig:
    identities: int = 40             #: unseen test identities
    expressions: int = 24            #: expressive faces each
    transfer_pairs: int = 240        #: (A's face, B) pairs
    timing_frames: int = 30          #: batch-1 calls timed per method
    train_identities: int = 240      #: whose mean neutral is the "mean face"
    seed: int = 0


QUICK = NeutralEvalConfig(identities=16, expressions=12, transfer_pairs=96, timing_frames=10)


def vertex_mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean per-vertex distance of each face pair, ``[B]`` mm."""
    return np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32), axis=-1).mean(axis=-1) * MM_PER_M


def batched(fn, x: np.ndarray, *more: np.ndarray) -> np.ndarray:
    return np.concatenate([fn(x[i:i + BATCH], *(m[i:i + BATCH] for m in more)) for i in range(0, len(x), BATCH)])


def rank1(pred: np.ndarray, subject: np.ndarray, gallery: np.ndarray) -> float:
    """Share of predictions whose nearest gallery face is their own identity's."""
    hits = 0
    for i in range(0, len(pred), GALLERY_CHUNK):
        p = pred[i:i + GALLERY_CHUNK]
        d = np.stack([vertex_mm(p, np.broadcast_to(g, p.shape)) for g in gallery], axis=1)   # [b, S]
        hits += int((d.argmin(axis=1) == subject[i:i + GALLERY_CHUNK]).sum())
    return hits / len(pred)


def spread(pred: np.ndarray, subject: np.ndarray) -> float:
    """E_dis: mean distance of each predicted neutral to its identity's mean prediction (mm)."""
    per = [vertex_mm(pred[subject == s], pred[subject == s].mean(axis=0, keepdims=True)).mean()
           for s in np.unique(subject)]
    return float(np.mean(per))


def transfer_pairs(test: NeutralSet, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs: (an expressive face of identity A, an identity B != A)."""
    rng = np.random.default_rng([seed, 17])
    faces = rng.choice(test.expressive(), size=n, replace=n > len(test.expressive()))
    shift = rng.integers(1, test.n_subjects, size=n)
    return faces, (test.subject[faces] + shift) % test.n_subjects


def frame_ms(method: Neutralizer, faces: np.ndarray) -> float:
    """Median wall time of ``neutralize`` on one face (after one warm-up call)."""
    method.neutralize(faces[:1])
    times = []
    for f in faces:
        t0 = time.perf_counter()
        method.neutralize(f[None])
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def evaluate_method(method: Neutralizer, test: NeutralSet, pairs: tuple[np.ndarray, np.ndarray],
                    truth: np.ndarray, cfg: NeutralEvalConfig) -> dict:
    """Every figure of one method (see the module docstring)."""
    idx = test.expressive()
    faces = test.meshes[idx]
    pred = batched(method.neutralize, faces)
    err = vertex_mm(pred, test.targets(idx))
    labels = test.labels[idx]
    row = {"avd_neu_mm": float(err.mean()), "avd_neu_median_mm": float(np.median(err)),
           "e_dis_mm": spread(pred, test.subject[idx]), "rank1": rank1(pred, test.subject[idx], test.neutrals),
           "per_label_mm": {lab: float(err[labels == lab].mean()) for lab in np.unique(labels)}}
    rec = method.reconstruct(faces[:1])
    row["e_rec_mm"] = None if rec is None else float(vertex_mm(batched(method.reconstruct, faces), faces).mean())
    a, b = pairs
    moved = batched(method.transfer, test.meshes[a], test.neutrals[b])
    row["transfer_mm"] = float(vertex_mm(moved, truth).mean())
    still = test.meshes[test.labels == "neutral"]
    change = vertex_mm(batched(method.neutralize, still), still)
    row["neutral_change_mm"] = float(change.mean())
    row["neutral_change_p90_mm"] = float(np.percentile(change, 90))
    row["neutral_change_worst_mm"] = float(change.max())
    row["ms_per_frame"] = frame_ms(method, faces[:cfg.timing_frames])
    return row


def run(methods: dict[str, tuple[Neutralizer, str]], cfg: NeutralEvalConfig = NeutralEvalConfig(),
        show_progress: bool = True, plots: Path | None = None) -> dict:
    """Evaluate ``{name: (method, where it came from)}`` plus the baselines; the JSON."""
    t0 = time.perf_counter()
    face = synthface()
    test = synth_set(NeutralDataConfig(identities=cfg.identities, expressions=cfg.expressions, split="test",
                                       seed=cfg.seed), face, show_progress=show_progress)
    mean = face.neutral(split_identities("train", cfg.train_identities, cfg.seed)).mean(axis=0)
    methods = {**methods, "mean_face": (MeanFace(mean, test.template.topology_id), "train identities' mean")}
    idx = test.expressive()
    a, b = transfer_pairs(test, cfg.transfer_pairs, cfg.seed)
    truth = face.vertices(test.identity[b], test.weights[a]).astype(np.float32)
    names = [n for n in ORDER if n in methods] + sorted(set(methods) - set(ORDER))
    rows: dict[str, dict] = {}
    bar = tqdm(names, desc="eval neutral", unit="method", disable=not show_progress, file=sys.stderr, leave=False)
    for name in bar:
        bar.set_postfix_str(name)
        method, origin = methods[name]
        rows[name] = {**evaluate_method(method, test, (a, b), truth, cfg), "checkpoint": str(origin)}
    inp = vertex_mm(test.meshes[idx], test.targets(idx))
    labels = test.labels[idx]
    out = {
        "input_to_neutral_mm": float(inp.mean()),
        "input_to_neutral_median_mm": float(np.median(inp)),
        "input_per_label_mm": {lab: float(inp[labels == lab].mean()) for lab in np.unique(labels)},
        "transfer_reference": {
            "target_neutral_mm": float(vertex_mm(test.neutrals[b], truth).mean()),
            "true_displacement_mm": float(vertex_mm(test.neutrals[b] + test.meshes[a] - test.targets(a),
                                                    truth).mean()),
        },
        "methods": rows,
        "test": {"identities": cfg.identities, "faces": int(len(idx)), "transfer_pairs": cfg.transfer_pairs,
                 "population": "SynthFace test split (unseen identities)"},
        "config": asdict(cfg),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    learned = {n: r for n, r in rows.items() if n != "mean_face"}
    if learned:
        best = min(learned, key=lambda n: learned[n]["avd_neu_mm"])
        out["best"] = {"method": best, "avd_neu_mm": learned[best]["avd_neu_mm"],
                       "ratio_to_input": learned[best]["avd_neu_mm"] / out["input_to_neutral_mm"]}
    if plots is not None:
        out["plots"] = [str(p) for p in write_plots(out, test, methods, plots)]
    return out


def headline(result: dict) -> str:
    """The one-line summary of a finished evaluation."""
    best = result.get("best")
    methods = [n for n in result["methods"] if n != "mean_face"]
    return (f"eval neutral: {len(methods)} methods and the mean face on {result['test']['faces']} faces of "
            f"{result['test']['identities']} unseen identities in {result['seconds']:.0f} s; "
            f"input {result['input_to_neutral_mm']:.3f} mm"
            + (f", best {best['method']} {best['avd_neu_mm']:.3f} mm ({best['ratio_to_input']:.2f} x input)"
               if best else ""))


def write_plots(result: dict, test: NeutralSet, methods: dict, folder: Path) -> list[Path]:
    """AVDneu per method and label (bar chart) and one face's error heat maps per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    rows = result["methods"]
    labels = sorted(result["input_per_label_mm"])
    names = ["input"] + [n for n in rows if n != "mean_face"]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        per = result["input_per_label_mm"] if name == "input" else rows[name]["per_label_mm"]
        ax.bar(np.arange(len(labels)) + k * width, [per.get(lab, np.nan) for lab in labels], width, label=name)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=35, ha="right")
    ax.set_ylabel("AVDneu (mm, mean per vertex)")
    ax.set_title("Neutralization error on unseen SynthFace identities, per expression (input = do nothing)")
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    bars = folder / "neutral_avd_per_label.png"
    fig.savefig(bars, dpi=110)
    plt.close(fig)
    return [bars, heatmaps(test, methods, folder / "neutral_heatmaps.png")]


def heatmaps(test: NeutralSet, methods: dict, path: Path, label: str = "mouth_open") -> Path:
    """One unseen face of ``label``: its distance to the true neutral, as given and after each method."""
    from dataclasses import replace

    from runtime.frames import Frame, Topology
    from runtime.render import Camera, FaceView, Renderer, Style
    from runtime.render.images import grid, save_image

    i = int(np.flatnonzero(test.labels == label)[0])
    face, truth = test.meshes[i], test.targets(np.array([i]))[0]
    shown = [("input", face)] + [(n, m.neutralize(face[None])[0]) for n, (m, _) in methods.items()
                                 if n != "mean_face"]
    errors = [np.linalg.norm(v - truth, axis=-1) * MM_PER_M for _, v in shown]
    top = float(max(e.max() for e in errors))
    topo = Topology.from_template(test.template)
    style = replace(Style(heatmap=True, landmarks=False, colorbar=False), scalar_range=(0.0, top))
    tiles = []
    with Renderer.headless(size=(320, 320)) as renderer:
        view = FaceView(renderer)
        camera = Camera.named("front").fit(truth, aspect=1.0)
        for (_, v), e in zip(shown, errors):
            view.set_frame(Frame(v.astype(np.float32), topo, scalar=e.astype(np.float32),
                                 scalar_name="mm to true neutral"))
            view.draw(camera, style)
            tiles.append(renderer.read_rgba())
    captions = [f"{n} {e.mean():.3f} mm" for (n, _), e in zip(shown, errors)]
    captions[0] += f" (colour 0-{top:.1f} mm)"
    save_image(path, grid(tiles, columns=min(len(tiles), 6), captions=captions, caption_size=14))
    return path
