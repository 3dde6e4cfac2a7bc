"""runtime/render/camera.py: views, fitting, orbit, and both projections."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.render import VIEWS, Camera


def test_named_views_put_the_camera_where_expected():
    front = Camera.named("front", target=(0.0, 0.0, 0.0), distance=1.0)
    np.testing.assert_allclose(front.eye, [0, 0, 1], atol=1e-12)
    profile = Camera.named("profile", distance=1.0)
    np.testing.assert_allclose(profile.eye, [1, 0, 0], atol=1e-12)        # the subject's left
    three = Camera.named("three_quarter", distance=1.0)
    assert 0 < three.eye[0] < three.eye[2] and three.eye[1] > 0
    for view in VIEWS:
        r = Camera.named(view).rotation()
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match="unknown view 'top'"):
        Camera.named("top")


def test_front_view_is_a_mirror_free_image():
    """+x (the subject's left) lands on the image's right, +y up (smaller row)."""
    cam = Camera.named("front", distance=1.0)
    px = cam.project(np.array([[0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.0]]), (100, 100))
    assert px[0, 0] > px[2, 0] and abs(px[0, 1] - px[2, 1]) < 1e-9
    assert px[1, 1] < px[2, 1]
    np.testing.assert_allclose(px[2], [50, 50])


def test_fit_frames_every_point():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(500, 3)) * [0.07, 0.1, 0.05] + [0.3, -0.2, 1.0]
    for view in VIEWS:
        for projection in ("perspective", "orthographic"):
            cam = Camera.named(view, projection=projection).fit(pts, aspect=4 / 3, margin=1.1)
            px = cam.project(pts, (400, 300))
            assert px[:, 0].min() >= 0 and px[:, 0].max() <= 400
            assert px[:, 1].min() >= 0 and px[:, 1].max() <= 300
            # tight: the points reach at least 70 % of the image in one direction
            assert max(np.ptp(px[:, 0]) / 400, np.ptp(px[:, 1]) / 300) > 0.7
            near, far = cam.clip_planes()
            depth = cam.view_depth(pts)
            assert near < depth.min() and depth.max() < far


def test_orthographic_is_scaled_orthographic():
    """pixel = s * (R X)_xy + t, with s pixels per metre and t the image centre."""
    cam = Camera.named("three_quarter", projection="orthographic", half_height=0.12, target=(0.01, 0.02, 0.0))
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.1, 0.1, size=(50, 3))
    size = (320, 240)
    s = cam.pixels_per_metre(size[1])
    assert s == pytest.approx(240 / 0.24)
    local = (x - np.asarray(cam.target)) @ cam.rotation().T
    expected = np.stack([size[0] / 2 + s * local[:, 0], size[1] / 2 - s * local[:, 1]], axis=1)
    np.testing.assert_allclose(cam.project(x, size), expected, atol=1e-9)
    with pytest.raises(ValueError, match="orthographic"):
        Camera().pixels_per_metre(100)


def test_orbit_zoom_pan_and_projection_switch():
    cam = Camera.named("front", distance=0.5)
    turned = cam.orbit(90.0, 0.0)
    np.testing.assert_allclose(turned.eye, [0.5, 0, 0], atol=1e-12)
    assert cam.orbit(0.0, 200.0).pitch == 89.0                          # never over the pole
    assert cam.zoom(0.5).distance == pytest.approx(0.25)
    moved = cam.pan(0.01, 0.02)
    np.testing.assert_allclose(moved.target, [0.01, 0.02, 0.0], atol=1e-12)
    ortho = cam.with_projection("orthographic")
    # the orthographic camera shows at the target what the perspective one shows there
    pts = np.array([[0.05, 0.03, 0.0]])
    np.testing.assert_allclose(ortho.project(pts, (200, 200)), cam.project(pts, (200, 200)), atol=1e-9)
    with pytest.raises(ValueError, match="unknown projection"):
        Camera(projection="fisheye")
