"""clients/viewer.py: the input logic (no window), and the real window under
Xvfb: it plays a recording, or shows a live stream over ZeroMQ and WebSocket,
takes a screenshot and closes by itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clients.recording import RecordingSource, load_recording, recording_from_frames, save_recording
from clients.viewer import ViewerState
from runtime.frames import Frame
from runtime.render import Camera
from runtime.render.gallery import label_frames

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Two labels, 20 frames each."""
    frames = []
    for f in label_frames(("mouth_open", "high_smile")):
        for j in range(20):                                 # the apex, growing by 2 %
            w = j / 19
            frames.append(Frame(vertices=(f.vertices * (0.98 + 0.02 * w)).astype(np.float32), topology=f.topology,
                                t=len(frames) / 30.0, index=len(frames), scalar=f.scalar * w,
                                scalar_name=f.scalar_name, label=f.label))
    path = tmp_path_factory.mktemp("rec") / "take.npz"
    return save_recording(path, recording_from_frames(frames, fps=30.0))


def test_keys_and_mouse_drive_camera_style_and_source(recording):
    source = RecordingSource(load_recording(recording))
    state = ViewerState(source=source, camera=Camera.named("front", distance=0.5))
    assert source.current()["label"] == "mouth_open"
    state.key("right")
    assert source.current()["label"] == "high_smile" and "label: high_smile" in state.message
    state.key("right")
    assert source.current()["label"] == "mouth_open"                  # wraps around
    state.key("up")
    assert "no subjects" in state.message
    for key, attr in (("w", "wireframe"), ("l", "landmarks"), ("h", "heatmap")):
        before = getattr(state.style, attr)
        state.key(key)
        assert getattr(state.style, attr) is (not before)
    state.key("p")
    assert state.camera.projection == "orthographic"
    state.key("3")
    assert state.camera.yaw == 90.0 and state.needs_fit
    yaw = state.camera.yaw
    state.drag(10, 0, "left")
    assert state.camera.yaw == pytest.approx((yaw - 4.0) % 360)
    d = state.camera.half_height
    state.scroll(1)
    assert state.camera.half_height == pytest.approx(0.9 * d)
    state.key("space")
    assert state.paused
    state.key("q")
    assert not state.running
    frame = source.frame(25)
    assert state.heatmap_style(frame).scalar_range == source.scalar_range()


def _free_display():
    """Start Xvfb on a display it picks itself (-displayfd); returns (process, ':N')."""
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not report a display number")
    return proc, f":{number}"


def _view_under_xvfb(source: str, shot: Path, *extra: str) -> subprocess.CompletedProcess:
    """``facecast view SOURCE --frames 40 --screenshot SHOT`` in a window on a fresh Xvfb display."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb; make system-deps installs it)")
    xvfb, display = _free_display()
    try:
        env = dict(os.environ, DISPLAY=display)
        return subprocess.run(
            [sys.executable, "-m", "clients.cli", "view", source, "--frames", "40", "--screenshot",
             str(shot), "--size", "320x240", "--no-vsync", *extra],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=30)


def _assert_face_screenshot(shot: Path) -> None:
    from PIL import Image

    img = np.asarray(Image.open(shot))
    assert img.shape == (240, 320, 3)
    rgb = img.astype(int)
    skin = (rgb[..., 0] > rgb[..., 1] + 15) & (rgb[..., 1] > rgb[..., 2]) & (rgb[..., 0] > 120)
    assert 0.15 < skin.mean() < 0.7                                   # the face fills the middle
    assert skin[:, :40].mean() < 0.02 and skin[:, -40:].mean() < 0.02  # background at the sides
    hud = img[:30, :160]
    assert (hud.min(axis=-1) > 240).any() and (hud.max(axis=-1) < 90).any()   # the white-on-dark readout


@pytest.mark.slow
def test_window_under_xvfb_plays_screenshots_and_closes(recording, tmp_path):
    shot = tmp_path / "shot.png"
    proc = _view_under_xvfb(str(recording), shot, "--label", "high_smile")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("viewer: 40 frames in ")
    _assert_face_screenshot(shot)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["tcp", "ws"])
def test_window_under_xvfb_shows_a_live_stream(serve_runtime, scheme, tmp_path):
    live = serve_runtime()
    sid = live.open(label="high_smile")
    live.wait_playing()
    url = f"{live.zmq}/{sid}" if scheme == "tcp" else f"{live.ws_url}{sid}"
    shot = tmp_path / f"live_{scheme}.png"
    proc = _view_under_xvfb(url, shot)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("viewer: 40 frames in ")
    _assert_face_screenshot(shot)
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copy(shot, artifacts / shot.name)
