"""The tracker's cascade: trained on SynthFace renders, evaluated on held-out
ones, saved and loaded; the train/eval commands and their errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from models.checkpoint import CheckpointError
from models.face import synthface
from models.tracking.cascade import CascadeConfig, load_tracker, save_tracker
from trainers.tracker.evaluate import evaluate
from trainers.tracker.renders import TrackerRenderConfig, render_samples
from trainers.tracker.train import TrackerTrainConfig, train_cascade

SMALL = TrackerRenderConfig(size=(320, 240), face_px=(110.0, 160.0))


@pytest.fixture(scope="module")
def face():
    return synthface()


@pytest.fixture(scope="module")
def trained(face, tracking_model):
    train = render_samples(SMALL, 80, show_progress=False)
    cfg = TrackerTrainConfig(images=80, cascade=CascadeConfig(stages=2))
    return train_cascade(train, tracking_model, face, cfg, show_progress=False)


def test_each_stage_lowers_the_training_error(trained):
    cascade, report = trained
    err = report["coefficient_error_per_stage"]
    assert cascade.trained_stages == 2 and len(err) == 3
    assert err[1] < err[0] and err[2] <= err[1] + 1e-9
    assert report["images"] == 80


def test_evaluation_reports_every_stage_per_yaw_bin_and_label(trained, face, tmp_path):
    cascade, _ = trained
    test = render_samples(TrackerRenderConfig(size=SMALL.size, face_px=SMALL.face_px, split="test"), 16,
                          show_progress=False)
    result = evaluate(cascade, test, face, show_progress=False, plots=tmp_path)
    assert result["stages"] == ["landmark fit", "stage 1", "stage 2"] and result["images"] == 16
    for row in result["overall"]:
        assert {"mae_x_mm", "mae_y_mm", "mae_z_mm", "mae_mm", "rmse_z_mm", "vertex_mm"} <= set(row)
        assert 0 < row["mae_mm"] < result["mean_face"]["mae_mm"]      # fitting beats the mean face
    assert sum(v["images"] for v in result["per_yaw"].values()) == 16
    assert sum(v["images"] for v in result["per_label"].values()) == 16
    assert {"mae_mm", "share", "every_yaw_bin"} <= set(result["cascade_gain"])
    assert (tmp_path / "tracker_cascade.png").stat().st_size > 10_000


def test_a_checkpoint_gives_back_the_same_cascade(trained, face, tmp_path):
    cascade, report = trained
    path = save_tracker(tmp_path / "t.safetensors", cascade, data={"renders": 80}, metrics=report)
    again = load_tracker(path, face, cache=tmp_path / "cache")
    assert again.trained_stages == 2 and again.fitter.model.config == cascade.fitter.model.config
    test = render_samples(TrackerRenderConfig(size=SMALL.size, face_px=SMALL.face_px, split="test"), 2,
                          show_progress=False)
    for i in range(2):
        f = cascade.fitter.fit(test.detected[i])
        a = cascade.refine(test.images[i], f, test.detected[i])[-1]
        b = again.refine(test.images[i], f, test.detected[i])[-1]
        np.testing.assert_allclose(again.theta(b), cascade.theta(a), atol=2e-3)    # float16 stage weights
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_tracker(tmp_path / "bad.safetensors", face)


def test_eval_tracker_names_a_missing_checkpoint(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "eval", "tracker", "--checkpoint",
                           str(tmp_path / "nope.safetensors"), "--quick", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "nope.safetensors" in proc.stderr


def test_the_shipped_cascade_beats_landmark_fitting_on_held_out_renders(tmp_path):
    """``facecast eval tracker --quick`` on the shipped checkpoint (60 test-split renders)."""
    report = tmp_path / "quick.json"
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "eval", "tracker", "--quick", "--quiet",
                           "--json", str(report)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(report.read_text())
    assert result["images"] == 60 and len(result["stages"]) == 5
    first, last = result["overall"][0]["mae_mm"], result["overall"][-1]["mae_mm"]
    assert last < 0.95 * first < result["mean_face"]["mae_mm"]
    assert "eval tracker:" in proc.stdout.splitlines()[-1]
