"""The S2D method: its landmark estimator and neutralization through the shipped S2D-Dec."""

from __future__ import annotations

import numpy as np
import pytest

from models.checkpoint import CheckpointError
from models.constants import MM_PER_M
from models.face import synthface_template
from models.neutral import discover, load_neutralizer
from models.neutral.s2d import LandmarkEstimatorConfig, S2DNeutralizer, fit_landmark_estimator
from models.paths import CHECKPOINTS, S2D_SYNTHFACE
from models.s2d import load_s2d
from trainers.neutral.data import NeutralDataConfig, synth_set


def mm(a, b) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1).mean(axis=-1) * MM_PER_M


@pytest.fixture(scope="module")
def sets():
    train = synth_set(NeutralDataConfig(identities=60, expressions=12), show_progress=False)
    test = synth_set(NeutralDataConfig(identities=6, expressions=12, split="test"), show_progress=False)
    return train, test


@pytest.fixture(scope="module")
def method():
    found, problems = discover([CHECKPOINTS], decoder=load_s2d(S2D_SYNTHFACE)[0], template=synthface_template())
    assert "s2d" in found, problems
    return found["s2d"][0]


def landmark_pairs(s):
    return s.template.landmark_points(s.meshes), s.template.landmark_points(s.neutrals)[s.subject]


def test_the_estimator_recovers_unseen_neutral_landmarks(sets):
    train, test = sets
    est = fit_landmark_estimator(*landmark_pairs(train))
    lm, truth = landmark_pairs(test)
    idx = test.expressive()
    err, given = mm(est.estimate(lm[idx]), truth[idx]), mm(lm[idx], truth[idx])
    assert err.mean() < 0.2 * given.mean()


def test_the_estimator_round_trips_and_refuses_another_topology(sets, tmp_path):
    train, test = sets
    est = fit_landmark_estimator(*landmark_pairs(train), LandmarkEstimatorConfig(topology_id="abc"))
    path = est.save(tmp_path / "lm.safetensors")
    back = load_neutralizer(path, "abc")
    lm, _ = landmark_pairs(test)
    np.testing.assert_allclose(back.estimate(lm), est.estimate(lm), atol=1e-7)
    with pytest.raises(CheckpointError, match="lm.safetensors"):
        load_neutralizer(path, "another")


def test_s2d_neutralization_on_unseen_identities(method, sets):
    _, test = sets
    idx = test.expressive()
    out = method.neutralize(test.meshes[idx])
    assert out.shape == (len(idx), test.template.n_vertices, 3) and out.dtype == np.float32
    err, given = mm(out, test.targets(idx)), mm(test.meshes[idx], test.targets(idx))
    assert err.mean() < 0.3 * given.mean()            # removes more than 70 % of the expression


def test_neutralizing_a_neutral_face_changes_it_by_under_half_a_millimetre(method, sets):
    _, test = sets
    assert mm(method.neutralize(test.neutrals), test.neutrals).mean() < 0.5


def test_s2d_transfer_matches_the_target_identitys_own_expression(method, sets):
    from models.face import synthface

    _, test = sets
    a = test.expressive()[:12]
    b = (test.subject[a] + 1) % test.n_subjects
    truth = synthface().vertices(test.identity[b], test.weights[a])
    moved = method.transfer(test.meshes[a], test.neutrals[b])
    assert mm(moved, truth).mean() < 0.3 * mm(test.neutrals[b], truth).mean()


def test_bad_shapes_are_refused(method):
    with pytest.raises(ValueError, match="meshes must be"):
        method.neutralize(np.zeros((2, 10, 3)))
    assert isinstance(method, S2DNeutralizer)
