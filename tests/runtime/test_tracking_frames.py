"""Frame sources: image folders, videos (whole, resized, truncated), and the camera's
read-and-reopen logic through a stand-in for the device (a fake clock, no sleeps);
what cannot be opened is named, and nothing raises mid-stream."""

from __future__ import annotations

import dataclasses
import threading
import time

import cv2
import imageio.v2 as iio
import numpy as np
import pytest

from runtime.tracking.frames import BLACK_FRAME, Camera, CameraReader, TrackingInputError, open_frames

W, H, N, FPS = 64, 48, 24, 24.0


def picture(i: int) -> np.ndarray:
    """Frame i of the test clips, RGB: grey level 40 + 8 i, a red bar 4 + i pixels wide."""
    img = np.full((H, W, 3), 40 + 8 * i, np.uint8)
    img[:, : 4 + i] = (255, 0, 0)
    return img


def bar_width(rgb: np.ndarray) -> int:
    row = rgb[rgb.shape[0] // 2]
    red = (row[:, 0] > 180) & (row[:, 2] < 90)
    return int(red.sum())


def write_avi(path, images) -> None:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    for img in images:
        out.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out.release()


def write_mp4(path, images) -> None:
    """H.264 with its index at the front (faststart), every frame a key frame."""
    with iio.get_writer(str(path), fps=FPS, codec="libx264", quality=None, macro_block_size=16,
                        ffmpeg_params=["-movflags", "+faststart", "-g", "1", "-crf", "12"]) as out:
        for img in images:
            out.append_data(img)


# ---- image folders -----------------------------------------------------------------------------------


def test_a_folder_yields_its_images_by_name_and_reports_a_broken_one_then_goes_on(tmp_path):
    cv2.imwrite(str(tmp_path / "b_001.png"), cv2.cvtColor(picture(1), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "a_000.JPG"), cv2.cvtColor(picture(0), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "d_003.bmp"), cv2.cvtColor(picture(3), cv2.COLOR_RGB2BGR))
    (tmp_path / "c_002.jpeg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("not an image, not listed")
    with open_frames(tmp_path, size=(32, 24), fps=10.0) as src:
        frames = list(src)
        described = src.describe()
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.t for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert frames[2].image is None and str(tmp_path / "c_002.jpeg") in frames[2].problem
    good = [frames[i] for i in (0, 1, 3)]
    assert all(f.image.shape == (24, 32, 3) and f.image.dtype == np.uint8 and f.problem is None for f in good)
    assert [bar_width(f.image) for f in good] == pytest.approx([2, 2.5, 3.5], abs=1)   # name order, RGB
    assert all(f.source == str(tmp_path) for f in frames)
    assert described == {
        "kind": "images", "name": str(tmp_path), "path": str(tmp_path), "size": [32, 24], "fps": 10.0,
        "frames": 4, "problems": 1, "last_problem": frames[2].problem, "ended": True, "ended_early": None}
    with pytest.raises(dataclasses.FrozenInstanceError):
        frames[0].index = 7


def test_a_black_image_is_delivered_with_the_problem_named(tmp_path):
    cv2.imwrite(str(tmp_path / "0.png"), cv2.cvtColor(picture(0), cv2.COLOR_RGB2BGR))
    noise = np.random.default_rng(0).integers(0, 4, (H, W, 3)).astype(np.uint8)     # a covered lens
    cv2.imwrite(str(tmp_path / "1.png"), noise)
    cv2.imwrite(str(tmp_path / "2.png"), np.full((H, W, 3), 25, np.uint8))           # dim, not black
    frames = list(open_frames(str(tmp_path)))
    assert [f.problem for f in frames] == [None, BLACK_FRAME, None]
    np.testing.assert_array_equal(frames[1].image, noise[..., ::-1])     # written BGR, read RGB


def test_a_source_is_one_stream_that_resumes_and_stops_when_closed(tmp_path):
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"{i}.png"), cv2.cvtColor(picture(i), cv2.COLOR_RGB2BGR))
    src = open_frames(str(tmp_path))
    first = next(iter(src))
    rest = list(src)
    assert [f.index for f in [first, *rest]] == [0, 1, 2, 3] and rest[-1].t == pytest.approx(3 / 30)
    assert list(src) == []
    src2 = open_frames(str(tmp_path))
    next(iter(src2))
    src2.close()
    assert list(src2) == [] and src2.describe()["ended"] is False


# ---- video files -------------------------------------------------------------------------------------


def test_a_video_reads_whole_in_rgb_at_its_frame_rate_and_resized(tmp_path):
    path = tmp_path / "clip.avi"
    write_avi(path, [picture(i) for i in range(N)])
    with open_frames(str(path)) as src:
        frames = list(src)
        assert src.describe() == {
            "kind": "video", "name": str(path), "path": str(path), "size": [W, H], "fps": FPS, "frames": N,
            "problems": 0, "last_problem": None, "ended": True, "ended_early": None, "expected_frames": N}
    assert [f.index for f in frames] == list(range(N))
    assert [f.t for f in frames] == pytest.approx([i / FPS for i in range(N)])
    assert [bar_width(f.image) for f in frames] == pytest.approx([4 + i for i in range(N)], abs=1)
    r, g, b = frames[0].image[H // 2, 0]
    assert r > 200 and b < 60                                            # RGB, not BGR
    with open_frames(str(path), size=(640, 480)) as src:
        big = next(iter(src))
    assert big.image.shape == (480, 640, 3)


@pytest.mark.parametrize("suffix, write", [(".avi", write_avi), (".mp4", write_mp4)])
def test_a_truncated_video_gives_its_frames_until_the_break_then_says_it_ended_early(tmp_path, suffix, write):
    whole = tmp_path / f"whole{suffix}"
    write(whole, [picture(i) for i in range(N)])
    cut = tmp_path / f"cut{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with open_frames(str(cut)) as src:
        frames = list(src)                                               # no exception mid-stream
        described = src.describe()
    assert 0 < len(frames) < N
    assert [bar_width(f.image) for f in frames] == pytest.approx([4 + i for i in range(len(frames))], abs=1)
    assert described["ended"] and described["expected_frames"] == N
    assert src.ended_early == described["ended_early"] == (
        f"frame {len(frames)} of {cut} could not be decoded: the video ended after {len(frames)} "
        f"of its {N} frames (truncated or corrupt)")


def test_a_video_with_black_frames_delivers_them_marked(tmp_path):
    path = tmp_path / "fade.avi"
    write_avi(path, [picture(0), np.zeros((H, W, 3), np.uint8), picture(2)])
    frames = list(open_frames(str(path)))
    assert [f.problem for f in frames] == [None, BLACK_FRAME, None]
    assert all(f.image is not None for f in frames)


# ---- what cannot be opened ---------------------------------------------------------------------------


def test_what_cannot_be_opened_at_all_is_named(tmp_path):
    with pytest.raises(TrackingInputError, match=f"{tmp_path / 'missing.mp4'}: no such video file or folder"):
        open_frames(str(tmp_path / "missing.mp4"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(TrackingInputError, match=f"{tmp_path / 'empty'}: no images"):
        open_frames(tmp_path / "empty")
    (tmp_path / "x.mp4").write_bytes(b"\x00" * 2000)
    with pytest.raises(TrackingInputError, match=f"{tmp_path / 'x.mp4'}: not a video"):
        open_frames(str(tmp_path / "x.mp4"))
    with pytest.raises(TrackingInputError, match="camera 99 cannot be opened"):   # the real OpenCV path
        open_frames("camera:99")
    with pytest.raises(TrackingInputError, match="camera:N"):
        open_frames("camera:front")
    with pytest.raises(TrackingInputError, match="camera:0"):
        open_frames("0")                                                 # a path that looks like a camera
    assert issubclass(TrackingInputError, ValueError)


# ---- cameras, through a stand-in for the device ------------------------------------------------------


class Device:
    """A camera stand-in: ``plugged`` says whether it delivers; ``opened`` counts opens."""

    def __init__(self, shape=(H, W, 3)):
        self.plugged, self.opened, self.shape = True, 0, shape
        self.now = 0.0                                  # the fake clock, advanced by reads and waits
        self.waits: list[float] = []

    def factory(self, index):
        self.opened += 1
        device = self

        class Capture:
            alive = device.plugged                     # a capture opened while unplugged never opens

            def isOpened(self):
                return self.alive

            def read(self):
                device.now += 1 / 30
                if not (self.alive and device.plugged):
                    return False, None
                bgr = np.zeros(device.shape, np.uint8)
                bgr[..., 0], bgr[..., -1] = 200, 50     # blue in BGR
                return True, bgr

            def release(self):
                self.alive = False

            def get(self, prop):
                return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: device.shape[1],
                        cv2.CAP_PROP_FRAME_HEIGHT: device.shape[0]}.get(prop, 0.0)

        return Capture()

    def clock(self):
        return self.now

    def wait(self, seconds):
        self.waits.append(seconds)
        self.now += seconds


def camera(dev: Device, **kw) -> Camera:
    return Camera(0, capture_factory=dev.factory, clock=dev.clock, wait=dev.wait, **kw)


def test_a_camera_delivers_rgb_frames_timed_from_the_first_read():
    dev = Device()
    cam = camera(dev, size=(32, 24))
    frames = [cam.read() for _ in range(3)]
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.t for f in frames] == pytest.approx([0.0, 1 / 30, 2 / 30])
    assert frames[0].image.shape == (24, 32, 3) and tuple(frames[0].image[0, 0]) == (50, 0, 200)
    assert cam.describe() | {"name": None} == {
        "kind": "camera", "name": None, "index": 0, "reopens": 0, "size": [32, 24], "fps": 30.0, "frames": 3,
        "problems": 0, "last_problem": None, "ended": False, "ended_early": None}


def test_a_camera_that_stops_gives_k_empty_frames_then_is_reopened_at_most_once_a_second():
    dev = Device()
    cam = camera(dev, max_failures=3)
    assert cam.read().image is not None
    dev.plugged = False
    lost = [cam.read() for _ in range(3)]
    assert [f.problem for f in lost] == ["camera 0 delivered no frame"] * 3
    assert dev.opened == 1                                                 # no reopen during the first K
    lost += [cam.read() for _ in range(57)]                                # never raises
    assert all(f.image is None for f in lost)
    span = lost[-1].t - lost[2].t
    assert 2.0 < span < 8.0
    assert dev.opened - 1 == cam.reader.reopens <= span / 1.0 + 1          # at most once a second
    assert cam.reader.reopens >= 2
    assert dev.waits and max(dev.waits) <= 0.1 + 1e-9                      # never blocked past one poll
    assert any("could not be reopened" in f.problem for f in lost)
    assert any("lost after 3 failed reads" in f.problem for f in lost)
    assert all(b.t >= a.t for a, b in zip(lost, lost[1:]))
    dev.plugged = True                                                     # the device comes back
    back = [cam.read() for _ in range(15)]
    first = next(i for i, f in enumerate(back) if f.image is not None)
    assert back[first].t - lost[-1].t <= 1.0 + 0.2                         # noticed within a second
    assert all(f.image is not None and f.problem is None for f in back[first:])
    assert cam.reader.failures == 0 and cam.describe()["reopens"] == cam.reader.reopens
    cam.close()
    assert list(cam) == []


def test_a_camera_that_drops_fewer_than_k_frames_is_not_reopened():
    dev = Device()
    cam = camera(dev, max_failures=3)
    for _ in range(4):
        dev.plugged = False
        assert [cam.read().image for _ in range(2)] == [None, None]
        dev.plugged = True
        assert cam.read().image is not None
    assert dev.opened == 1 and cam.describe()["problems"] == 8


def test_a_device_that_raises_is_a_failed_read_or_open_never_an_exception():
    dev = Device()
    reader = CameraReader(0, dev.factory, max_failures=1, clock=dev.clock, wait=dev.wait)

    def faulty_read():
        raise cv2.error("driver fault")

    reader.capture.read = faulty_read
    assert reader.read() == (None, "camera 0 delivered no frame")
    calls = []

    def broken(index):
        calls.append(index)
        raise OSError("device unplugged")

    reader._factory = broken
    image, problem = reader.read()
    assert image is None and problem == "camera 0 could not be reopened (OSError: device unplugged)"
    assert calls == [0]


def test_a_camera_that_does_not_open_or_delivers_odd_images_is_named():
    dev = Device()
    dev.plugged = False
    with pytest.raises(TrackingInputError, match="camera 0 cannot be opened"):
        camera(dev)
    odd = Device(shape=(H, W, 2))
    frame = camera(odd).read()
    assert frame.image is None and "camera 0 delivered an image of shape (48, 64, 2)" in frame.problem


def test_closing_a_camera_releases_it_and_ends_its_stream():
    dev = Device()
    cam = camera(dev)
    stream = iter(cam)
    assert next(stream).image is not None
    capture = cam.reader.capture
    cam.close()
    assert not capture.isOpened() and list(stream) == []
    assert cam.reader.read() == (None, "camera 0 is closed")


def test_close_from_another_thread_ends_a_lost_cameras_wait_at_once():
    dev = Device()
    cam = Camera(0, capture_factory=dev.factory, max_failures=1, poll_s=30.0, reopen_s=60.0)   # real clock
    dev.plugged = False
    cam.read(), cam.read()                                                  # lost; the next read would wait 30 s
    threading.Timer(0.05, cam.close).start()
    start = time.monotonic()
    frame = cam.read()
    assert time.monotonic() - start < 5.0 and frame.image is None
