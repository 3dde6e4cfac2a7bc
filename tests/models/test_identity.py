"""The identity space: named semantic parameters plus smooth random fields,
a population without self-intersection at +-3 sigma."""

from __future__ import annotations

import numpy as np
import pytest

from models.face import IDENTITY_NAMES, N_IDENTITY, sample_identities, synthface
from models.face.identity import SEMANTIC
from models.geometry.intersect import self_intersections


@pytest.fixture(scope="module")
def model():
    return synthface()


def unit(name: str, value: float) -> np.ndarray:
    b = np.zeros((1, N_IDENTITY), np.float32)
    b[0, IDENTITY_NAMES.index(name)] = value
    return b


def test_at_least_30_parameters_with_the_named_ones():
    assert N_IDENTITY >= 30
    for name in ("face_width", "face_height", "jaw_width", "chin", "nose_length", "nose_width",
                 "nose_projection", "nose_bridge", "lip_fullness", "mouth_width", "eye_spacing",
                 "eye_size", "brow_height", "cheekbones", "forehead_slope"):
        assert name in SEMANTIC


@pytest.mark.slow
@pytest.mark.parametrize("name", IDENTITY_NAMES)
def test_no_self_intersection_at_three_sigma(model, name):
    for value in (-3.0, 3.0):
        v = model.neutral(unit(name, value))[0]
        assert len(self_intersections(v, model.template.faces)) == 0, f"{name} at {value:+} sigma"


def test_population_without_self_intersection(model):
    """A population from the prior, and faces 3 and 6 sigma from the mean in
    random directions of the whole space (Mahalanobis radius)."""
    rng = np.random.default_rng(2024)
    betas = [sample_identities(12, rng)]
    for radius in (3.0, 6.0):
        d = rng.standard_normal((8, N_IDENTITY))
        betas.append(radius * d / np.linalg.norm(d, axis=1, keepdims=True))
    for v in model.neutral(np.concatenate(betas).astype(np.float32)):
        assert len(self_intersections(v, model.template.faces)) == 0


def test_semantic_parameters_change_what_they_name(model):
    lm = model.landmarks

    def measure(name, fn):
        lo, hi = (fn(lm(model.neutral(unit(name, s)))[0].astype(np.float64)) for s in (-2, 2))
        return hi - lo

    dist = lambda L, a, b: np.linalg.norm(L[a] - L[b])  # noqa: E731
    assert measure("face_width", lambda L: dist(L, 0, 16)) > 0.005
    assert measure("nose_length", lambda L: L[27, 1] - L[33, 1]) > 0.002
    assert measure("nose_projection", lambda L: L[30, 2]) > 0.002
    assert measure("mouth_width", lambda L: dist(L, 48, 54)) > 0.002
    assert measure("eye_spacing", lambda L: dist(L, 39, 42)) > 0.002
    assert measure("eye_size", lambda L: L[37, 1] - L[41, 1]) > 0.001
    assert measure("brow_height", lambda L: L[19, 1] - L[37, 1]) > 0.002
    assert measure("chin", lambda L: -L[8, 1]) > 0.002


def test_population_is_varied_and_plausible(model):
    v = model.neutral(sample_identities(50, np.random.default_rng(1)))
    eye = np.linalg.norm(model.landmarks(v)[:, 36] - model.landmarks(v)[:, 45], axis=-1)
    assert 0.075 < eye.min() and eye.max() < 0.105
    assert eye.std() > 0.001
