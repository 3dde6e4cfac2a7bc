"""The ``track`` source in the engine (sans I/O, fake clock): tracked frames from
an image folder streamed with their status, held frames said so, the stream
ending with its input; and ``facecast track`` refusing what it cannot read."""

from __future__ import annotations

import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from models.face import synthface, synthface_template
from models.tracking.camera import Pose, rotation_from_euler
from models.tracking.cascade import Cascade
from models.tracking.fit import LandmarkFitter
from runtime import protocol as P
from runtime.engine import Engine, EngineConfig
from runtime.registry import Registry
from runtime.tracking.frames import open_frames
from runtime.tracking.pipeline import Tracker, TrackerConfig
from runtime.tracking.source import TrackSource
from trainers.neutral.data import split_identities
from trainers.tracker.renders import TrackerRenderConfig, render_sequence

PERIOD = 1 / 60


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Six rendered frames of a face, a black one, then two more of the face."""
    out = tmp_path_factory.mktemp("frames")
    pose = Pose(rotation_from_euler(np.radians(8), 0.0, 0.0), 1100.0, np.array([320.0, 260.0]))
    frames = render_sequence(split_identities("test", 2)[1], np.zeros((8, 52), np.float32), pose,
                             TrackerRenderConfig(split="test"))
    images = list(frames[:6]) + [np.zeros_like(frames[0])] + list(frames[6:])
    for i, img in enumerate(images):
        cv2.imwrite(str(out / f"{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return out


def test_a_track_stream_sends_tracked_frames_says_when_held_and_ends_with_its_input(folder, tracking_model):
    from models.tracking.dlib68 import Dlib68

    face = synthface()
    fitter = LandmarkFitter(tracking_model, face.template)
    tracker = Tracker(fitter, Dlib68(), Cascade(fitter), TrackerConfig(freeze_after=3))
    source = TrackSource(open_frames(str(folder)), tracker, face.template)          # paced at 30 fps
    engine = Engine(Registry.discover(synthface_template()), EngineConfig(), epoch=0.0, wall=lambda: 0)
    sid = engine.attach(source, 0.0)
    out, t = [], 0.0
    deadline = time.monotonic() + 60
    while sid in engine.sessions and time.monotonic() < deadline:
        out += engine.tick(t)
        t += PERIOD
        time.sleep(0.005)                                  # the tracking thread works meanwhile
    assert sid not in engine.sessions, "the stream did not end with its input"
    headers = [m.header for m in out if m.header["type"] == "frame" and m.stream == sid]
    ends = [m.header for m in out if m.header["type"] == "end" and m.stream == sid]
    assert ends and ends[0]["reason"] == "finished"
    statuses = {h["track"]["status"] for h in headers}
    assert "tracking" in statuses
    held = [h["track"] for h in headers if h["track"]["status"] == "held"]
    assert held and all(h["problem"] == "black frame" and h["frame"] == 6 for h in held)
    tracked = [h for h in headers if h["track"]["status"] == "tracking"]
    assert all(len(h["track"]["pose"]) == 3 and "bs" in h for h in tracked)
    assert {h["track"]["frame"] for h in headers if "frame" in h["track"]} == set(range(9))         # a folder: every frame streamed
    mesh = P.decode_vertices(next(m for m in out if m.stream == sid and m.header["type"] == "frame"
                                  and m.header["track"]["status"] == "tracking").payload,
                             tracked[0], engine.template)
    assert mesh.shape == (5229, 3) and np.isfinite(mesh).all()
    assert source.describe()["frames"] == 9 and source.describe()["held"] == 1


@pytest.mark.parametrize("flag, value, named", [("--video", "/nonexistent/clip.mp4", "/nonexistent/clip.mp4"),
                                                 ("--camera", "97", "camera 97")])
def test_facecast_track_names_an_input_it_cannot_read(flag, value, named):
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "track", flag, value, "--zmq", "off",
                           "--control", "off", "--ws", "off"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and named in proc.stderr
