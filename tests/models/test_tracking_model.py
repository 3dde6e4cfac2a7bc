"""The tracker's face model: scaled orthographic camera, jaw contour, bilinear
model (HOSVD of SynthFace) and landmark fitting, against known truth."""

from __future__ import annotations

import numpy as np
import pytest

from models.constants import MM_PER_M
from models.face import synthface
from models.tracking.bilinear import BilinearConfig, expression_set, load_bilinear
from models.tracking.camera import euler_from_rotation, project, rotation_from_euler, solve_pose
from models.tracking.contour import contour_lines, landmark_ids, silhouette_ids
from models.tracking.fit import LandmarkFitter
from trainers.neutral.data import sample_expressions, split_identities

SMALL = BilinearConfig(identities=40)


@pytest.fixture(scope="module")
def face():
    return synthface()


@pytest.fixture(scope="module")
def model(tracking_model):
    assert tracking_model.config == SMALL
    return tracking_model


@pytest.fixture(scope="module")
def unseen(face):
    """Unseen identities with expressions, and their meshes."""
    ids = split_identities("test", 12)
    w, labels = sample_expressions(12, np.random.default_rng(5))
    return ids, w, face.vertices(ids, w)


def similarity_mm(x: np.ndarray, y: np.ndarray) -> float:
    """Mean vertex distance (mm) after the best similarity transform of ``x`` onto ``y``
    (an orthographic camera cannot see the face's absolute size)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    u, s, vt = np.linalg.svd(yc.T @ xc)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    c = (s * np.diag(d)).sum() / (xc ** 2).sum()
    return float(np.linalg.norm(c * xc @ (u @ d @ vt).T - yc, axis=-1).mean() * MM_PER_M)


def test_the_camera_recovers_a_pose_from_exact_points():
    rng = np.random.default_rng(0)
    pts = rng.normal(0, 0.05, (30, 3))
    for yaw, pitch, roll in [(0.0, 0.0, 0.0), (0.9, -0.3, 0.2), (-1.0, 0.3, -0.25)]:
        r = rotation_from_euler(yaw, pitch, roll)
        np.testing.assert_allclose(euler_from_rotation(r), (yaw, pitch, roll), atol=1e-12)
        img = project(pts, r, 2500.0, np.array([300.0, 200.0]))
        pose = solve_pose(pts, img)
        np.testing.assert_allclose(pose.rotation, r, atol=1e-9)
        assert pose.scale == pytest.approx(2500.0) and np.allclose(pose.translation, [300, 200])
    up = project(np.array([[0.0, 0.01, 0.0]]), np.eye(3), 1000.0, np.zeros(2))
    assert up[0, 1] == pytest.approx(-10.0)                           # model y up is image row up
    with pytest.raises(ValueError, match="at least 4"):
        solve_pose(pts[:3], img[:3])


def test_the_jaw_landmarks_follow_the_silhouette(face):
    t = face.template
    lines = contour_lines(t)
    fixed = t.landmarks.vertex_ids(t.faces)
    assert (silhouette_ids(np.eye(3), t.vertices, lines) == fixed[:17]).all()     # frontal: the jaw line
    r = rotation_from_euler(np.radians(45), 0.0, 0.0)                             # the face's +x side turns away
    ids = silhouette_ids(r, t.vertices, lines)
    far = np.flatnonzero(lines.side > 0)
    assert (np.abs(t.vertices[ids[far], 0]) <= np.abs(t.vertices[fixed[far], 0]) + 1e-9).all()
    assert (ids[far] != fixed[far]).sum() >= 6                                   # moved in, onto the cheek
    rx = (t.vertices @ r.T)[:, 0]
    for k in far:                                                                 # nothing of its line further out
        assert rx[ids[k]] >= rx[lines.line_vertices(k)].max() - 1e-12
    full = landmark_ids(t, r, t.vertices, lines)
    assert full.shape == (68,) and (full[17:] == fixed[17:]).all()


def test_the_bilinear_model_spans_unseen_faces_and_maps_to_blendshapes(model, unseen):
    ids, w, meshes = unseen
    weights, names = expression_set()
    assert names[0] == "neutral" and len(weights) == 1 + 52 + 24
    assert model.core.shape == (40, 25, meshes.shape[1], 3)            # id dims capped at the identities
    a, b = model.coefficients(meshes)                # the closest faces in 3D: what the model can express
    errs = np.linalg.norm(model.mesh(a, b) - meshes, axis=-1).mean(axis=-1) * MM_PER_M
    bs = np.abs(model.blendshapes(b) - w).mean(axis=-1)
    assert np.mean(errs) < 0.2 and np.mean(bs) < 0.06
    assert np.abs(b[:, 0] - model.exp_mean[0]).max() < 1e-9           # the gauge: one representative per face
    assert (np.linalg.norm(a, axis=1) < 10.0).all()                     # no runaway (it reached 10^4 without the ridge)
    neutral = model.mesh(model.id_mean, model.neutral_exp)
    out = model.blendshapes(model.neutral_exp)
    assert out.max() < 0.05 and neutral.shape == meshes.shape[1:]


def test_the_model_is_cached_and_a_broken_cache_is_rebuilt(face, model, tmp_path):
    again = load_bilinear(face, SMALL, cache=tmp_path)
    path = next(tmp_path.glob("bilinear_*.npz"))
    np.testing.assert_allclose(again.core, model.core, atol=1e-6)
    path.write_bytes(b"not an npz")
    rebuilt = load_bilinear(face, SMALL, cache=tmp_path)
    np.testing.assert_allclose(rebuilt.core, model.core, atol=1e-6)


def test_landmark_fitting_recovers_pose_and_shape_up_to_yaw_60(face, model, unseen):
    ids, w, meshes = unseen
    t = face.template
    fitter = LandmarkFitter(model, t)
    lines = contour_lines(t)
    rng = np.random.default_rng(2)
    mean_face = model.mesh(model.id_mean, model.neutral_exp)
    fitted, baseline = [], []
    for k, yaw in enumerate(np.linspace(-60, 60, len(meshes))):
        r = rotation_from_euler(np.radians(yaw), rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2))
        lm = project(meshes[k][landmark_ids(t, r, meshes[k], lines)], r, 1600.0, np.array([320.0, 240.0]))
        fit = fitter.fit(lm)
        assert fit.rms_px < 3.0
        assert abs(np.degrees(fit.pose.euler[0]) - yaw) < 4.0
        fitted.append(similarity_mm(fitter.mesh(fit), meshes[k]))
        baseline.append(similarity_mm(mean_face, meshes[k]))
    assert np.mean(fitted) < 0.7 * np.mean(baseline)


def test_a_frozen_identity_moves_only_the_expression(face, model, unseen):
    ids, w, meshes = unseen
    t = face.template
    fitter = LandmarkFitter(model, t)
    r = rotation_from_euler(0.2, 0.1, 0.0)
    lm = project(meshes[0][landmark_ids(t, r, meshes[0], contour_lines(t))], r, 1500.0, np.array([300.0, 260.0]))
    first = fitter.fit(lm)
    again = fitter.fit(lm, init=first, identity=first.identity, iterations=2)
    assert np.array_equal(again.identity, first.identity) and again.rms_px <= first.rms_px + 0.5
    with pytest.raises(ValueError, match="68 finite landmarks"):
        fitter.fit(np.full((68, 2), np.nan))
