"""Frame sources: folders, videos (whole and truncated) and cameras (through a
stand-in for the device), with clear errors and no exceptions mid-stream."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from runtime.tracking.frames import Camera, TrackingInputError, open_frames


def write_video(path, n=24, size=(64, 48)) -> None:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 24.0, size)
    for i in range(n):
        img = np.full((size[1], size[0], 3), 10 * (i % 20), np.uint8)
        img[:, : 4 + i] = (0, 0, 255)                              # red in BGR
        out.write(img)
    out.release()


def test_a_folder_yields_its_images_in_order_and_reports_a_broken_one(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((20, 30, 3), 40 * i + 10, np.uint8))
    (tmp_path / "001b.jpg").write_bytes(b"not a jpeg")
    with open_frames(str(tmp_path), size=(60, 40)) as src:
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert frames[2].image is None and "001b.jpg" in frames[2].problem
    good = [f for f in frames if f.image is not None]
    assert all(f.image.shape == (40, 60, 3) and f.image.dtype == np.uint8 for f in good)
    assert good[1].image.mean() == pytest.approx(50, abs=1)
    assert src.describe()["problems"] == 1


def test_a_video_reads_whole_and_a_truncated_one_ends_early_without_raising(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path)
    with open_frames(str(path)) as src:
        frames = list(src)
    assert len(frames) == 24 and src.describe()["ended_early"] is None
    r, g, b = frames[0].image[0, 0]
    assert r > 200 and b < 50                                      # RGB, not BGR
    assert frames[1].t == pytest.approx(1 / 24)
    cut = tmp_path / "cut.avi"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with open_frames(str(cut)) as src:
        frames = list(src)
    assert 0 < len(frames) < 24
    assert "ended after" in src.describe()["ended_early"] and "cut.avi" in src.describe()["ended_early"]


@pytest.mark.parametrize("make, match", [
    (lambda p: p / "missing.mp4", "missing.mp4: no such video file or folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no images"),
    (lambda p: (p / "x.mp4").write_bytes(b"\x00" * 200) and p / "x.mp4", "x.mp4: not a video"),
])
def test_what_cannot_be_read_at_all_is_named(tmp_path, make, match):
    with pytest.raises(TrackingInputError, match=match):
        open_frames(str(make(tmp_path)))


def test_a_camera_that_does_not_open_is_named():
    with pytest.raises(TrackingInputError, match="camera 99"):
        open_frames("camera:99")
    with pytest.raises(TrackingInputError, match="camera:N"):
        open_frames("camera:front")


class Device:
    """A stand-in for a camera device: delivers frames until ``fail`` is set."""

    opened = 0

    def __init__(self, index):
        Device.opened += 1

    def isOpened(self):
        return True

    def read(self):
        return (False, None) if Device.broken else (True, np.full((8, 8, 3), 90, np.uint8))

    def release(self):
        pass


def test_a_camera_that_stops_is_reported_and_reopened_at_most_once_a_second():
    now = [0.0]
    Device.broken, Device.opened = False, 0
    cam = Camera(0, capture_factory=Device, clock=lambda: now[0])
    assert cam.read().image is not None
    Device.broken = True
    lost = []
    for _ in range(30):                                            # 30 reads over 1.5 s
        now[0] += 0.05
        lost.append(cam.read())
    assert all(f.image is None and f.problem == "camera 0 delivered no frame" for f in lost)
    assert Device.opened == 1 + 2                                  # the first open, then once per second
    Device.broken = False
    now[0] += 0.05
    back = cam.read()
    assert back.image is not None and back.t == pytest.approx(now[0])
    cam.close()
    assert list(cam) == []
