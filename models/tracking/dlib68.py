"""dlib's face detector and 68-point landmark predictor (the ``track`` extra).

The 68-point model ships in the ``face-recognition-models`` package
(``shape_predictor_68_face_landmarks.dat``, trained by Davis King on the
iBUG 300-W data set, which is licensed for research use). Its package
``__init__`` imports ``pkg_resources``, so the file is located through the
import system without importing it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_PACKAGE = "face_recognition_models"
MODEL_FILE = "shape_predictor_68_face_landmarks.dat"
INSTALL_HINT = "pip install -e '.[track]' (dlib-bin and face-recognition-models)"


class TrackerUnavailable(RuntimeError):
    """dlib or its 68-point model is not installed."""


def shape_predictor_path() -> Path:
    """Path of the 68-point model file; ``TrackerUnavailable`` with the fix if absent."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TrackerUnavailable(f"{MODEL_PACKAGE} is not installed: {INSTALL_HINT}")
    for root in spec.submodule_search_locations:
        path = Path(root) / "models" / MODEL_FILE
        if path.is_file():
            return path
    raise TrackerUnavailable(f"{MODEL_FILE} not found in {MODEL_PACKAGE}: {INSTALL_HINT}")


@dataclass(frozen=True)
class Detection:
    """A face: its box ``(left, top, right, bottom)`` in pixels and detector score."""

    box: tuple[int, int, int, int]
    score: float


class Dlib68:
    """Detector + predictor, loaded once. Images are ``uint8 [H, W, 3]`` RGB or ``[H, W]``."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise TrackerUnavailable(f"dlib is not installed: {INSTALL_HINT}") from exc
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(shape_predictor_path()))

    def detect(self, image: np.ndarray, upsample: int = 1) -> list[Detection]:
        """Faces, best score first."""
        rects, scores, _ = self.detector.run(np.ascontiguousarray(image), upsample, 0.0)
        found = [Detection((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]
        return sorted(found, key=lambda d: -d.score)

    def landmarks(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """68 landmarks ``float64 [68, 2]`` (x right, y down, pixels) inside ``box``."""
        rect = self._dlib.rectangle(*box)
        shape = self.predictor(np.ascontiguousarray(image), rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
