"""S2D-Dec training, its loss, the linear baselines, and the shipped checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.checkpoint import read_meta
from models.s2d import load_s2d
from trainers.data.cache import FaceData
from trainers.data.synth import SynthConfig, generate
from trainers.s2d.baselines import fit_meshes, train_pca
from trainers.s2d.cli import shipped_checkpoint
from trainers.s2d.loss import S2DLoss, landmark_proximity_weights
from trainers.s2d.pairs import make_pairs
from trainers.s2d.train import (
    S2DTrainConfig,
    make_split,
    predict,
    train_s2d,
    vertex_errors_mm,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("s2d") / "data"
    generate(SynthConfig(identities=4, labels=("mouth_open", "high_smile", "eyebrow"), seed=3, write_ply=False),
             out, show_progress=False, report=False)
    return FaceData.open(out)


def test_landmark_weights_and_loss_variants(small):
    t = small.template
    w = landmark_proximity_weights(t.vertices, t.landmark_points())
    assert w.shape == (t.n_vertices,) and w.min() == 0.0 and w.max() == 1.0
    ids = t.landmarks.vertex_ids(t.faces)
    assert w[ids].mean() > 0.9 and np.median(w) < 0.3            # highest on the landmarks
    pred, true = torch.zeros(2, t.n_vertices, 3), torch.full((2, t.n_vertices, 3), 0.001)
    wt = torch.from_numpy(w)
    only, parts = S2DLoss(weighting="none")(pred, pred, true, true, wt)
    assert set(parts) == {"l_dr"} and float(only) == pytest.approx(1.0)        # 1 mm per coordinate
    full, parts = S2DLoss()(pred, pred, true, true, wt)
    assert float(full) == pytest.approx(1.0 + 0.1 * parts["l_pr"])
    with pytest.raises(ValueError, match="weighting"):
        S2DLoss(weighting="cubic")


def test_training_writes_a_checkpoint_that_rebuilds(small, tmp_path):
    cfg = S2DTrainConfig(folds=2, fold=1, frame_step=12, epochs=3, seed=1)
    model, history, metrics = train_s2d(small, cfg, out=tmp_path / "s2d.safetensors", show_progress=False)
    assert history.series("loss")[-1] < history.series("loss")[0]
    meta = read_meta(tmp_path / "s2d.safetensors")
    assert meta.topology_id == small.template.topology_id and meta.metrics["test_mean_mm"] > 0
    assert meta.data["test_subjects"] == ["synth_002", "synth_003"]
    back, _ = load_s2d(tmp_path / "s2d.safetensors", small.template.topology_id)
    split = make_split(small, "identity", 2, 1)
    pairs = make_pairs(small, split.test, 12)
    err = vertex_errors_mm(predict(back, pairs), pairs).mean()
    assert err == pytest.approx(metrics["test_mean_mm"], rel=1e-4)


def test_pca_baseline_fits_landmarks(small):
    split = make_split(small, "identity", 2, 1)
    train, test = make_pairs(small, split.train, 6), make_pairs(small, split.test, 6)
    t = small.template
    lw = t.landmarks.vertex_weights(t.n_vertices, t.faces)
    model = train_pca(train, 38, lw)
    pred = fit_meshes(model, test)
    err = vertex_errors_mm(pred, test).mean()
    nothing = vertex_errors_mm(test.neutral[test.seq].numpy(), test).mean()
    assert err < 0.5 * nothing


def test_shipped_checkpoint_meets_its_recorded_error():
    """Regenerate the shipped checkpoint's held-out subjects exactly (the
    generator is deterministic) and measure its error again."""
    path = shipped_checkpoint()
    meta = read_meta(path)
    gen, cfg = meta.data["generator"], meta.data["config"]
    held = [int(s.split("_")[1]) for s in meta.data["test_subjects"]]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        generate(SynthConfig(identities=gen["identities"], labels=tuple(gen["labels"]), fps=gen["fps"],
                             seed=gen["seed"], write_ply=False, only_subjects=tuple(held)),
                 f"{tmp}/held", show_progress=False, report=False)
        data = FaceData.open(f"{tmp}/held")
        model, _ = load_s2d(path, data.template.topology_id)
        pairs = make_pairs(data, np.arange(data.n_frames), cfg["frame_step"])
        err = vertex_errors_mm(predict(model, pairs), pairs)
        nothing = vertex_errors_mm(pairs.neutral[pairs.seq].numpy(), pairs)
        # no landmark motion: how far the decoder moves the face (stated, not zero)
        n, nl, _, _ = pairs.batch(torch.arange(8))
        with torch.no_grad():
            rest = model(n, torch.zeros(8, 68, 3), nl).displacement.norm(dim=-1).mean() * 1000
    print(f"shipped S2D-Dec: held-out {err.mean():.4f} mm (recorded {meta.metrics['test_mean_mm']:.4f}), "
          f"do-nothing {nothing.mean():.4f} mm, zero-input residual {float(rest):.4f} mm")
    assert len(pairs) == meta.metrics["test_pairs"]
    assert err.mean() == pytest.approx(meta.metrics["test_mean_mm"], rel=1e-3)
    assert err.mean() < 0.25 * nothing.mean()
    assert float(rest) < 0.05


def test_eval_quick_and_full_tables(small, tmp_path, capsys):
    """Both evaluation modes produce the documented JSON and the curves PNG."""
    import json

    from runtime.cli import main
    from trainers.s2d.evaluate import full_eval

    out = tmp_path / "quick.json"
    assert main(["eval", "s2d", "--quick", "--data", str(small.root), "--json", str(out)]) == 0
    quick = json.loads(out.read_text())
    assert main(["eval", "s2d", "--quick", "--data", str(tmp_path / "missing")]) == 2
    assert f"facecast eval s2d: {tmp_path / 'missing'}" in capsys.readouterr().err
    assert {"S2D-Dec", "PCA-220", "PCA-38"} <= set(quick["methods"])
    assert all(v["mean_mm"] > 0 for v in quick["methods"].values() if v["mean_mm"] is not None)
    base = S2DTrainConfig(folds=2, frame_step=16, epochs=2, time_limit_s=3.0)
    full = full_eval(small, "identity", base, tmp_path, ablation=True)
    assert full["split"] == "identity" and set(full["methods"]) >= {
        "S2D-Dec", "PCA-220", "PCA-38", "DL-3DMM", "Neural3DMM", "do nothing", "linear map"}
    for row in full["methods"].values():
        assert row["mean_mm"] >= 0 and row["std_mm"] >= 0
    assert len(full["per_fold_mean_mm"]) == 2
    assert set(full["ablation"]["rows"]) == {"L_dr", "L_dr + L_pr (unweighted)", "L_dr + L_pr (landmark-weighted)"}
    assert (tmp_path / "s2d_cumulative_identity.png").stat().st_size > 10_000


def test_bench_s2d_json(tmp_path, capsys):
    """``facecast bench s2d`` times the shipped decoder and its dense-matrix
    twin in one run, with the documented keys; the dense one costs more."""
    import json

    from runtime.cli import main

    path = tmp_path / "s2d.json"
    assert main(["bench", "s2d", "--threads", "1", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    for row in (result, result["dense_reference"]):
        assert {"params", "macs", "ms_batch1", "meshes_per_s"} <= set(row)
        assert set(row["meshes_per_s"]) == {"1", "16", "64"}
        assert row["ms_batch1"] > 0 and all(v > 0 for v in row["meshes_per_s"].values())
    assert result["params"] == result["dense_reference"]["params"] == 664_947
    assert result["dense_reference"]["macs"] > 5 * result["macs"]
    assert result["vertices"] == 5229
