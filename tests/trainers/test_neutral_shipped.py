"""The shipped neutralizers, measured as ``facecast eval neutral --quick`` does, on
unseen SynthFace identities: every method beats doing nothing, the best removes
at least 70 % of the expression, and a neutral face stays where it is."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from models.checkpoint import read_meta
from models.constants import MM_PER_M
from models.neutral import FAMILIES
from models.paths import CHECKPOINTS, S2D_SYNTHFACE
from trainers.neutral.cli import load_methods
from trainers.neutral.data import NeutralDataConfig, synth_set
from trainers.neutral.evaluate import QUICK, run

#: every method has a checkpoint under models/checkpoints (the S2D method's is its landmark estimator)
SHIPPED = {"classical", "latent_gan", "pointnet_vae", "s2d"}
MAX_BYTES = 9 * 1024 * 1024


@pytest.fixture(scope="module")
def methods():
    found, problems = load_methods([CHECKPOINTS], S2D_SYNTHFACE)
    assert problems == []
    return found


@pytest.fixture(scope="module")
def quick(methods):
    with torch.no_grad():
        return run(methods, QUICK, show_progress=False)


def test_every_method_ships_small_and_describes_itself(methods):
    assert set(methods) == SHIPPED
    for name, (_, path) in methods.items():
        meta = read_meta(path)
        assert meta.family in FAMILIES and path.parent == CHECKPOINTS, name
        assert meta.topology_id == read_meta(S2D_SYNTHFACE).topology_id, name
        assert path.stat().st_size < MAX_BYTES, name


def test_every_shipped_method_beats_doing_nothing_and_the_best_removes_70_percent(quick):
    rows, inp = quick["methods"], quick["input_to_neutral_mm"]
    assert set(rows) == SHIPPED | {"mean_face"}
    for name in SHIPPED:
        assert rows[name]["avd_neu_mm"] < 0.7 * inp, (name, rows[name]["avd_neu_mm"], inp)
        assert rows[name]["rank1"] > 0.9, name                     # the neutral keeps its identity
    assert quick["best"]["ratio_to_input"] <= 0.3
    assert rows["mean_face"]["avd_neu_mm"] > inp                  # the trivial baseline does not


def test_transfer_beats_showing_the_target_unchanged(quick):
    still = quick["transfer_reference"]["target_neutral_mm"]
    for name in SHIPPED:
        assert quick["methods"][name]["transfer_mm"] < 0.7 * still, name


def test_neutralizing_a_neutral_face_changes_it_by_under_half_a_millimetre(methods):
    """The mean over unseen neutral faces of each face's mean per-vertex change; nine faces in ten
    stay under the bar one by one too (the learned networks' worst faces, the identities far from
    the training population, are in docs/results.md)."""
    test = synth_set(NeutralDataConfig(identities=40, expressions=1, split="test", seed=3), show_progress=False)
    for name, (method, _) in methods.items():
        with torch.no_grad():
            out = method.neutralize(test.neutrals)
        change = np.linalg.norm(out - test.neutrals, axis=-1).mean(axis=1) * MM_PER_M
        assert change.mean() < 0.5 and np.percentile(change, 90) < 0.5, (name, change.mean(), change.max())


def test_the_quick_command_uses_the_shipped_checkpoints(tmp_path):
    report = tmp_path / "quick.json"
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "eval", "neutral", "--quick", "--quiet",
                           "--identities", "4", "--json", str(report)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(report.read_text())
    assert result["mode"] == "quick" and result["problems"] == []
    assert {r["checkpoint"] for n, r in result["methods"].items() if n != "mean_face"} == {
        str(p) for p in CHECKPOINTS.glob("neutral_*.safetensors")}
    assert "4 methods and the mean face" in proc.stdout.splitlines()[-1]
