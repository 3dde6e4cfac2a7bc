"""SynthFace v2: the interface it shares with v1, eyes that close, a jaw that
opens as far as a real one, lips that close, press and roll without passing
through each other, per-person style, nonlinear skin, and (with
../shared/reference/ict) shapes that match ICT-FaceKit's scan-derived ones.

The population checks run the mean face and the first ``POPULATION`` members
of SynthFace's population (``population_identity(i)``, seed 0): the people
``facecast data synth`` makes.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.face import face_model, synthface, synthface_v2
from models.face.base import FaceModel
from models.face.expression import ARKIT_NAMES, INDEX, N_EXPRESSION
from models.face.mechanisms import EYEBALL_RADIUS_SHARE
from models.face.model_v2 import _IdentityParts
from models.face.slits import mouth_step
from models.geometry.intersect import self_intersections
from models.geometry.normals import vertex_normals

POPULATION = 12
#: the issue's bounds
LID_GAP_MM = 0.5
CHIN_TRAVEL_MM = (35.0, 40.0)
AMPLITUDE_RATIO = (0.8, 1.25)
COSINE = 0.85
TRANSFER_ERROR = (0.2, 0.4)

#: the lips' actions the issue names, as ARKit weights
LIP_ACTIONS = {
    "close half": {"jawOpen": 0.5, "mouthClose": 0.5},
    "close": {"jawOpen": 1.0, "mouthClose": 1.0},
    "press": {"mouthPressLeft": 1.0, "mouthPressRight": 1.0},
    "roll upper": {"mouthRollUpper": 1.0},
    "roll lower": {"mouthRollLower": 1.0},
    "roll both": {"mouthRollUpper": 1.0, "mouthRollLower": 1.0},
}


def weights(**units: float) -> np.ndarray:
    w = np.zeros((1, N_EXPRESSION), np.float32)
    for name, value in units.items():
        w[0, INDEX[name]] = value
    return w


def people() -> list[tuple[str, np.ndarray]]:
    m = synthface_v2()
    return [("mean face", np.zeros((1, 35), np.float32))] + [
        (f"person {i}", m.population_identity(i)[None]) for i in range(POPULATION)]


def polyline_gap(points: np.ndarray, chain: np.ndarray) -> float:
    """Largest distance (m) from ``points [P, 3]`` to the polyline ``chain [K, 3]``."""
    a, b = chain[:-1], chain[1:]
    ab = b - a
    t = np.clip(np.einsum("pkc,kc->pk", points[:, None] - a[None], ab) / np.einsum("kc,kc->k", ab, ab), 0, 1)
    d = np.linalg.norm(points[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1)
    return float(d.min(axis=1).max())


# ---------------------------------------------------------------- interface
def test_v2_is_a_face_model_on_v1s_topology():
    v1, v2 = synthface(), synthface_v2()
    assert isinstance(v2, FaceModel) and v2.name == "synthface-2" and face_model(2) is v2
    assert v2.template.topology_id == v1.template.topology_id        # v1 checkpoints drive v2 faces
    assert v2.missing_mechanisms == []
    beta = v2.sample_identities(4, np.random.default_rng(0))
    np.testing.assert_array_equal(v2.vertices(beta, np.zeros((4, N_EXPRESSION), np.float32)), v2.neutral(beta))
    np.testing.assert_array_equal(v2.neutral(beta), v1.neutral(beta))  # the same people
    w = np.random.default_rng(1).uniform(0, 1, (4, N_EXPRESSION)).astype(np.float32)
    a, b = v2.vertices(beta, w), v2.vertices(beta, w)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and np.isfinite(a).all()
    # a batch gives each row what it gives alone
    np.testing.assert_allclose(v2.vertices(beta[2:3], w[2:3])[0], a[2], atol=1e-6)
    with pytest.raises(ValueError, match="weights must be"):
        v2.vertices(beta, w[:, :51])
    with pytest.raises(ValueError, match="NaN"):
        v2.vertices(np.full((1, 35), np.nan, np.float32), w[:1])


def test_v2_shapes_are_large():
    """At weight 1 the shapes move the face as much as a real one: the mean
    displacement of the mask is several times v1's for the big shapes."""
    v1, v2 = synthface(), synthface_v2()
    beta = np.zeros((1, 35), np.float32)
    for name in ("mouthSmileLeft", "mouthPucker", "mouthLeft", "jawOpen", "cheekPuff"):
        d1 = np.linalg.norm(v1.vertices(beta, weights(**{name: 1.0}))[0] - v1.neutral(beta)[0], axis=1).mean()
        d2 = np.linalg.norm(v2.vertices(beta, weights(**{name: 1.0}))[0] - v2.neutral(beta)[0], axis=1).mean()
        print(f"{name}: mean displacement v1 {d1 * 1000:.2f} mm, v2 {d2 * 1000:.2f} mm")
        assert d2 > 1.2 * d1, name


# ---------------------------------------------------------------- eyes
def test_blink_closes_the_eyes_over_the_eyeballs():
    m = synthface_v2()
    f = m.template.faces
    for who, beta in people():
        parts = _IdentityParts(m, beta)
        radius = EYEBALL_RADIUS_SHARE * parts.scale[0]
        for w in (0.25, 0.5, 0.75, 1.0):
            v = m.vertices(beta, weights(eyeBlinkLeft=w, eyeBlinkRight=w))[0].astype(np.float64)
            for k, side in enumerate((-1, 1)):
                lid = m.eyelids.lids[side].vertices
                inside = radius - np.linalg.norm(v[lid] - parts.eyeballs[0, k], axis=1)
                assert inside.max() <= 0.0, (who, w, side, inside.max())        # never into the eye
            if w == 1.0:
                for side in (-1, 1):
                    slit = m.eyelids.slits[side]
                    gap = max(polyline_gap(v[slit.upper[1:-1]], v[slit.lower]),
                              polyline_gap(v[slit.lower[1:-1]], v[slit.upper]))
                    assert gap * 1000 < LID_GAP_MM, (who, side, gap * 1000)    # the lids meet
                assert len(self_intersections(v, f)) == 0, who                  # neither lid through the other


def test_blink_closes_with_other_eye_shapes_active():
    m = synthface_v2()
    beta = np.zeros((1, 35), np.float32)
    for extra in ("eyeSquintLeft", "eyeWideLeft", "eyeLookDownLeft", "eyeLookUpLeft"):
        v = m.vertices(beta, weights(eyeBlinkLeft=1.0, **{extra: 1.0}))[0].astype(np.float64)
        slit = m.eyelids.slits[1]
        gap = polyline_gap(v[slit.upper[1:-1]], v[slit.lower])
        assert gap * 1000 < LID_GAP_MM, (extra, gap * 1000)


# ---------------------------------------------------------------- jaw
def test_jaw_opens_35_to_40_mm_by_rotation_and_glide():
    m = synthface_v2()
    travel = []
    for who, beta in people():
        lm = m.landmarks(m.vertices(np.repeat(beta, 2, 0),
                                    np.concatenate([weights(), weights(jawOpen=1.0)])).astype(np.float64))
        travel.append(np.linalg.norm(lm[1, 8] - lm[0, 8]) * 1000)
    print(f"chin travel at jawOpen = 1: mean face {travel[0]:.1f} mm, population "
          f"{min(travel[1:]):.1f}-{max(travel[1:]):.1f} mm (mean {np.mean(travel[1:]):.1f})")
    assert CHIN_TRAVEL_MM[0] <= travel[0] <= CHIN_TRAVEL_MM[1]
    assert CHIN_TRAVEL_MM[0] <= np.mean(travel[1:]) <= CHIN_TRAVEL_MM[1]
    # rotation first, glide later: the chin's path is not the straight line a blendshape would take
    beta = np.zeros((1, 35), np.float32)
    path = m.landmarks(m.vertices(np.repeat(beta, 3, 0), np.concatenate(
        [weights(), weights(jawOpen=0.5), weights(jawOpen=1.0)])).astype(np.float64))[:, 8]
    off_line = np.linalg.norm(path[1] - 0.5 * (path[0] + path[2])) * 1000
    assert off_line > 1.0, off_line


# ---------------------------------------------------------------- lips
def test_lips_close_press_and_roll_without_passing_through_each_other():
    m = synthface_v2()
    t = m.template
    v64 = t.vertices.astype(np.float64)
    xi = t.frame.to_local(v64)
    lower = mouth_step(xi, vertex_normals(v64, t.faces) @ t.frame.rotation, m.anchors) > 0.5
    lower_face = lower[t.faces].mean(axis=1) > 0.5
    w = np.concatenate([weights(**units) for units in LIP_ACTIONS.values()])
    folds = {}
    for who, beta in people():
        meshes = m.vertices(np.repeat(beta, len(w), 0), w)
        for action, v in zip(LIP_ACTIONS, meshes):
            pairs = self_intersections(v, t.faces)
            through = int(np.sum(lower_face[pairs[:, 0]] != lower_face[pairs[:, 1]]))
            assert through == 0, (who, action, through)                     # one lip through the other
            if who == "mean face":
                assert len(pairs) == 0, (action, len(pairs))                 # the mean face: nothing at all
            if len(pairs):
                folds[(who, action)] = len(pairs)
    print(f"lips: no lip passes through the other; folds within one lip: {folds or 'none'}")


def test_lips_meet_when_closed_on_an_open_jaw():
    m = synthface_v2()
    for who, beta in people()[:4]:
        v = m.vertices(beta, weights(jawOpen=1.0, mouthClose=1.0))[0].astype(np.float64)
        slit = m.lips.slit
        middle = slit.upper[len(slit.upper) // 2 - 3: len(slit.upper) // 2 + 4]
        gap = polyline_gap(v[middle], v[slit.lower])
        assert gap * 1000 < 1.0, (who, gap * 1000)
        lm = m.landmarks(v)
        assert np.linalg.norm(lm[62] - lm[66]) * 1000 < 1.0, who


# ---------------------------------------------------------------- style and nonlinearity
def test_each_person_performs_a_shape_their_own_way_with_the_same_meaning():
    from trainers.face.realism import RealismConfig, identity_transfer_error, label_separability, perform

    m = synthface_v2()
    cfg = RealismConfig(subjects=4, pairs=6)
    error = identity_transfer_error(m, cfg)
    separable = label_separability(perform(m, 2, cfg))
    print(f"identity transfer error {error:.1%} (v1 {identity_transfer_error(synthface(), cfg):.1%}); "
          f"label separability {separable:.1%}")
    assert TRANSFER_ERROR[0] <= error <= TRANSFER_ERROR[1]
    assert separable >= 0.9
    # the same smile on two people: different fields, still clearly the same shape
    a, b = (m.population_identity(i)[None] for i in (0, 1))
    da = m.vertices(a, weights(mouthSmileLeft=1.0))[0] - m.neutral(a)[0]
    db = m.vertices(b, weights(mouthSmileLeft=1.0))[0] - m.neutral(b)[0]
    cosine = float(np.sum(da * db) / np.sqrt(np.sum(da * da) * np.sum(db * db)))
    assert 0.8 < cosine < 0.995, cosine


def test_skin_is_nonlinear_in_the_weights():
    """Half a weight is not half the motion for the mechanisms and the saturating
    cheek: mid-weight meshes leave the straight line between rest and weight 1."""
    m = synthface_v2()
    beta = np.zeros((1, 35), np.float32)
    for name, more in (("jawOpen", {}), ("eyeBlinkLeft", {}), ("mouthRollLower", {}), ("mouthSmileLeft", {}),
                       ("cheekPuff", {})):
        v = m.vertices(np.repeat(beta, 3, 0), np.concatenate(
            [weights(), weights(**{name: 0.5}, **more), weights(**{name: 1.0}, **more)]))
        off = np.linalg.norm(v[1] - 0.5 * (v[0] + v[2]), axis=1).max() * 1000
        print(f"{name}: off the straight line by {off:.2f} mm at weight 0.5")
        assert off > 0.3, name


# ---------------------------------------------------------------- against ICT-FaceKit
def test_shapes_match_ict_facekit(ict_shapes):
    from trainers.face.compare import compare_shapes

    names, fields, corr = ict_shapes
    assert corr.shared.mean() > 0.9                          # the mask and the scanned face share most of it
    assert np.median(corr.distance) * synthface_v2().template.frame.scale * 1000 < 0.5
    expected = [n for n in ARKIT_NAMES if n != "tongueOut"]
    assert list(names) == expected                           # every ARKit shape but tongueOut has a counterpart
    agree = compare_shapes(synthface_v2(), fields, corr, names)
    for name, a in agree.items():
        assert AMPLITUDE_RATIO[0] <= a.amplitude_ratio <= AMPLITUDE_RATIO[1], (name, a)
        assert a.cosine >= COSINE, (name, a)
    old = compare_shapes(synthface(), fields, corr, ("mouthSmileLeft", "jawOpen", "mouthClose"))
    assert old["mouthSmileLeft"].amplitude_ratio < AMPLITUDE_RATIO[0]       # v1's smile was too small


def test_the_shipped_calibration_is_what_train_face_makes(ict_dir):
    from models.face.calibration import Calibration
    from trainers.face.calibrate import calibrate, load_ict

    shipped = Calibration.load()
    made, report = calibrate(load_ict(ict_dir), log=lambda *a: None)
    assert [e.shape for e in made.entries] == [e.shape for e in shipped.entries]
    np.testing.assert_allclose(made.coef, shipped.coef, atol=1e-5)
    assert abs(report["min_cosine"] - shipped.meta["fit"]["min_cosine"]) < 1e-4
    assert "ICT-FaceKit" in shipped.meta["source"]
