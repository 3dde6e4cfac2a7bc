"""trainers/tracker/renders.py: SynthFace renders for the tracker, drawn by the real
headless renderer, and their ground truth (pose, landmarks, detector noise)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from models.face import synthface
from models.tracking.camera import Pose, euler_from_rotation, project, rotation_from_euler
from trainers.neutral.data import split_identities
from trainers.tracker.renders import (
    CAMERA_DISTANCE, MARGIN, N_CONTOUR, SHAPE_OFFSET, SOCKET_SHADE, TrackerRenderConfig, TrackerRenderer,
    TrackerSet, composite, draw_look, image_landmarks, pose_camera, render_samples, render_sequence, sample_truth,
    write_tracker_set,
)

#: a smaller image for the tests that do not measure the projection
SMALL = TrackerRenderConfig(size=(320, 240), face_px=(100.0, 150.0))
#: landmarks on open skin (brows, nose, outer lips), not on the eye or mouth slits' edges
SKIN_LANDMARKS = np.r_[17:36, 48:60]


@pytest.fixture(scope="module")
def renderer():
    with TrackerRenderer((640, 480)) as r:
        yield r


@pytest.fixture(scope="module")
def small_samples():
    return render_samples(SMALL, 3, show_progress=False)


def _box(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], cols[-1], rows[0], rows[-1]], np.float64)


def _bilinear(image: np.ndarray, x: float, y: float) -> float:
    j, i = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - j, y - i
    q = image[i:i + 2, j:j + 2].astype(np.float64)
    return float(q[0, 0] * (1 - fx) * (1 - fy) + q[0, 1] * fx * (1 - fy) + q[1, 0] * (1 - fx) * fy + q[1, 1] * fx * fy)


def test_camera_images_points_exactly_as_the_tracker_projects():
    rng = np.random.default_rng(0)
    v = rng.uniform(-0.1, 0.1, (50, 3))
    for size in ((640, 480), (320, 240), (201, 333)):
        r = rotation_from_euler(*rng.uniform(-1, 1, 3))
        s, t = rng.uniform(500, 1500), rng.uniform(50, 150, 2)
        window = pose_camera(size, s, t).project(v @ r.T, size)          # renderer pixels, centres at +0.5
        np.testing.assert_allclose(window - 0.5, project(v, r, s, t), atol=1e-9)


@pytest.mark.parametrize("angles", [(0.0, 5.0, -4.0), (45.0, -15.0, 10.0), (-60.0, 20.0, -15.0)])
def test_the_rendering_sits_where_the_projection_says(renderer, angles):
    """The alpha mask's box is the projected vertices' box; every landmark lands on the face;
    the depth under the skin landmarks is their depth."""
    cfg = TrackerRenderConfig()
    truth = sample_truth(cfg, 1)
    verts = synthface().vertices(truth.identity, truth.weights)[0].astype(np.float64)
    pose = Pose(rotation_from_euler(*np.radians(angles)), 1000.0, np.array([310.0, 245.0]))
    rgba = renderer.face_rgba(verts, pose, draw_look(np.random.default_rng(1)))
    alpha = rgba[..., 3]
    p = pose.project(verts)
    # pixel j covers [j - 0.5, j + 0.5]: the box of covered pixels is the vertices' box, rounded
    expected = np.round([p[:, 0].min(), p[:, 0].max(), p[:, 1].min(), p[:, 1].max()])
    np.testing.assert_allclose(_box(alpha > 0), expected, atol=1.0)
    lm = image_landmarks(synthface().template, verts, pose)
    for x, y in lm:
        i, j = int(round(y)), int(round(x))
        assert alpha[i - 1:i + 2, j - 1:j + 2].max() == 255                # on the face (jaw: on its outline)
    depth = renderer.depth()
    turned_z = (verts @ pose.rotation.T)[:, 2]
    ids = np.asarray(synthface().template.landmarks.vertex_ids(synthface().template.faces))
    # turned, only the half of the face toward the camera (a positive yaw turns its +x side away;
    # the nose's ridge and the far side can hide behind their neighbours)
    side = np.sign(angles[0]) * verts[ids[SKIN_LANDMARKS], 0]
    near = SKIN_LANDMARKS if angles[0] == 0 else SKIN_LANDMARKS[side < -1e-3]
    assert len(near) >= 10
    for k in near:
        x, y = p[ids[k]]
        assert _bilinear(depth, x, y) == pytest.approx(CAMERA_DISTANCE - turned_z[ids[k]], abs=1.5e-3), k


def test_holes_in_the_mask_show_a_dark_socket_not_the_background():
    face = np.zeros((60, 80, 4), np.uint8)
    face[10:50, 10:70] = (200, 150, 120, 255)
    face[25:35, 30:50] = 0                                       # a see-through eye slit
    look = replace(draw_look(np.random.default_rng(0)), noise=0.0, blur=0.0)
    back = np.full((60, 80, 3), (0, 255, 0), np.uint8)
    out = composite(face, look, back)
    np.testing.assert_array_equal(out[0, 0], (0, 255, 0))                                   # outside: background
    np.testing.assert_array_equal(out[30, 40], np.round(SOCKET_SHADE * 255 * np.asarray(look.albedo)))
    np.testing.assert_array_equal(out[20, 20], (200, 150, 120))


def test_far_jaw_landmarks_lie_on_the_silhouette(renderer):
    """A turned head: the jaw landmarks on the far side are on the outline (background within 2 px)."""
    cfg = TrackerRenderConfig()
    truth = sample_truth(cfg, 1)
    verts = synthface().vertices(truth.identity, truth.weights)[0].astype(np.float64)
    pose = Pose(rotation_from_euler(np.radians(50.0), 0.0, 0.0), 1000.0, np.array([320.0, 240.0]))
    alpha = renderer.face_rgba(verts, pose, draw_look(np.random.default_rng(2)))[..., 3]
    lm = image_landmarks(synthface().template, verts, pose)
    far = range(N_CONTOUR // 2 + 2, N_CONTOUR - 1)             # the face's left: the far side at positive yaw
    for k in far:
        i, j = np.round(lm[k, ::-1]).astype(int)
        assert alpha[i - 2:i + 3, j - 2:j + 3].min() == 0, k


def test_same_seed_same_images_and_truth_another_seed_differs(small_samples):
    again = render_samples(SMALL, 3, show_progress=False)
    assert small_samples.images.dtype == np.uint8 and small_samples.images.shape == (3, 240, 320, 3)
    np.testing.assert_array_equal(small_samples.images, again.images)
    for name, value in small_samples.arrays().items():
        np.testing.assert_array_equal(value, getattr(again, name), err_msg=name)
    # the renders are exactly the truth that sample_truth draws, and sample i does not depend on n
    truth = sample_truth(SMALL, 5)
    for name, value in small_samples.arrays().items():
        np.testing.assert_array_equal(value, getattr(truth, name)[:3], err_msg=name)
    other = render_samples(TrackerRenderConfig(size=(320, 240), face_px=(100.0, 150.0), seed=1), 3,
                           show_progress=False)
    assert not np.array_equal(other.yaw, small_samples.yaw)
    assert not np.array_equal(other.identity, small_samples.identity)
    assert all(np.abs(a.astype(int) - b).mean() > 10 for a, b in zip(other.images, small_samples.images))


def test_train_and_test_splits_never_share_an_identity():
    train = sample_truth(TrackerRenderConfig(split="train"), 60)
    test = sample_truth(TrackerRenderConfig(split="test"), 60)
    np.testing.assert_array_equal(train.identity, split_identities("train", 60, 0))
    np.testing.assert_array_equal(test.identity, split_identities("test", 60, 0))
    gaps = np.linalg.norm(train.identity[:, None] - test.identity[None], axis=-1)
    assert gaps.min() > 1.0
    assert len({row.tobytes() for row in train.identity}) == 60             # one face per image


def test_pose_ranges_euler_angles_scale_and_framing():
    cfg = TrackerRenderConfig()
    truth = sample_truth(cfg, 400)
    for name, limit in (("yaw", 60), ("pitch", 20), ("roll", 15)):
        a = getattr(truth, name)
        assert np.abs(a).max() <= limit and np.abs(a).max() > 0.9 * limit and a.min() < 0 < a.max(), name
    for i in range(len(truth)):
        r = truth.rotation[i]
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        np.testing.assert_allclose(np.degrees(euler_from_rotation(r)), [truth.yaw[i], truth.pitch[i], truth.roll[i]],
                                   atol=1e-9)
    # the face's image is face_px tall and stays inside the frame
    verts = synthface().vertices(truth.identity[:80], truth.weights[:80]).astype(np.float64)
    for i, v in enumerate(verts):
        p = truth.pose(i).project(v)
        assert 150 - 1e-6 <= np.ptp(p[:, 1]) <= 260 + 1e-6
        assert p.min() >= MARGIN - 1e-6 and p[:, 0].max() <= 640 - 1 - MARGIN + 1e-6
        assert p[:, 1].max() <= 480 - 1 - MARGIN + 1e-6
        np.testing.assert_allclose(truth.landmarks[i], image_landmarks(synthface().template, v, truth.pose(i)),
                                   atol=1e-9)
    # expressions: the 12 labels, mixes and neutral faces in their shares
    labels = truth.labels
    assert np.mean(labels == "neutral") == pytest.approx(0.1, abs=0.05)
    assert np.mean(labels == "mix") == pytest.approx(0.9 * 0.3, abs=0.07)
    assert len(set(labels) - {"neutral", "mix"}) == 12
    assert np.all(truth.weights[labels == "neutral"] == 0) and np.all(truth.weights[labels != "neutral"].max(1) > 0)
    # a narrower configuration is respected too
    narrow = sample_truth(TrackerRenderConfig(yaw_deg=10, pitch_deg=5, roll_deg=0, seed=3), 100)
    assert np.abs(narrow.yaw).max() <= 10 and np.abs(narrow.pitch).max() <= 5 and np.all(narrow.roll == 0)
    # skin tones span deep to light
    lightness = truth.albedo.mean(axis=1)
    assert lightness.min() < 0.3 and lightness.max() > 0.65


def test_detected_landmarks_carry_the_configured_noise():
    cfg = TrackerRenderConfig(seed=5)
    truth = sample_truth(cfg, 600)
    r = (truth.detected - truth.landmarks) / truth.interocular[:, None, None]      # inter-ocular units
    offset = r[:, N_CONTOUR:].mean(axis=1, keepdims=True)                          # the shape's shift, estimated
    inner, contour = (r - offset)[:, N_CONTOUR:], (r - offset)[:, :N_CONTOUR]
    assert inner.std() == pytest.approx(cfg.noise_inner, rel=0.08)
    assert contour.std() == pytest.approx(cfg.noise_contour, rel=0.08)
    assert offset.std() == pytest.approx(SHAPE_OFFSET, rel=0.1)
    assert np.abs(r.mean(axis=(0, 1))).max() < 0.003                               # unbiased
    # the inter-ocular distance is in pixels, about a third of the face's width
    assert np.all((truth.interocular > 0.2 * 150) & (truth.interocular < 0.8 * 260))
    quiet = sample_truth(TrackerRenderConfig(seed=5, noise_inner=0.0, noise_contour=0.0), 20)
    shift = quiet.detected - quiet.landmarks
    np.testing.assert_allclose(shift, np.broadcast_to(shift[:, :1], shift.shape), atol=1e-9)   # only the offset


def test_a_still_face_renders_identical_frames():
    truth = sample_truth(SMALL, 1)
    pose = truth.pose(0)
    still = render_sequence(truth.identity[0], np.repeat(truth.weights, 3, axis=0), pose, SMALL)
    assert still.shape == (3, 240, 320, 3) and still.dtype == np.uint8
    assert np.array_equal(still[0], still[1]) and np.array_equal(still[0], still[2])
    w = np.zeros((2, 52), np.float32)
    w[1, 24] = 1.0                                                       # one blendshape fully on
    turned = Pose(rotation_from_euler(0.3, 0.0, 0.0), pose.scale, pose.translation)
    moving = render_sequence(truth.identity[0], w, [pose, turned], SMALL)
    assert np.abs(moving[0].astype(int) - moving[1]).max() > 50
    with pytest.raises(ValueError, match="2 expression frames but 1 poses"):
        render_sequence(truth.identity[0], w, [pose], SMALL)


def test_write_open_round_trip_and_clear_errors(small_samples, tmp_path, capsys):
    folder = tmp_path / "set"
    opened = write_tracker_set(folder, SMALL, 3, show_progress=False)
    assert "images/s" in capsys.readouterr().out
    again = TrackerSet.open(folder)
    for ts in (opened, again):
        assert len(ts) == 3 and ts.config == SMALL
        for name, value in small_samples.arrays().items():
            np.testing.assert_array_equal(getattr(ts, name), value, err_msg=name)
        for i in range(3):
            np.testing.assert_array_equal(ts.image(i), small_samples.images[i])         # PNG is lossless
        np.testing.assert_array_equal(ts.images[-1], small_samples.images[2])
    first = again.samples(2)
    np.testing.assert_array_equal(first.images, small_samples.images[:2])
    np.testing.assert_array_equal(first.detected, small_samples.detected[:2])
    with pytest.raises(ValueError, match="asked for 4 samples, the set holds 3"):
        again.samples(4)
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert json.loads((folder / "config.json").read_text())["images_per_second"] > 0

    with pytest.raises(ValueError, match="nowhere"):
        TrackerSet.open(tmp_path / "nowhere")

    def broken(name: str):
        copy = tmp_path / name
        shutil.copytree(folder, copy)
        return copy

    no_config = broken("no_config")
    (no_config / "config.json").unlink()
    with pytest.raises(ValueError, match="config.json: missing"):
        TrackerSet.open(no_config)
    bad_config = broken("bad_config")
    (bad_config / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json: corrupt"):
        TrackerSet.open(bad_config)
    bad_truth = broken("bad_truth")
    (bad_truth / "truth.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(ValueError, match="bad_truth/truth.npz: corrupt"):
        TrackerSet.open(bad_truth)
    short_truth = broken("short_truth")
    arrays = dict(np.load(short_truth / "truth.npz"))
    arrays.pop("detected")
    np.savez(short_truth / "truth.npz", **arrays)
    with pytest.raises(ValueError, match="truth.npz: corrupt, arrays missing: detected"):
        TrackerSet.open(short_truth)
    no_truth = broken("no_truth")
    (no_truth / "truth.npz").unlink()
    with pytest.raises(ValueError, match="no_truth/truth.npz: missing"):
        TrackerSet.open(no_truth)
    no_image = broken("no_image")
    (no_image / "images" / "000001.png").unlink()
    with pytest.raises(ValueError, match="000001.png: image missing"):
        TrackerSet.open(no_image)
    bad_image = broken("bad_image")
    (bad_image / "images" / "000002.png").write_bytes(b"\x89PNG garbage")
    ts = TrackerSet.open(bad_image)
    with pytest.raises(ValueError, match="000002.png: not a readable PNG"):
        ts.image(2)


def test_cli_writes_a_tracker_set(tmp_path):
    out = tmp_path / "cli_set"
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "data", "tracker", "--out", str(out), "--n", "2",
                           "--split", "test", "--seed", "3", "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "tracker renders: 2 test images 640x480" in proc.stdout
    ts = TrackerSet.open(out)
    assert len(ts) == 2 and ts.config.split == "test" and ts.config.seed == 3
    assert ts.image(1).shape == (480, 640, 3)
    np.testing.assert_array_equal(ts.identity, split_identities("test", 2, 3))
    bad = subprocess.run([sys.executable, "-m", "runtime.cli", "data", "tracker", "--out", str(tmp_path / "x"),
                          "--n", "0", "--quiet"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "n must be at least 1" in bad.stderr
