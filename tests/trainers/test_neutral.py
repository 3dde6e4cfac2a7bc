"""Neutralization data (SynthFace splits, data folders) and the train/eval commands."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from models.face import synthface
from trainers.neutral.data import NeutralDataConfig, folder_set, sample_expressions, synth_set


def test_synth_sets_pair_faces_with_their_true_neutrals():
    s = synth_set(NeutralDataConfig(identities=4, expressions=6), show_progress=False)
    assert s.meshes.shape == (4 * 7, 5229, 3) and s.neutrals.shape == (4, 5229, 3)
    still = s.labels == "neutral"
    assert still.sum() == 4 and np.allclose(s.meshes[still], s.neutrals) and not s.weights[still].any()
    moved = np.linalg.norm(s.meshes[~still] - s.targets(~still), axis=-1).max(axis=1)
    assert (moved > 1e-4).all()                                   # every expressive face moves somewhere
    again = synthface().vertices(s.identity[s.subject[5:6]], s.weights[5:6])
    np.testing.assert_allclose(again[0], s.meshes[5], atol=1e-6)  # the weights are the truth


def test_train_and_test_identities_are_disjoint_populations():
    train = synth_set(NeutralDataConfig(identities=30, expressions=1), show_progress=False)
    test = synth_set(NeutralDataConfig(identities=30, expressions=1, split="test"), show_progress=False)
    gaps = np.linalg.norm(train.identity[:, None] - test.identity[None], axis=-1)
    assert gaps.min() > 0.5
    with pytest.raises(ValueError, match="split"):
        NeutralDataConfig(split="validation")


def test_expressions_mix_labels_and_random_blendshape_mixes():
    w, labels = sample_expressions(200, np.random.default_rng(0), mix_share=0.25)
    assert 30 < (labels == "mix").sum() < 70 and len(set(labels) - {"mix"}) == 12
    assert w.min() >= 0 and w.max() <= 1 and (w.sum(axis=1) > 0).all()


def test_a_data_folder_reads_as_a_neutral_set(synth_data):
    s = folder_set(synth_data)
    assert s.n_subjects == 3 and len(s) > 0
    assert (s.labels == "neutral").any() and {"mouth_open", "eyebrow"} <= set(s.labels)
    np.testing.assert_allclose(s.meshes[s.labels == "neutral"], s.targets(s.labels == "neutral"), atol=1e-6)
    one = folder_set(synth_data, subjects=[1])
    assert one.n_subjects == 1 and (one.subject == 0).all()


def test_train_neutral_s2d_writes_a_checkpoint_the_eval_uses(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "train", "neutral", "--method", "s2d",
                           "--identities", "60", "--expressions", "8", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "landmarks.safetensors").is_file() and "neutral landmark estimator" in proc.stdout
    report = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "eval", "neutral", "--models", str(out),
                           "--identities", "4", "--quick", "--quiet", "--json", str(report)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(report.read_text())
    rows = result["methods"]
    assert rows["s2d"]["checkpoint"] == str(out / "landmarks.safetensors")
    for name, row in rows.items():
        assert {"avd_neu_mm", "e_dis_mm", "rank1", "transfer_mm", "ms_per_frame"} <= set(row), name
        if name != "mean_face":
            assert row["avd_neu_mm"] < result["input_to_neutral_mm"], name      # every method beats doing nothing
    assert rows["mean_face"]["avd_neu_mm"] > result["input_to_neutral_mm"]
    assert result["best"]["ratio_to_input"] <= 0.3
    assert "eval neutral:" in proc.stdout.splitlines()[-1]


def test_eval_neutral_names_a_missing_models_path(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "eval", "neutral", "--models", str(tmp_path / "nope"),
                           "--identities", "2", "--quick", "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and f"{tmp_path / 'nope'}: no such file or folder" in proc.stderr
