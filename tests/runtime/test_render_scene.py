"""runtime/render/scene.py and models/face/accessories.py: a frame drawn with
its eyes, mouth, landmarks and heat map; accessories follow the landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from models.face import synthface, synthface_template
from models.face.accessories import EYEBALL_RADIUS, place_accessories, unit_sphere
from models.face.frame import FaceFrame
from models.face.labels import apex_weights
from models.geometry.normals import face_normals
from runtime.frames import Frame, Topology
from runtime.render import Camera, Renderer, headless_context
from runtime.render.gallery import identity_frames, label_frames, template_frame
from runtime.render.overlay import colorbar_image, text_image
from runtime.render.scene import FaceView, Style, eye_texture, eye_uv

CLEAR = (0.0, 0.0, 0.0, 0.0)


@pytest.fixture(scope="module")
def view():
    ctx = headless_context()
    yield FaceView(Renderer(ctx, size=(256, 256)))
    ctx.release()


def test_unit_sphere_is_closed_outward_and_unit():
    v, f, uv = unit_sphere(16, 24)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    n = face_normals(v.astype(np.float64), f, normalize=False)
    assert np.all(np.sum(n * v[f].mean(axis=1), axis=1) > 0)         # counter-clockwise from outside
    assert np.all(np.linalg.norm(n, axis=1) > 0)                      # no degenerate triangles
    assert uv.min() >= 0 and uv.max() <= 1
    np.testing.assert_allclose(uv[v[:, 2] > 0.999999, 1], 0.0, atol=1e-6)   # v = 0 at the gaze pole


def test_accessories_follow_the_landmarks():
    t = synthface_template()
    lm = t.landmark_points().astype(np.float64)
    a = place_accessories(lm)
    frame = FaceFrame.from_landmarks(lm)
    forward = frame.rotation[:, 2]
    span = np.linalg.norm(lm[45] - lm[36])
    assert a.eye_radius == pytest.approx(EYEBALL_RADIUS * span / 0.09)
    for eye, (i, j) in zip(a.eye_centres, ((36, 39), (42, 45))):
        behind = 0.5 * (lm[i] + lm[j]) - eye
        assert np.dot(behind, forward) > 0.5 * a.eye_radius            # behind the slit ...
        assert np.linalg.norm(behind - np.dot(behind, forward) * forward) < 1e-9   # ... straight behind it
    assert np.dot(lm[60:68].mean(axis=0) - a.mouth_centre, forward) > a.mouth_radii[2]
    assert a.mouth_radii[0] > 0.5 * np.linalg.norm(lm[54] - lm[48])   # as wide as the mouth
    # a scaled, moved, turned face carries its accessories along
    rot = np.array([[np.cos(0.3), 0, np.sin(0.3)], [0, 1, 0], [-np.sin(0.3), 0, np.cos(0.3)]])
    moved = place_accessories(1.2 * lm @ rot.T + [0.1, 0.2, 0.3])
    np.testing.assert_allclose(moved.eye_centres, 1.2 * a.eye_centres @ rot.T + [0.1, 0.2, 0.3], atol=1e-9)
    assert moved.eye_radius == pytest.approx(1.2 * a.eye_radius)
    # an open jaw makes the cavity taller
    apex = apex_weights("mouth_extreme", np.random.default_rng(0))[0]
    open_mouth = synthface().evaluate(np.zeros((1, 35), np.float32), apex[None]).landmarks[0]
    assert place_accessories(open_mouth).mouth_radii[1] > 2 * a.mouth_radii[1]
    with pytest.raises(ValueError, match=r"landmarks \[68, 3\]"):
        place_accessories(lm[:10])


def test_eyes_fill_the_eye_slits(view):
    """Without accessories the background shows through the slits; with them, the eyes."""
    frame = template_frame()
    view.set_frame(frame)
    camera = view.fit(Camera.named("front"))
    lm = frame.landmark_points()
    eyes = np.floor(camera.project(np.stack([lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)]),
                                   view.renderer.size)).astype(int)
    view.draw(camera, Style(background=CLEAR, landmarks=False, accessories=False))
    bare = view.renderer.read_rgba()
    view.draw(camera, Style(background=CLEAR, landmarks=False))          # on by default for SynthFace
    dressed = view.renderer.read_rgba()
    for x, y in eyes:
        assert bare[y, x, 3] == 0                                        # a hole ...
        assert dressed[y, x, 3] == 255                                   # ... now an eye
        pupil = dressed[y - 2:y + 3, x - 2:x + 3, :3].max(axis=-1)
        assert pupil.min() < 60                                          # the dark pupil at its centre
        assert dressed[y, x - 12:x + 13, :3].max() > 200                 # the white sclera beside it


def test_heatmap_style_draws_a_colorbar(view):
    frame = label_frames(("high_smile",))[0]
    assert frame.scalar.max() > 3.0 and frame.scalar_name == "distance to neutral (mm)"
    view.set_frame(frame)
    camera = view.fit(Camera.named("three_quarter"))
    view.draw(camera, Style(background=CLEAR, heatmap=True, landmarks=False))
    heat = view.renderer.read_rgba()
    view.draw(camera, Style(background=CLEAR, heatmap=True, colorbar=False, landmarks=False))
    no_bar = view.renderer.read_rgba()
    changed = np.any(heat != no_bar, axis=-1)
    assert changed.sum() > 1000                                          # the bar, its ticks and label
    assert np.flatnonzero(changed.any(axis=0)).min() > 256 * 0.55        # all on the right
    view.draw(camera, Style(background=CLEAR, landmarks=False))
    skin = view.renderer.read_rgba()
    covered = (skin[..., 3] == 255) & (no_bar[..., 3] == 255)
    # skin is red > green > blue; viridis (purple, blue, green, yellow) almost never is
    def skin_like(img):
        rgb = img[covered, :3].astype(int)
        return np.mean((rgb[:, 0] > rgb[:, 1]) & (rgb[:, 1] > rgb[:, 2]))
    assert skin_like(skin) > 0.9 and skin_like(no_bar) < 0.2


def test_one_upload_per_topology(view):
    frames = identity_frames(3, seed=1)
    for f in frames:
        view.set_frame(f)
    assert len(view._meshes) == 1
    assert not np.allclose(frames[0].vertices, frames[1].vertices)


def test_overlay_images():
    text = text_image(["60.0 fps", "frame 12"], size=14)
    assert text.dtype == np.uint8 and text.shape[2] == 4 and text.shape[0] > 2 * 14
    assert (text[..., :3] == 255).any()                                   # white glyphs
    bar = colorbar_image("viridis", 0.0, 6.0, "mm", 300)
    assert bar.shape[0] == 300 and bar.shape[2] == 4
    assert (bar[..., 3] == 0).mean() > 0.3                                # transparent around it
    tex = eye_texture(64)
    assert tex[31:33, 31:33].max() < 30 and tex[0, 0].mean() > 150      # pupil at the centre, sclera around
    v, _, uv = unit_sphere(8, 12)
    e = eye_uv(uv)
    front = v[:, 2] > 0.999
    np.testing.assert_allclose(e[front], 0.5, atol=1e-6)                   # the gaze pole at the centre
    np.testing.assert_allclose(np.linalg.norm(e[v[:, 2] < -0.999] - 0.5, axis=1), 0.5, atol=1e-6)


def test_landmark_free_topology_draws_without_points(view):
    t = synthface_template()
    topo = Topology(faces=t.faces, n_vertices=t.n_vertices, name="bare")
    frame = Frame(t.vertices, topo)
    assert frame.landmark_points() is None
    view.set_frame(frame)
    view.draw(view.fit(Camera.named("front")), Style(background=CLEAR))
    assert (view.renderer.read_rgba()[..., 3] > 0).mean() > 0.3
