"""The live tracking stages on rendered frames with dlib: a still face tracked
with detection amortised and the identity frozen; a black frame, an empty
frame, a failed read and two faces held or handled, never raised."""

from __future__ import annotations

import numpy as np
import pytest

from models.face import synthface
from models.face.labels import ARKIT_NAMES
from models.tracking.camera import Pose, rotation_from_euler
from models.tracking.cascade import Cascade
from models.tracking.fit import LandmarkFitter
from runtime.tracking.pipeline import Tracker, TrackerConfig
from trainers.neutral.data import split_identities
from trainers.tracker.renders import TrackerRenderConfig, render_sequence

SIZE = (640, 480)
JAW_OPEN = ARKIT_NAMES.index("jawOpen")


@pytest.fixture(scope="module")
def dlib68():
    from models.tracking.dlib68 import Dlib68

    return Dlib68()


@pytest.fixture(scope="module")
def frames():
    """12 frames of a still face, then 4 with the jaw open, at yaw 10 degrees."""
    w = np.zeros((16, 52), np.float32)
    w[12:, JAW_OPEN] = 0.7
    pose = Pose(rotation_from_euler(np.radians(10), 0.0, 0.0), 1100.0, np.array([320.0, 260.0]))
    return render_sequence(split_identities("test", 1)[0], w, pose, TrackerRenderConfig(size=SIZE, split="test"))


@pytest.fixture
def tracker(tracking_model, dlib68):
    fitter = LandmarkFitter(tracking_model, synthface().template)
    return Tracker(fitter, dlib68, Cascade(fitter), TrackerConfig(detect_every=5, freeze_after=6))


def test_a_still_face_is_tracked_with_detection_amortised(tracker, frames):
    out = [tracker.process(frames[i], i / 30) for i in range(12)]
    assert [f.status for f in out] == ["tracking"] * 12
    detected = [i for i, f in enumerate(out) if f.ms["detect"] > 1.0]
    assert detected == [0, 6]                                     # the first frame, then every 5 tracked ones
    assert tracker.state.identity is not None                     # frozen after 6 confident frames
    assert all(f.mesh.shape == (5229, 3) and f.weights.shape == (52,) for f in out)
    jitter = np.stack([f.mesh for f in out[6:]]).std(axis=0).mean() * 1e3
    assert jitter < 0.05                                          # mm, on a face that does not move
    assert abs(out[-1].pose[0] - 10) < 6                          # yaw, degrees


def test_an_open_jaw_reaches_the_blendshape_weights(tracker, frames):
    out = [tracker.process(frames[i], i / 30) for i in range(16)]
    assert out[10].weights[JAW_OPEN] < 0.2 < 0.5 < out[15].weights[JAW_OPEN]         # the truth: 0, then 0.7


def test_bad_frames_hold_the_last_good_mesh_and_say_why(tracker, frames):
    none = tracker.process(None, 0.0, problem="frame 0 of clip.mp4 could not be decoded")
    assert none.status == "none" and none.mesh is None and "could not be decoded" in none.problem
    good = tracker.process(frames[0], 0.1)
    black = tracker.process(np.zeros_like(frames[0]), 0.2)
    assert black.status == "held" and black.problem == "black frame" and np.array_equal(black.mesh, good.mesh)
    empty = frames[0].copy()
    empty[:] = frames[0][5:10, 5:10].mean(axis=(0, 1)).astype(np.uint8)   # the background colour, no face
    held = tracker.process(empty, 0.3)
    assert held.status == "held" and held.problem == "no face found" and np.array_equal(held.mesh, good.mesh)
    back = tracker.process(frames[1], 0.4)
    assert back.status == "tracking"


def test_with_two_faces_the_track_keeps_its_own(tracker, frames):
    first = tracker.process(frames[0], 0.0)
    assert first.status == "tracking"
    two = frames[0].copy()
    shifted = np.roll(frames[0], 250, axis=1)                        # the same face again, to the right
    two[:, 400:] = shifted[:, 400:]
    tracker.state.since_detect = tracker.config.detect_every       # force a detection now
    out = tracker.process(two, 1 / 30)
    assert out.status == "tracking"
    assert np.abs(out.landmarks[:, 0].mean() - first.landmarks[:, 0].mean()) < 20   # still the left face
