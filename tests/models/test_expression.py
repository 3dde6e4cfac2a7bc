"""ARKit blendshapes: each moves only its region; jawOpen is a hinge; the
same weights give different displacements on different identities."""

from __future__ import annotations

import numpy as np
import pytest

from models.constants import EPS_DISPLACEMENT
from models.face import ARKIT_NAMES, N_EXPRESSION, N_IDENTITY, REGIONS, ZERO_SHAPES, sample_identities, synthface
from models.face.expression import INDEX, SHAPE_REGIONS
from models.face.labels import COMA_LABELS, RECIPES, apex_weights, recipe_units


@pytest.fixture(scope="module")
def model():
    return synthface()


@pytest.fixture(scope="module")
def identities():
    return np.vstack([np.zeros((1, N_IDENTITY), np.float32), sample_identities(3, np.random.default_rng(5))])


def one_hot(name: str, n: int = 1, value: float = 1.0) -> np.ndarray:
    w = np.zeros((n, N_EXPRESSION), np.float32)
    w[:, INDEX[name]] = value
    return w


def test_52_arkit_names():
    assert len(ARKIT_NAMES) == 52 == len(set(ARKIT_NAMES))
    for name in ("browInnerUp", "browDownLeft", "eyeBlinkLeft", "cheekPuff", "jawOpen", "mouthSmileLeft",
                 "mouthFunnel", "tongueOut"):
        assert name in ARKIT_NAMES
    assert set(SHAPE_REGIONS) == set(ARKIT_NAMES)


@pytest.mark.parametrize("name", ARKIT_NAMES)
def test_each_blendshape_moves_only_its_region(model, identities, name):
    allowed = np.isin(model.regions, [REGIONS.index(r) for r in SHAPE_REGIONS[name]])
    moved = model.vertices(identities, one_hot(name, len(identities))) - model.neutral(identities)
    d = np.linalg.norm(moved, axis=-1)
    outside = d[:, ~allowed]
    assert outside.size == 0 or outside.max() < EPS_DISPLACEMENT, (
        f"{name} moves {int((outside >= EPS_DISPLACEMENT).sum())} vertices outside {SHAPE_REGIONS[name]}")
    if name in ZERO_SHAPES:
        assert d.max() == 0.0
    else:
        assert d.max() > 0.001, f"{name} barely moves (max {d.max() * 1000:.2f} mm)"


def test_jaw_open_opens_the_inner_lips_by_more_than_a_centimetre(model):
    beta = np.zeros((1, N_IDENTITY), np.float32)
    closed = model.evaluate(beta, np.zeros((1, N_EXPRESSION), np.float32)).landmarks[0]
    opened = model.evaluate(beta, one_hot("jawOpen")).landmarks[0]
    for up, lo in ((61, 67), (62, 66), (63, 65)):
        assert np.linalg.norm(opened[up] - opened[lo]) > 0.01
        assert np.linalg.norm(closed[up] - closed[lo]) < 0.003
    # the upper lip stays where it was
    assert np.abs(opened[62] - closed[62]).max() < 1e-4


def test_jaw_open_is_a_rotation_not_a_linear_offset(model):
    beta = np.zeros((1, N_IDENTITY), np.float32)
    n = model.neutral(beta)[0]
    half = model.vertices(beta, one_hot("jawOpen", value=0.5))[0] - n
    full = model.vertices(beta, one_hot("jawOpen", value=1.0))[0] - n
    assert np.abs(full - 2 * half).max() > 5e-4
    # the chin keeps its distance to the hinge axis (a rigid swing)
    chin = model.template.landmarks.vertex_ids(model.template.faces)[8]
    pivot = model.hinge.mean(axis=0)
    axis = (model.hinge[1] - model.hinge[0]) / np.linalg.norm(model.hinge[1] - model.hinge[0])

    def radius(p):
        r = p - pivot
        return np.linalg.norm(r - axis * r.dot(axis))

    assert radius(n[chin] + full[chin]) == pytest.approx(radius(n[chin]), rel=1e-4)


def test_blink_closes_the_eye(model):
    beta = np.zeros((1, N_IDENTITY), np.float32)
    L = model.evaluate(beta, one_hot("eyeBlinkLeft")).landmarks[0]
    L0 = model.evaluate(beta, np.zeros((1, N_EXPRESSION), np.float32)).landmarks[0]
    assert L0[43, 1] - L0[47, 1] > 0.006
    assert abs(L[43, 1] - L[47, 1]) < 0.001 and abs(L[44, 1] - L[46, 1]) < 0.001
    assert np.abs(L[36:42] - L0[36:42]).max() == 0.0     # the right eye is untouched


def test_same_weights_differ_between_identities(model):
    """Expression displacements depend on the identity beyond a global scale:
    the best single scale factor between two identities' displacements
    leaves a residual of at least 5 %."""
    betas = sample_identities(2, np.random.default_rng(11))
    rng = np.random.default_rng(3)
    w = np.zeros((1, N_EXPRESSION), np.float32)
    w[0, [INDEX[n] for n in ("mouthSmileLeft", "browInnerUp", "jawOpen", "eyeBlinkRight")]] = rng.uniform(0.5, 1, 4)
    disp = [model.vertices(b[None], w)[0] - model.neutral(b[None])[0] for b in betas]
    a, b = disp[0].ravel(), disp[1].ravel()
    scale = a.dot(b) / b.dot(b)
    assert np.linalg.norm(a - scale * b) / np.linalg.norm(a) > 0.05


def test_zero_weights_give_the_neutral(model, identities):
    z = np.zeros((len(identities), N_EXPRESSION), np.float32)
    assert np.array_equal(model.vertices(identities, z), model.neutral(identities))


def test_bad_shapes_are_refused(model):
    with pytest.raises(ValueError, match="weights"):
        model.vertices(np.zeros((1, N_IDENTITY)), np.zeros((1, 51)))
    with pytest.raises(ValueError, match="NaN"):
        model.vertices(np.full((1, N_IDENTITY), np.nan), np.zeros((1, N_EXPRESSION)))


def test_coma_recipes():
    assert len(COMA_LABELS) == 12 and set(RECIPES) == set(COMA_LABELS)
    rng = np.random.default_rng(0)
    for label in COMA_LABELS:
        a, _ = apex_weights(label, rng)
        b, _ = apex_weights(label, rng)
        assert a.shape == (52,) and 0 <= a.min() and a.max() <= 1
        assert not np.array_equal(a, b), f"{label}: two performances are identical"
        used = {ARKIT_NAMES[i] for i in np.flatnonzero(a)}
        assert used <= set(recipe_units(label))
    with pytest.raises(ValueError, match="unknown expression label"):
        apex_weights("yawn", rng)


def test_wrinkles_and_bulges_are_nonlinear(model):
    """Secondary terms grow with the square of their driver (a bulge at a broad
    smile) or the product of two (a smile with an open jaw)."""
    from models.face.secondary import TERMS

    beta = np.zeros((1, N_IDENTITY), np.float32)
    n = model.neutral(beta)[0]

    def disp(**w):
        x = np.zeros((1, N_EXPRESSION), np.float32)
        for k, v in w.items():
            x[0, INDEX[k]] = v
        return model.vertices(beta, x)[0] - n

    half, full = disp(mouthSmileLeft=0.5), disp(mouthSmileLeft=1.0)
    assert np.abs(full - 2 * half).max() > 5e-4                      # not linear in the weight
    both = disp(jawOpen=0.6, mouthSmileLeft=1.0)
    each = disp(jawOpen=0.6) + disp(mouthSmileLeft=1.0)
    assert np.abs(both - each).max() > 5e-4                          # the units interact
    assert {t.name for t in TERMS} >= {"forehead_furrows_inner", "smile_bulge_left", "open_smile_left"}
