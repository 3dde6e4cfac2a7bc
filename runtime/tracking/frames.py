"""Frame sources for the tracker: a camera, a video file, or a folder of images.

``open_frames(spec)`` takes ``camera:N`` (or an int), a video path or a
folder and returns a ``FrameSource``: an iterator of ``Frame`` (uint8 RGB
images, or None with the reason in ``problem``). Opening names the thing
that is wrong (``TrackingInputError``); reading never raises:

- a folder's unreadable image is one Frame with ``image=None`` and a problem
  naming the file, and the next image follows;
- a video that breaks off (truncated, corrupt) ends there, and
  ``describe()`` says it ended early (against the container's frame count);
- a camera that stops delivering gives Frames with ``image=None`` and a
  problem, and is reopened at most once per ``REOPEN_S``; it never ends by
  itself.

Images are resized to ``size`` when one is given. OpenCV reads cameras and
videos (``cv2.VideoCapture``) and images (``cv2.imread``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: seconds between attempts to reopen a camera that stopped delivering
REOPEN_S = 1.0
#: frames per second assumed for image folders (and videos that do not say)
DEFAULT_FPS = 30.0


class TrackingInputError(ValueError):
    """A camera, video or folder that cannot be read at all (the message names it)."""


@dataclass(frozen=True)
class Frame:
    index: int
    t: float
    image: np.ndarray | None
    problem: str | None = None
    source: str = ""


class FrameSource:
    """Iterable of ``Frame``; ``close()``; a context manager; ``describe()``."""

    kind = ""

    def __init__(self, name: str, size: tuple[int, int] | None):
        self.name, self.size = name, size
        self.frames = 0
        self.problems = 0
        self.ended_early: str | None = None

    def _image(self, bgr: np.ndarray) -> np.ndarray:
        import cv2

        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        if self.size is not None and (rgb.shape[1], rgb.shape[0]) != tuple(self.size):
            rgb = cv2.resize(rgb, tuple(self.size), interpolation=cv2.INTER_AREA)
        return rgb

    def _frame(self, t: float, image: np.ndarray | None, problem: str | None) -> Frame:
        f = Frame(self.frames, t, image, problem, self.name)
        self.frames += 1
        self.problems += problem is not None
        return f

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "frames": self.frames, "problems": self.problems,
                "ended_early": self.ended_early}


class ImageFolder(FrameSource):
    kind = "images"

    def __init__(self, folder: Path, size=None, fps: float = DEFAULT_FPS):
        super().__init__(str(folder), size)
        if not folder.is_dir():
            raise TrackingInputError(f"{folder}: no such folder of images")
        self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise TrackingInputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        self.fps = fps

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        for path in self.paths:
            t = self.frames / self.fps
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                yield self._frame(t, None, f"{path}: not a readable image")
            else:
                yield self._frame(t, self._image(bgr), None)


class VideoFile(FrameSource):
    kind = "video"

    def __init__(self, path: Path, size=None):
        import cv2

        super().__init__(str(path), size)
        if not path.is_file():
            raise TrackingInputError(f"{path}: no such video file")
        self.capture = cv2.VideoCapture(str(path))
        ok, first = self.capture.read() if self.capture.isOpened() else (False, None)
        if not ok:
            self.capture.release()
            raise TrackingInputError(f"{path}: not a video OpenCV can read")
        self._first = first
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        self.expected = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def __iter__(self) -> Iterator[Frame]:
        bgr = self._first
        while bgr is not None:
            yield self._frame(self.frames / self.fps, self._image(bgr), None)
            ok, bgr = self.capture.read()
            if not ok:
                bgr = None
        if self.expected and self.frames < self.expected:
            self.ended_early = (f"{self.name}: ended after {self.frames} of its {self.expected} frames "
                                f"(truncated or corrupt)")

    def close(self) -> None:
        self.capture.release()


class Camera(FrameSource):
    """A camera through ``capture_factory(index)`` (``cv2.VideoCapture`` by default)."""

    kind = "camera"

    def __init__(self, index: int, size=None, capture_factory: Callable | None = None, clock=time.monotonic):
        super().__init__(f"camera {index}", size)
        import cv2

        self.index = index
        self.factory = capture_factory or cv2.VideoCapture
        self.clock = clock
        self.capture = self.factory(index)
        if not self.capture.isOpened():
            raise TrackingInputError(f"camera {index}: cannot be opened (no such device, or it is busy)")
        self._t0: float | None = None
        self._last_reopen = -np.inf
        self.closed = False

    def read(self) -> Frame:
        """One frame now (None image with a problem while the camera delivers nothing)."""
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        ok, bgr = self.capture.read() if self.capture is not None else (False, None)
        if ok and bgr is not None:
            return self._frame(now - self._t0, self._image(bgr), None)
        if now - self._last_reopen >= REOPEN_S:                   # try the device again, at most once a second
            self._last_reopen = now
            if self.capture is not None:
                self.capture.release()
            self.capture = self.factory(self.index)
        return self._frame(now - self._t0, None, f"{self.name} delivered no frame")

    def __iter__(self) -> Iterator[Frame]:
        while not self.closed:
            yield self.read()

    def close(self) -> None:
        self.closed = True
        if self.capture is not None:
            self.capture.release()


def open_frames(spec, size: tuple[int, int] | None = None, fps: float = DEFAULT_FPS) -> FrameSource:
    """``camera:N`` or an int -> ``Camera``; a folder -> ``ImageFolder``; a file -> ``VideoFile``."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.startswith("camera:")):
        index = spec if isinstance(spec, int) else spec.split(":", 1)[1]
        try:
            index = int(index)
        except ValueError:
            raise TrackingInputError(f"{spec!r}: a camera is camera:N with N a device number") from None
        return Camera(index, size)
    path = Path(spec)
    if path.is_dir():
        return ImageFolder(path, size, fps)
    if not path.exists():
        raise TrackingInputError(f"{path}: no such video file or folder of images")
    return VideoFile(path, size)
