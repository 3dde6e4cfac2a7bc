"""The cascade's parts on real renders: HOG at the projected landmarks of the
canonical face image, the ridge stage, and the camera re-solved after a stage."""

from __future__ import annotations

import numpy as np
import pytest

from models.face import synthface
from models.tracking.camera import project, rotation_from_euler
from models.tracking.cascade import CANONICAL_SCALE, PATCH, Cascade, CascadeConfig
from models.tracking.contour import contour_lines, landmark_ids
from models.tracking.fit import LandmarkFitter
from trainers.neutral.data import split_identities

SIZE = (320, 240)


@pytest.fixture(scope="module")
def face():
    return synthface()


@pytest.fixture(scope="module")
def fitter(face, tracking_model):
    return LandmarkFitter(tracking_model, face.template)


def render(face, vertices, rotation, scale, translation) -> np.ndarray:
    """An RGB image of a posed face whose pixels are ``project(v, rotation, scale, translation)``."""
    from runtime.frames import Frame, Topology
    from runtime.render.camera import Camera
    from runtime.render.renderer import Renderer
    from runtime.render.scene import FaceView, Style

    w, h = SIZE
    posed = (vertices @ rotation.T).astype(np.float32)
    centre = ((w / 2 - translation[0]) / scale, (translation[1] - h / 2) / scale, 0.0)
    camera = Camera(target=centre, projection="orthographic", half_height=h / 2 / scale, distance=0.6)
    with Renderer.headless(SIZE) as r:
        rgba = FaceView(r).render(Frame(posed, Topology.from_template(face.template)), camera,
                                  Style(background=(0.3, 0.4, 0.5, 1.0)))
    return rgba[..., :3].copy()


@pytest.fixture(scope="module")
def scene(face):
    beta = split_identities("test", 1)
    v = face.vertices(beta, np.zeros((1, 52), np.float32))[0]
    r = rotation_from_euler(np.radians(20), 0.1, 0.05)
    s, t = 900.0, np.array([165.0, 115.0])
    lm = project(v[landmark_ids(face.template, r, v, contour_lines(face.template))], r, s, t)
    return render(face, v, r, s, t), lm


def test_the_render_matches_the_camera(scene):
    image, lm = scene
    background = np.array([0.3, 0.4, 0.5]) * 255
    inner = np.round(lm[17:]).astype(int)                                # brows, eyes, nose, mouth
    on_face = np.abs(image[inner[:, 1], inner[:, 0]].astype(float) - background).max(axis=1) > 12
    assert on_face.mean() > 0.95


def test_hog_features_see_the_face_at_its_landmarks(fitter, scene):
    image, lm = scene
    cascade = Cascade(fitter)
    fit = fitter.fit(lm)
    phi = cascade.features(image, fit, lm)
    assert phi.shape == (68 * 144 + 136,) and np.isfinite(phi).all()
    hog = phi[:68 * 144].reshape(68, 144)
    assert (np.linalg.norm(hog, axis=1) > 0.5).all()                   # every patch has texture (L2-Hys blocks)
    canon, m = cascade.hog.canonical(image, fit.pose)
    assert canon.shape[0] == int(round(0.30 * CANONICAL_SCALE)) + PATCH
    blank = np.full_like(image, 120)
    flat = cascade.features(blank, fit, lm)[:68 * 144]
    assert np.abs(flat).max() < 1e-6                                   # no gradients, no HOG
    shifted = cascade.features(image, fit, lm + 5.0)[68 * 144:]
    assert np.allclose(shifted - phi[68 * 144:], 5.0 * CANONICAL_SCALE / fit.pose.scale / PATCH, atol=1e-4)


def test_a_stage_learns_a_linear_map_and_the_camera_follows_it(fitter, scene):
    image, lm = scene
    rng = np.random.default_rng(0)
    cascade = Cascade(fitter, CascadeConfig(ridge=1e-6))
    phis = rng.normal(size=(40, 12))
    true = rng.normal(size=(12, 75)) * 0.01
    cascade.learn_stage(phis, phis @ true)
    x = (phis - cascade.mean[0]) / cascade.scale[0]
    pred = np.concatenate([x, np.ones((40, 1))], axis=1) @ cascade.weights[0]
    np.testing.assert_allclose(pred, phis @ true, atol=1e-4)
    fit = fitter.fit(lm)
    theta = cascade.theta(fit)
    moved = cascade.update(fit, theta + 0.0, lm)
    assert moved.rms_px == pytest.approx(fit.rms_px, abs=1e-6)       # no change: the same camera
    frozen = cascade.update(fit, theta + 0.05, lm, freeze_identity=True)
    assert np.array_equal(frozen.identity, fit.identity) and not np.allclose(frozen.expression, fit.expression)
