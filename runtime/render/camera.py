"""Cameras: orbit, fit-to-bounds, named views; perspective or scaled orthographic.

A camera looks at ``target`` from ``distance`` metres, turned by ``yaw``
about the world's +y axis and ``pitch`` toward +y (degrees). ``yaw = 0`` is
the front view: the camera sits on +z and looks down -z at the face. View
space is OpenGL's: +x right, +y up, the camera looking down -z.

Projections:
    perspective   ``fov_y`` degrees, the usual pinhole.
    orthographic  scaled orthographic (weak perspective), the tracker's
                  projection model: a point ``X`` lands at pixel
                  ``s * (R X)_xy + t`` with ``s = height / (2 * half_height)``
                  pixels per metre and ``t`` the image centre (y flipped for
                  image rows); ``half_height`` is the half height in metres
                  of what the image shows.

All matrices are float64 ``[4, 4]`` for column vectors (``M @ p``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

#: named views: (yaw, pitch) in degrees
VIEWS: dict[str, tuple[float, float]] = {
    "front": (0.0, 0.0),
    "three_quarter": (35.0, 8.0),
    "profile": (90.0, 0.0),
}
PROJECTIONS = ("perspective", "orthographic")
#: pitch is kept inside +-this (degrees) so the view never flips over the pole
PITCH_LIMIT = 89.0
#: near/far planes sit this many scene radii in front of / behind the target
CLIP_RADII = 3.0
#: the near plane never comes closer than this (metres)
MIN_NEAR = 1e-3


@dataclass(frozen=True)
class Camera:
    """Where the camera is and how it projects (metres, degrees)."""

    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    distance: float = 0.6
    yaw: float = 0.0
    pitch: float = 0.0
    fov_y: float = 20.0
    projection: str = "perspective"
    half_height: float = 0.1        #: orthographic only: half the visible height (m)
    radius: float = 0.15            #: scene radius (m), for the near and far planes

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise ValueError(f"unknown projection {self.projection!r}; use one of {', '.join(PROJECTIONS)}")
        if not (self.distance > 0 and self.half_height > 0 and 0 < self.fov_y < 180):
            raise ValueError(f"camera needs distance > 0, half_height > 0 and 0 < fov_y < 180, got {self}")

    # ---------------------------------------------------------------- placing
    @staticmethod
    def named(view: str, **kwargs) -> "Camera":
        """A camera at one of the named ``VIEWS``."""
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; use one of {', '.join(VIEWS)}")
        yaw, pitch = VIEWS[view]
        return Camera(yaw=yaw, pitch=pitch, **kwargs)

    def fit(self, points: np.ndarray, aspect: float = 1.0, margin: float = 1.1) -> "Camera":
        """The same view direction, aimed at the centre of ``points [..., 3]``'s
        bounding box and moved so all of them fill the image (width/height
        ``aspect``) with ``margin`` to spare."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        r = self.rotation()
        local = p @ r.T                                                   # view-space axes
        lo, hi = local.min(axis=0), local.max(axis=0)
        centre = 0.5 * (lo + hi) @ r                                      # back to world
        half = 0.5 * (hi - lo)
        half_y = max(half[1], half[0] / aspect) * margin
        radius = float(np.linalg.norm(half))
        distance = half_y / math.tan(math.radians(self.fov_y) / 2) + half[2]
        return replace(self, target=tuple(float(c) for c in centre), distance=float(distance),
                       half_height=float(half_y), radius=max(radius, 1e-3))

    def orbit(self, d_yaw: float, d_pitch: float) -> "Camera":
        """Turned about the target by ``d_yaw`` and ``d_pitch`` degrees."""
        pitch = float(np.clip(self.pitch + d_pitch, -PITCH_LIMIT, PITCH_LIMIT))
        return replace(self, yaw=(self.yaw + d_yaw) % 360.0, pitch=pitch)

    def zoom(self, factor: float) -> "Camera":
        """Closer (``factor < 1``) or farther; orthographic shows ``factor`` times the height."""
        return replace(self, distance=self.distance * factor, half_height=self.half_height * factor)

    def pan(self, dx: float, dy: float) -> "Camera":
        """Target moved by ``(dx, dy)`` metres along the image's right and up."""
        r = self.rotation()
        return replace(self, target=tuple(float(c) for c in np.asarray(self.target) + dx * r[0] + dy * r[1]))

    def with_projection(self, projection: str) -> "Camera":
        """The same framing with the other projection: the orthographic height
        matches what the perspective camera shows at the target."""
        half = self.distance * math.tan(math.radians(self.fov_y) / 2)
        return replace(self, projection=projection, half_height=half)

    # --------------------------------------------------------------- matrices
    def rotation(self) -> np.ndarray:
        """``[3, 3]`` world -> view rotation (rows: the camera's right, up, back)."""
        yaw, pitch = math.radians(self.yaw), math.radians(self.pitch)
        back = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
        right = np.cross([0.0, 1.0, 0.0], back)
        right /= np.linalg.norm(right)
        up = np.cross(back, right)
        return np.stack([right, up, back])

    @property
    def eye(self) -> np.ndarray:
        """Camera position in world coordinates."""
        return np.asarray(self.target, dtype=np.float64) + self.distance * self.rotation()[2]

    def view_matrix(self) -> np.ndarray:
        """World -> view ``[4, 4]``."""
        r = self.rotation()
        m = np.eye(4)
        m[:3, :3] = r
        m[:3, 3] = -r @ self.eye
        return m

    def clip_planes(self) -> tuple[float, float]:
        """``(near, far)`` distances along the view axis."""
        near = max(self.distance - CLIP_RADII * self.radius, MIN_NEAR)
        return near, self.distance + CLIP_RADII * self.radius

    def projection_matrix(self, aspect: float) -> np.ndarray:
        """View -> clip ``[4, 4]`` for an image of width/height ``aspect``."""
        near, far = self.clip_planes()
        m = np.zeros((4, 4))
        if self.projection == "perspective":
            f = 1.0 / math.tan(math.radians(self.fov_y) / 2)
            m[0, 0], m[1, 1] = f / aspect, f
            m[2, 2] = (far + near) / (near - far)
            m[2, 3] = 2 * far * near / (near - far)
            m[3, 2] = -1.0
        else:
            m[0, 0], m[1, 1] = 1.0 / (self.half_height * aspect), 1.0 / self.half_height
            m[2, 2] = -2.0 / (far - near)
            m[2, 3] = -(far + near) / (far - near)
            m[3, 3] = 1.0
        return m

    # ------------------------------------------------------------- projecting
    def project(self, points: np.ndarray, size: tuple[int, int], model: np.ndarray | None = None) -> np.ndarray:
        """Pixel coordinates ``[..., 2]`` (x right, y down, pixel centres at
        ``+0.5``) of world points ``[..., 3]`` in an image of ``size = (width, height)``."""
        w, h = size
        p = np.asarray(points, dtype=np.float64)
        hom = np.concatenate([p, np.ones(p.shape[:-1] + (1,))], axis=-1)
        m = self.projection_matrix(w / h) @ self.view_matrix() @ (np.eye(4) if model is None else model)
        clip = hom @ m.T
        ndc = clip[..., :2] / clip[..., 3:4]
        return np.stack([(ndc[..., 0] + 1) * 0.5 * w, (1 - ndc[..., 1]) * 0.5 * h], axis=-1)

    def view_depth(self, points: np.ndarray) -> np.ndarray:
        """Distance in metres of world points ``[..., 3]`` in front of the camera
        (along the view axis), as ``Renderer.read_depth`` reports it."""
        p = np.asarray(points, dtype=np.float64)
        return -((p - self.eye) @ self.rotation()[2])

    def pixels_per_metre(self, height: int) -> float:
        """Orthographic scale ``s`` of the weak-perspective model for an image ``height`` pixels tall."""
        if self.projection != "orthographic":
            raise ValueError("pixels_per_metre is the scale of the orthographic projection")
        return height / (2.0 * self.half_height)
