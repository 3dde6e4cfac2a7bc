"""Draw a ``Frame``: the face, its display accessories, landmarks, a heat map.

``FaceView`` keeps one ``GpuMesh`` per topology (uploaded on first sight,
then only updated) plus the accessory meshes, and draws a frame with a
``Style``: skin or a per-vertex scalar through a colormap (with a colour
bar), an optional wireframe, the 68 landmarks as points, and for a face
mask (SynthFace) two eyeballs and a mouth cavity behind its slits
(``models.face.accessories``), so pictures read as a face.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from models.face import SYNTHFACE
from models.face.accessories import place_accessories, unit_sphere
from runtime.frames import Frame
from runtime.render.camera import Camera
from runtime.render.lighting import EYE, HEATMAP, MOUTH, SKIN, Material
from runtime.render.mesh import GpuMesh
from runtime.render.overlay import colorbar_image
from runtime.render.renderer import Heatmap, Renderer

#: the background of pictures (sRGB + alpha)
BACKGROUND = (0.93, 0.93, 0.94, 1.0)
#: landmark dots, and their size in pixels per 512 pixels of image height
LANDMARK_COLOR = (0.15, 0.85, 0.35, 1.0)
LANDMARK_SIZE = 7.0
#: landmarks win the depth test against a surface up to this far (m) in front of them
LANDMARK_DEPTH_BIAS = 0.004
#: iris colour (sRGB) of the eyeballs
IRIS = (0.36, 0.24, 0.13)
#: the eyeball texture: iris and pupil radii as angles from the gaze axis (radians)
IRIS_ANGLE = 0.50
PUPIL_ANGLE = 0.17
LIMBUS_WIDTH = 0.06


@dataclass(frozen=True)
class Style:
    """How a frame is drawn."""

    landmarks: bool = True
    wireframe: bool = False
    heatmap: bool = False                   #: colour by the frame's scalar
    accessories: bool | None = None         #: eyes and mouth; None: on for SynthFace topologies
    scalar_range: tuple[float, float] | None = None   #: None: 0 .. the frame's maximum
    colormap: str = "viridis"
    colorbar: bool = True
    background: tuple[float, ...] = BACKGROUND
    material: Material = SKIN
    albedo: tuple[float, float, float] | None = None  #: a skin tone (sRGB) replacing the material's
    landmark_color: tuple[float, float, float, float] = LANDMARK_COLOR
    landmark_size: float = LANDMARK_SIZE


class FaceView:
    """Draws frames with one ``Renderer``; meshes are uploaded once per topology."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._meshes: dict[str, GpuMesh] = {}
        self.frame: Frame | None = None
        self._eye: GpuMesh | None = None
        self._mouth: GpuMesh | None = None
        self._eye_texture = None
        self._placement = None

    # ------------------------------------------------------------------ data
    def mesh_for(self, frame: Frame) -> GpuMesh:
        """The GPU mesh of the frame's topology (uploaded the first time)."""
        key = frame.topology.key
        if key not in self._meshes:
            self._meshes[key] = self.renderer.mesh(frame.topology.faces, frame.topology.n_vertices)
        return self._meshes[key]

    def set_frame(self, frame: Frame) -> None:
        """Upload a frame's vertices (and scalar); normals are recomputed."""
        self.mesh_for(frame).update(frame.vertices, scalar=frame.scalar)
        self.frame = frame
        lm = frame.landmark_points()
        self._placement = place_accessories(lm) if lm is not None else None

    def accessories_on(self, style: Style) -> bool:
        if self.frame is None or self._placement is None:
            return False
        if style.accessories is None:
            return self.frame.topology.name == SYNTHFACE
        return style.accessories

    # --------------------------------------------------------------- drawing
    def draw(self, camera: Camera, style: Style = Style(), overlays: tuple = ()) -> None:
        """Draw the current frame (``set_frame`` first) seen by ``camera``.
        ``overlays``: ``(image [h, w, 4], x, y, key)`` drawn on top."""
        if self.frame is None:
            raise RuntimeError("FaceView.draw before set_frame")
        r = self.renderer
        frame = self.frame
        r.begin(camera, style.background)
        material = style.material if style.albedo is None else replace(style.material, albedo=style.albedo)
        heat = None
        if style.heatmap and frame.scalar is not None:
            heat = Heatmap(self.scalar_range(style), style.colormap)
            material = HEATMAP
        r.draw_mesh(self.mesh_for(frame), material=material, heatmap=heat, wireframe=style.wireframe)
        if self.accessories_on(style):
            self._draw_accessories()
        lm = frame.landmark_points()
        if style.landmarks and lm is not None:
            r.draw_points(lm, color=style.landmark_color, size=style.landmark_size * r.size[1] / 512,
                          depth_bias=LANDMARK_DEPTH_BIAS, key="landmarks")
        if heat is not None and style.colorbar:
            h = int(r.size[1] * 0.6)
            bar = colorbar_image(style.colormap, float(heat.range[0]), float(heat.range[1]),
                                 frame.scalar_name or "scalar", h)
            r.draw_image(bar, r.size[0] - bar.shape[1] - int(0.02 * r.size[0]), (r.size[1] - h) // 2, key="colorbar")
        for image, x, y, key in overlays:
            r.draw_image(image, x, y, key=key)
        r.end()

    def render(self, frame: Frame, camera: Camera, style: Style = Style()) -> np.ndarray:
        """``set_frame`` + ``draw`` + read back: ``uint8 [H, W, 4]``."""
        self.set_frame(frame)
        self.draw(camera, style)
        return self.renderer.read_rgba()

    def scalar_range(self, style: Style) -> tuple[float, float]:
        if style.scalar_range is not None:
            return style.scalar_range
        hi = float(np.max(self.frame.scalar)) if self.frame is not None and self.frame.scalar is not None else 1.0
        return (0.0, hi if hi > 0 else 1.0)

    def fit(self, camera: Camera, frame: Frame | None = None, margin: float = 1.1) -> Camera:
        """``camera`` aimed at and framing ``frame`` (default: the current one)."""
        frame = frame or self.frame
        if frame is None:
            raise RuntimeError("FaceView.fit needs a frame")
        w, h = self.renderer.size
        return camera.fit(frame.vertices, aspect=w / h, margin=margin)

    def _draw_accessories(self) -> None:
        r = self.renderer
        if self._eye is None:
            v, f, uv = unit_sphere(rings=48, segments=64)
            self._eye = r.mesh(f, len(v), uv=eye_uv(uv))
            self._eye.update(v)
            self._eye_texture = r.texture(eye_texture())
            self._mouth = r.mesh(f, len(v), albedo=mouth_albedo(v))
            self._mouth.update(v)
        place = self._placement
        for m in place.eye_matrices():
            r.draw_mesh(self._eye, material=EYE, model=m, texture=self._eye_texture)
        r.draw_mesh(self._mouth, material=MOUTH, model=place.mouth_matrix())


def eye_uv(sphere_uv: np.ndarray) -> np.ndarray:
    """Azimuthal texture coordinates ``[V, 2]`` for an eyeball from ``unit_sphere``'s
    ``(longitude / 2 pi, polar angle / pi)``: the gaze pole at the texture's
    centre, the polar angle growing with the distance from it (the back pole
    on the circle of radius 0.5). Unlike the sphere's own uv there is no
    pole or seam where the iris is, so mipmaps filter it cleanly."""
    lon, polar = 2 * np.pi * sphere_uv[:, 0], sphere_uv[:, 1]
    return (0.5 + 0.5 * polar[:, None] * np.stack([np.cos(lon), np.sin(lon)], axis=1)).astype(np.float32)


def eye_texture(size: int = 512, iris: tuple[float, float, float] = IRIS, seed: int = 3) -> np.ndarray:
    """The eyeball's albedo, procedural, over ``eye_uv``: ``uint8 [size, size, 3]``
    with a pupil at the centre, an iris with radial fibres and a dark limbal
    ring, and a white sclera that greys toward the back."""
    rng = np.random.default_rng(seed)
    c = (np.arange(size) + 0.5) / size - 0.5
    x, y = np.meshgrid(c, c)
    a = np.minimum(np.hypot(x, y) / 0.5, 1.0) * np.pi                  # angle from the gaze axis
    lon = np.arctan2(y, x)
    fibres = np.zeros_like(lon)
    for k in rng.integers(10, 40, size=8):
        fibres += np.sin(k * lon + rng.uniform(0, 2 * np.pi)) / 8
    sclera = np.array([0.95, 0.93, 0.90]) - 0.10 * np.clip((a - 1.2) / 1.5, 0, 1)[..., None] * np.array([0.0, 0.5, 0.6])
    t = np.clip((a - PUPIL_ANGLE) / (IRIS_ANGLE - PUPIL_ANGLE), 0, 1)[..., None]
    iris_rgb = np.asarray(iris) * (0.75 + 0.35 * t) * (1.0 + 0.2 * fibres[..., None])
    limbus = np.clip((a - (IRIS_ANGLE - LIMBUS_WIDTH)) / LIMBUS_WIDTH, 0, 1)[..., None]
    iris_rgb = iris_rgb * (1.0 - 0.6 * limbus)
    img = np.where((a < IRIS_ANGLE)[..., None], iris_rgb, sclera)
    img = np.where((a < PUPIL_ANGLE)[..., None], np.array([0.03, 0.03, 0.035]), img)
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def mouth_albedo(unit_vertices: np.ndarray) -> np.ndarray:
    """sRGB albedo ``[V, 3]`` of the mouth cavity over a unit sphere: a dark
    red wall that fades to black toward the back."""
    depth = np.clip((1.0 - unit_vertices[:, 2]) / 2.0, 0.0, 1.0)[:, None]      # 0 front, 1 back
    front, back = np.array([0.32, 0.09, 0.09]), np.array([0.03, 0.01, 0.01])
    return (front + (back - front) * depth ** 0.6).astype(np.float32)
