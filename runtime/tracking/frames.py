"""Frame sources, the tracker's first stage: a camera, a video file or a folder of images.

``open_frames(spec)`` takes ``camera:N`` (or an int N), a video path or a folder
and returns a ``FrameSource``: one stream of ``Frame`` (uint8 RGB ``[H, W, 3]``
images, or ``image=None`` with the reason in ``problem``). Why this shape: a
live tracker must keep running through bad input and say what went wrong, so

- what cannot be opened at all raises ``TrackingInputError`` naming it (a
  missing path, an empty folder, a file OpenCV cannot decode, a camera that
  does not open);
- once open, iteration never raises. A folder's unreadable image is one Frame
  with ``image=None`` and a problem naming the file, then the next image
  follows. A video that breaks off (truncated, corrupt) ends there, and
  ``ended_early`` / ``describe()`` say so against the container's frame count.
  A camera that stops delivering yields ``image=None`` frames, then is
  reopened at most once per ``REOPEN_S`` (``CameraReader``); it never ends by
  itself. A (nearly) black image is delivered with the problem ``"black
  frame"``: the tracker decides what to do with it.

Timestamps ``t`` (seconds): ``index / fps`` for videos and folders (the media
time), ``time.monotonic()`` since the first read for cameras (the arrival
time). ``size=(W, H)`` resizes every image; None keeps the native size.
OpenCV reads cameras and videos (``cv2.VideoCapture``, BGR converted to RGB)
and images (``cv2.imread``).

A source is one stream with one consumer: iterating again continues where the
last iteration stopped; after ``close()`` it yields nothing.
"""

from __future__ import annotations

import math
import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: frames per second of an image folder (and of a video whose container does not say)
DEFAULT_FPS = 30.0
#: mean intensity (0-255) below which an image is a "black frame": a covered lens, a camera
#: starting up or a fade to black reads 0-3 (sensor noise); a dim but usable room reads 20 and up
BLACK_MEAN = 4.0
#: every BLACK_STRIDE-th pixel along each axis is enough for that mean (16x cheaper at stride 4)
BLACK_STRIDE = 4
BLACK_FRAME = "black frame"


def is_black(image: np.ndarray, below: float = BLACK_MEAN) -> bool:
    """Whether an image's mean intensity (sampled every ``BLACK_STRIDE`` pixels) is under ``below``."""
    return float(image[::BLACK_STRIDE, ::BLACK_STRIDE].mean()) < below
#: consecutive failed reads before a camera counts as lost and is reopened
CAMERA_MAX_FAILURES = 5
#: seconds between attempts to reopen a lost camera
REOPEN_S = 1.0
#: seconds a lost camera's read waits between reopen attempts (so a consumer is not spun
#: through thousands of empty frames, nor blocked for a whole second)
POLL_S = 0.1


class TrackingInputError(ValueError):
    """A camera, video or folder that cannot be read at all (the message names it)."""


@dataclass(frozen=True)
class Frame:
    """One read of a source: ``image`` uint8 RGB ``[H, W, 3]``, or None when the read failed."""

    index: int                      #: 0-based count of frames this source delivered before this one
    t: float                        #: seconds: media time (video, folder) or arrival time (camera)
    image: np.ndarray | None
    problem: str | None = None      #: None, or a short sentence naming what is wrong
    source: str = ""                #: the source's name (a path, "camera 0")


def _rgb(image: np.ndarray, size: tuple[int, int] | None) -> tuple[np.ndarray | None, str | None]:
    """An OpenCV image (gray, BGR or BGRA, uint8) as RGB ``[H, W, 3]`` at ``size``; or why not."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        return None, f"an image of shape {image.shape} and type {image.dtype}, not 8-bit gray or colour"
    channels = image.shape[2] if image.ndim == 3 else 1
    rgb = cv2.cvtColor(image, {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}[channels])
    if size is not None and (rgb.shape[1], rgb.shape[0]) != size:
        shrink = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return rgb, None


class FrameSource(ABC):
    """An iterable of ``Frame`` with ``close()``, a context manager, and ``describe()``."""

    kind = ""

    def __init__(self, name: str, size: tuple[int, int] | None, black_below: float = BLACK_MEAN):
        if size is not None:
            if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
                raise ValueError(f"size must be (width, height) in pixels, got {size!r}")
            size = (int(size[0]), int(size[1]))
        self.name, self.size, self.black_below = name, size, float(black_below)
        self.fps: float | None = None
        self.frames = 0                          #: frames delivered so far
        self.problems = 0                        #: of which with a problem
        self.last_problem: str | None = None
        self.ended_early: str | None = None      #: why a video stopped before its container's end
        self.ended = False                       #: a file or folder has nothing more to give
        self.closed = False
        self._native: tuple[int, int] | None = None   #: (W, H) of the last decoded image

    @abstractmethod
    def _read(self) -> Iterator[Frame]:
        """The stream, from where it stands now."""

    def __iter__(self) -> Iterator[Frame]:
        return self._read()

    def _deliver(self, t: float, image: np.ndarray | None, problem: str | None) -> Frame:
        """Count and return the next Frame from a decoded OpenCV image (or None and a problem)."""
        rgb = None
        if image is not None:
            self._native = (image.shape[1], image.shape[0])
            rgb, bad = _rgb(image, self.size)
            if bad is not None:
                problem = f"{self.name} delivered {bad}"
            elif problem is None and is_black(rgb, self.black_below):
                problem = BLACK_FRAME
        frame = Frame(self.frames, float(t), rgb, problem, self.name)
        self.frames += 1
        if problem is not None:
            self.problems += 1
            self.last_problem = problem
        return frame

    def _where(self) -> dict:
        return {"path": self.name}

    def describe(self) -> dict:
        """What this source is and how it has gone: kind, path or index, size (W, H) of the
        images it delivers, fps, frames and problems so far, the last problem, whether it ended
        (early, and why)."""
        size = self.size or self._native
        return {"kind": self.kind, "name": self.name, **self._where(), "size": list(size) if size else None,
                "fps": self.fps, "frames": self.frames, "problems": self.problems,
                "last_problem": self.last_problem, "ended": self.ended, "ended_early": self.ended_early}

    def _release(self) -> None:
        """Free what the source holds (a capture); called once by ``close``."""

    def close(self) -> None:
        """Stop the stream and free the device or file; safe to call twice."""
        if not self.closed:
            self.closed = True
            self._release()

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageFolder(FrameSource):
    """The images of a folder (``IMAGE_SUFFIXES``, any case), sorted by name, at ``fps``."""

    kind = "images"

    def __init__(self, folder: Path, size=None, fps: float = DEFAULT_FPS, black_below: float = BLACK_MEAN):
        super().__init__(str(folder), size, black_below)
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if not folder.is_dir():
            raise TrackingInputError(f"{folder}: no such folder of images")
        self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.paths:
            raise TrackingInputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        self.fps = float(fps)
        self._next = 0

    def _read(self) -> Iterator[Frame]:
        while not self.closed and self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            try:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            except cv2.error:                                   # a decoder that throws: one bad frame
                image = None
            yield self._deliver(self.frames / self.fps, image,
                                None if image is not None else f"{path} could not be read as an image")
        self.ended = self._next == len(self.paths)


class VideoFile(FrameSource):
    """A video file through ``cv2.VideoCapture``; ``t = index / fps`` (the container's fps)."""

    kind = "video"

    def __init__(self, path: Path, size=None, black_below: float = BLACK_MEAN):
        super().__init__(str(path), size, black_below)
        if not path.is_file():
            raise TrackingInputError(f"{path}: no such video file")
        self._lock = threading.Lock()                           # close() from another thread waits for a read
        self.capture = cv2.VideoCapture(str(path))
        ok, first = self.capture.read() if self.capture.isOpened() else (False, None)
        if not ok or first is None:
            self.capture.release()
            raise TrackingInputError(f"{path}: not a video OpenCV can decode (or damaged before its first frame)")
        self._first: np.ndarray | None = first
        self._native = (first.shape[1], first.shape[0])
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
        count = self.capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.expected: int | None = int(count) if math.isfinite(count) and count > 0 else None

    def _grab(self) -> np.ndarray | None:
        with self._lock:
            if self._first is not None:
                image, self._first = self._first, None
                return image
            if self.closed:
                return None
            try:
                ok, image = self.capture.read()
            except cv2.error:
                ok = False
            return image if ok else None

    def _read(self) -> Iterator[Frame]:
        while not self.closed and not self.ended:
            image = self._grab()
            if image is not None:
                yield self._deliver(self.frames / self.fps, image, None)
            elif not self.closed:
                self._end()

    def _end(self) -> None:
        """The decoder gave no more frames: the end, or a break before it (against the container)."""
        self.ended = True
        if self.expected is not None and self.frames < self.expected:
            self.ended_early = (f"frame {self.frames} of {self.name} could not be decoded: the video ended after "
                                f"{self.frames} of its {self.expected} frames (truncated or corrupt)")

    def describe(self) -> dict:
        return {**super().describe(), "expected_frames": self.expected}

    def _release(self) -> None:
        with self._lock:
            self.capture.release()


Capture = Any
"""What ``capture_factory(index)`` returns: ``isOpened()``, ``read() -> (ok, bgr)``,
``release()``, ``get(prop)``, as ``cv2.VideoCapture``."""


class CameraReader:
    """The read-and-reopen logic of one camera, without the hardware.

    ``capture_factory(index)`` opens the device (``cv2.VideoCapture`` for a
    real camera). ``read() -> (bgr | None, problem | None)`` never raises:

    - a frame: ``(bgr, None)``, and the failure count starts again;
    - up to ``max_failures`` consecutive failed reads: ``(None, "camera N
      delivered no frame")`` each (cameras drop a frame now and then, and
      deliver nothing for their first few reads);
    - after that the camera is lost: its capture is released and reopened at
      most once every ``reopen_s``; a call between attempts waits up to
      ``poll_s`` (returning at once when closed) and returns ``(None, problem)``,
      or, when the next attempt falls within that wait, makes it.

    Real-time trade-off: one call blocks for at most one ``capture.read()``
    (the driver's own read timeout), or one ``poll_s`` wait followed by one
    reopen attempt (an open and a read); so a lost camera produces about
    ``1 / poll_s`` empty frames a second (a consumer stays responsive and is
    told why), and a device that comes back is noticed within ``reopen_s``.
    ``close()`` from another thread ends a wait at once and otherwise waits
    for the read in progress.
    """

    def __init__(self, index: int, capture_factory: Callable[[int], Capture], *,
                 max_failures: int = CAMERA_MAX_FAILURES, reopen_s: float = REOPEN_S, poll_s: float = POLL_S,
                 clock: Callable[[], float] = time.monotonic, wait: Callable[[float], Any] | None = None):
        if max_failures < 1 or reopen_s < 0 or poll_s < 0:
            raise ValueError("CameraReader needs max_failures >= 1, reopen_s >= 0 and poll_s >= 0")
        self.index, self.name = index, f"camera {index}"
        self.max_failures, self.reopen_s, self.poll_s = max_failures, reopen_s, poll_s
        self.clock = clock
        self._factory = capture_factory
        self._closing = threading.Event()
        self._wait = wait or self._closing.wait
        self._lock = threading.Lock()
        self.failures = 0                       #: consecutive failed reads
        self.reopens = 0                        #: reopen attempts so far
        self._next_attempt = -math.inf
        self.capture, why = self._open()
        if self.capture is None:
            raise TrackingInputError(f"{self.name} cannot be opened ({why})")

    def _open(self) -> tuple[Capture | None, str]:
        try:
            capture = self._factory(self.index)
            if capture.isOpened():
                return capture, ""
            capture.release()
            return None, "no such device, or it is busy"
        except Exception as exc:                # a driver's error is a failed open, not a crashed stream
            return None, f"{type(exc).__name__}: {exc}"

    def _grab(self) -> np.ndarray | None:
        try:
            ok, image = self.capture.read()
        except Exception:                       # cv2.error from a driver: a failed read like any other
            return None
        return image if ok and image is not None else None

    def _drop(self) -> None:
        if self.capture is not None:
            try:
                self.capture.release()
            except Exception:                   # releasing a dead device may fail; it is gone either way
                pass
            self.capture = None

    def read(self) -> tuple[np.ndarray | None, str | None]:
        """One frame now, or None and why (see the class docstring)."""
        with self._lock:
            if self._closing.is_set():
                return None, f"{self.name} is closed"
            if self.failures < self.max_failures:
                image = self._grab()
                if image is not None:
                    self.failures = 0
                    return image, None
                self.failures += 1
                if self.failures == self.max_failures:
                    self._drop()
                return None, f"{self.name} delivered no frame"
            remaining = self._next_attempt - self.clock()
            if remaining > self.poll_s:
                self._wait(self.poll_s)
                return None, (f"{self.name} lost after {self.max_failures} failed reads; "
                              f"reopening it every {self.reopen_s:g} s")
            if remaining > 0:                   # the attempt is due within this wait: make it now
                self._wait(remaining)
                if self._closing.is_set():
                    return None, f"{self.name} is closed"
            self._next_attempt = self.clock() + self.reopen_s
            self.reopens += 1
            self.capture, why = self._open()
            if self.capture is None:
                return None, f"{self.name} could not be reopened ({why})"
            image = self._grab()
            if image is None:
                self._drop()
                return None, f"{self.name} reopened but delivered no frame"
            self.failures = 0
            return image, None

    def get(self, prop: int) -> float:
        """``capture.get(prop)``, 0 while the camera is lost."""
        with self._lock:
            try:
                return float(self.capture.get(prop)) if self.capture is not None else 0.0
            except Exception:
                return 0.0

    def close(self) -> None:
        """Release the device (waiting for a read in progress)."""
        self._closing.set()
        with self._lock:
            self._drop()


class Camera(FrameSource):
    """A camera as a stream that never ends by itself; ``t`` is seconds since the first read.

    ``capture_factory`` is ``cv2.VideoCapture`` for a real device; the other
    keywords go to ``CameraReader``. ``size`` resizes in software (the device
    keeps its own mode).
    """

    kind = "camera"

    def __init__(self, index: int, size=None, *, capture_factory: Callable[[int], Capture] = cv2.VideoCapture,
                 black_below: float = BLACK_MEAN, **reader_options):
        super().__init__(f"camera {index}", size, black_below)
        self.index = index
        self.reader = CameraReader(index, capture_factory, **reader_options)
        fps = self.reader.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and fps > 0 else None
        w, h = (int(self.reader.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
        self._native = (w, h) if w > 0 and h > 0 else None
        self._t0: float | None = None

    def read(self) -> Frame:
        """The next Frame (blocks as ``CameraReader.read`` says)."""
        image, problem = self.reader.read()
        now = self.reader.clock()
        if self._t0 is None:
            self._t0 = now
        return self._deliver(now - self._t0, image, problem)

    def _read(self) -> Iterator[Frame]:
        while not self.closed:
            yield self.read()

    def _where(self) -> dict:
        return {"index": self.index, "reopens": self.reader.reopens}

    def _release(self) -> None:
        self.reader.close()


def open_frames(spec: int | str | os.PathLike, size: tuple[int, int] | None = None, fps: float = DEFAULT_FPS,
                *, black_below: float = BLACK_MEAN) -> FrameSource:
    """``camera:N`` or an int N -> ``Camera``; a folder -> ``ImageFolder`` (played at ``fps``);
    a file -> ``VideoFile``. ``size=(W, H)`` resizes every image. Raises ``TrackingInputError``
    naming what cannot be opened."""
    if isinstance(spec, bool):
        raise TrackingInputError(f"{spec!r}: not a camera, video or folder")
    if isinstance(spec, (int, np.integer)) or (isinstance(spec, str) and spec.startswith("camera:")):
        index = spec if not isinstance(spec, str) else spec.split(":", 1)[1]
        try:
            index = int(index)
        except ValueError:
            raise TrackingInputError(f"{spec!r}: a camera is camera:N with N a device number") from None
        if index < 0:
            raise TrackingInputError(f"camera {index}: a device number is 0 or more")
        return Camera(index, size, black_below=black_below)
    path = Path(spec)
    if path.is_dir():
        return ImageFolder(path, size, fps, black_below)
    if not path.exists():
        hint = f" (a camera is camera:{spec})" if str(spec).isdigit() else ""
        raise TrackingInputError(f"{path}: no such video file or folder of images{hint}")
    return VideoFile(path, size, black_below)
