"""The renderer: one moderngl code path for a window and for offscreen images.

A ``Renderer`` draws into its own multisampled framebuffer of ``size``
pixels, resolves it into a single-sample colour + depth target, and from
there either reads pixels back (``read_rgba``, ``read_depth``) or copies
them into a window's framebuffer (``present``). The context is whatever
the caller has: ``Renderer.headless()`` makes a standalone EGL context; a
window (``clients/viewer.py``) passes the context of its glfw window.

A frame is ``begin(camera)``, any number of ``draw_mesh`` / ``draw_points``
/ ``draw_image`` calls, then ``end()``.

The colour target is RGBA8 with a transparent background (alpha 0 where
nothing was drawn), so read-backs carry a coverage mask in alpha.
"""

from __future__ import annotations

from dataclasses import dataclass

import moderngl
import numpy as np

from runtime.render.camera import Camera
from runtime.render.context import COMPUTE_GL_VERSION, MIN_GL_VERSION, gl_info, headless_context
from runtime.render.lighting import SKIN, LightRig, Material, apply, set_uniform
from runtime.render.mesh import GpuMesh
from runtime.render.shaders import load_program

NORMALS_MODES = ("auto", "compute", "numpy")
#: entries of a colormap lookup texture
COLORMAP_SIZE = 256


@dataclass(frozen=True)
class Heatmap:
    """A per-vertex scalar drawn through a colormap: ``range`` maps to its ends."""

    range: tuple[float, float]
    colormap: str = "viridis"


class Renderer:
    """Draws meshes, points and images with moderngl into an offscreen target.

    Args:
        ctx: a moderngl context (OpenGL >= 3.3 core).
        size: ``(width, height)`` in pixels.
        samples: MSAA samples (capped at what the context offers; 0 or 1: none).
        normals: ``"compute"`` (needs OpenGL 4.3), ``"numpy"``, or ``"auto"``.
        rig: the light rig (default ``LightRig()``).
    """

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int] = (512, 512), samples: int = 4,
                 normals: str = "auto", rig: LightRig | None = None) -> None:
        if normals not in NORMALS_MODES:
            raise ValueError(f"normals must be one of {', '.join(NORMALS_MODES)}, got {normals!r}")
        if ctx.version_code < MIN_GL_VERSION:
            raise RuntimeError(f"the renderer needs OpenGL 3.3 core, this context has {ctx.version_code}")
        has_compute = ctx.version_code >= COMPUTE_GL_VERSION
        if normals == "compute" and not has_compute:
            raise RuntimeError(f"compute-shader normals need OpenGL 4.3; this context has "
                               f"{ctx.version_code // 100}.{ctx.version_code % 100 // 10} (use normals='numpy')")
        self.ctx = ctx
        if normals == "auto":
            normals = "compute" if has_compute else "numpy"
        self.normals_mode = normals
        self.rig = rig or LightRig()
        self.programs: dict = {name: load_program(ctx, name) for name in ("mesh", "points", "overlay")}
        if self.normals_mode == "compute":
            self.programs["normals"] = load_program(ctx, "normals")
        self.samples = 0 if samples <= 1 else min(int(samples), ctx.max_samples)
        self._owns_context = False
        self._colormaps: dict[str, moderngl.Texture] = {}
        self._images: dict[str, moderngl.Texture] = {}
        self._points: dict[str, tuple[moderngl.Buffer, moderngl.VertexArray]] = {}
        self._white = ctx.texture((1, 1), 3, bytes([255, 255, 255]))
        quad = np.array([0, 0, 1, 0, 0, 1, 1, 1], dtype=np.float32)
        self._quad = ctx.buffer(quad.tobytes())
        self._quad_vao = ctx.vertex_array(self.programs["overlay"], [(self._quad, "2f", "in_position")])
        self._camera: Camera | None = None
        self._targets = None
        self.resize(size)

    @classmethod
    def headless(cls, size: tuple[int, int] = (512, 512), samples: int = 4, normals: str = "auto",
                 rig: LightRig | None = None) -> "Renderer":
        """A renderer on its own standalone EGL context (released by ``close``)."""
        renderer = cls(headless_context(), size=size, samples=samples, normals=normals, rig=rig)
        renderer._owns_context = True
        return renderer

    @property
    def info(self) -> dict:
        return {**gl_info(self.ctx), "normals": self.normals_mode, "samples": self.samples}

    # ----------------------------------------------------------------- targets
    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def resize(self, size: tuple[int, int]) -> None:
        """Re-create the render targets for ``(width, height)`` (only when it changes)."""
        size = (int(size[0]), int(size[1]))
        if size[0] < 1 or size[1] < 1:
            raise ValueError(f"render size must be positive, got {size}")
        if self._targets is not None and size == self._size:
            return
        if self._targets is not None:
            for obj in self._targets:
                obj.release()
        ctx = self.ctx
        color, depth = ctx.texture(size, 4), ctx.depth_texture(size)
        self.resolved = ctx.framebuffer(color, depth)
        if self.samples:
            ms_color = ctx.renderbuffer(size, 4, samples=self.samples)
            ms_depth = ctx.depth_renderbuffer(size, samples=self.samples)
            self.target = ctx.framebuffer(ms_color, ms_depth)
            self._targets = (self.target, ms_color, ms_depth, self.resolved, color, depth)
        else:
            self.target = self.resolved
            self._targets = (self.resolved, color, depth)
        self._size = size

    # ------------------------------------------------------------------ meshes
    def mesh(self, faces: np.ndarray, n_vertices: int, uv: np.ndarray | None = None,
             albedo: np.ndarray | None = None) -> GpuMesh:
        """Upload a topology; update its positions every frame with ``GpuMesh.update``."""
        return GpuMesh(self, faces, n_vertices, uv=uv, albedo=albedo)

    def texture(self, image: np.ndarray, mipmaps: bool = True) -> moderngl.Texture:
        """An sRGB albedo texture from ``uint8 [H, W, 3 or 4]`` (top row first).

        ``mipmaps=False``: sample the full-size image only (bilinear), for
        textures whose coordinates jump within a pixel (a UV sphere's pole),
        where the mip level would jump to the coarsest and wash them out."""
        img = np.ascontiguousarray(image, dtype=np.uint8)
        if img.ndim != 3 or img.shape[2] not in (3, 4):
            raise ValueError(f"a texture image must be uint8 [H, W, 3|4], got {img.shape}")
        tex = self.ctx.texture((img.shape[1], img.shape[0]), img.shape[2], img.tobytes())
        if mipmaps:
            tex.build_mipmaps()
            tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        else:
            tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        return tex

    def colormap(self, name: str) -> moderngl.Texture:
        """A matplotlib colormap as a ``COLORMAP_SIZE x 1`` lookup texture (cached)."""
        if name not in self._colormaps:
            table = colormap_table(name)
            tex = self.ctx.texture((COLORMAP_SIZE, 1), 3, table.tobytes())
            tex.repeat_x = tex.repeat_y = False
            self._colormaps[name] = tex
        return self._colormaps[name]

    # ------------------------------------------------------------------ frames
    def begin(self, camera: Camera, background: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)) -> None:
        """Start a frame seen by ``camera``: clear to ``background`` (RGB or RGBA, sRGB)."""
        ctx = self.ctx
        self._camera = camera
        self._view = camera.view_matrix()
        self._proj = camera.projection_matrix(self._size[0] / self._size[1])
        self.target.use()
        ctx.viewport = (0, 0, *self._size)
        rgba = tuple(background) + (1.0,) * (4 - len(background))
        self.target.clear(*rgba, depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.depth_func = "<"

    def draw_mesh(self, mesh: GpuMesh, material: Material = SKIN, model: np.ndarray | None = None,
                  heatmap: Heatmap | None = None, texture: moderngl.Texture | None = None,
                  wireframe: bool = False, wire_color: tuple[float, float, float, float] = (0.1, 0.1, 0.12, 0.6),
                  wire_width: float = 0.6, cull: str | None = None) -> None:
        """Draw a mesh lit by the rig. ``model``: ``[4, 4]`` model -> world (default
        identity); ``heatmap``: colour by the mesh's scalar; ``texture``: multiply the
        albedo by it (through the mesh's uv); ``cull``: ``"back"``, ``"front"`` or None."""
        camera = self._require_frame()
        if heatmap is not None and not mesh.has_scalar:
            raise ValueError("a heat map needs a per-vertex scalar: pass scalar= to GpuMesh.update")
        ctx, prog = self.ctx, self.programs["mesh"]
        model = np.eye(4) if model is None else np.asarray(model, dtype=np.float64)
        model_view = self._view @ model
        normal_matrix = np.linalg.inv(model_view[:3, :3]).T
        _matrix(prog, "m_model", model)
        _matrix(prog, "m_view", self._view)
        _matrix(prog, "m_proj", self._proj)
        _matrix(prog, "m_normal", normal_matrix)
        set_uniform(prog, "u_viewport", tuple(float(s) for s in self._size))
        set_uniform(prog, "u_orthographic", camera.projection == "orthographic")
        apply(prog, self.rig, material, camera.rotation())
        set_uniform(prog, "u_albedo", material.albedo)
        set_uniform(prog, "u_vertex_albedo", mesh.has_albedo and heatmap is None)
        set_uniform(prog, "u_heatmap", heatmap is not None)
        set_uniform(prog, "u_use_texture", texture is not None)
        set_uniform(prog, "u_wireframe", bool(wireframe))
        set_uniform(prog, "u_wire_color", tuple(wire_color))
        set_uniform(prog, "u_wire_width", float(wire_width))
        (texture or self._white).use(location=0)
        set_uniform(prog, "u_texture", 0)
        if heatmap is not None:
            self.colormap(heatmap.colormap).use(location=1)
            set_uniform(prog, "u_colormap", 1)
            set_uniform(prog, "u_scalar_range", tuple(float(r) for r in heatmap.range))
        ctx.disable(moderngl.BLEND)
        if cull:
            ctx.enable(moderngl.CULL_FACE)
            ctx.cull_face = cull
        else:
            ctx.disable(moderngl.CULL_FACE)
        mesh.vao.render(moderngl.TRIANGLES)
        ctx.disable(moderngl.CULL_FACE)

    def draw_points(self, points: np.ndarray, color: tuple[float, float, float, float] = (0.1, 0.9, 0.3, 1.0),
                    size: float = 6.0, outline_color: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0),
                    outline: float = 0.3, depth_bias: float = 0.002, key: str = "points",
                    model: np.ndarray | None = None) -> None:
        """Draw round points ``[M, 3]`` (world, metres) of ``size`` pixels.
        ``key`` names a vertex buffer reused frame after frame."""
        self._require_frame()
        p = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
        if len(p) == 0:
            return
        prog = self.programs["points"]
        buf, vao = self._points.get(key, (None, None))
        if buf is None or buf.size < p.nbytes:
            if buf is not None:
                vao.release()
                buf.release()
            buf = self.ctx.buffer(reserve=p.nbytes, dynamic=True)
            vao = self.ctx.vertex_array(prog, [(buf, "3f", "in_position")])
            self._points[key] = (buf, vao)
        buf.orphan()
        buf.write(p)
        _matrix(prog, "m_model", np.eye(4) if model is None else model)
        _matrix(prog, "m_view", self._view)
        _matrix(prog, "m_proj", self._proj)
        set_uniform(prog, "u_point_size", float(size))
        set_uniform(prog, "u_depth_bias", float(depth_bias))
        set_uniform(prog, "u_color", tuple(color))
        set_uniform(prog, "u_outline_color", tuple(outline_color))
        set_uniform(prog, "u_outline", float(outline))
        ctx = self.ctx
        ctx.enable(moderngl.PROGRAM_POINT_SIZE | moderngl.BLEND)
        ctx.blend_func = (moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA, moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA)
        vao.render(moderngl.POINTS, vertices=len(p))
        ctx.disable(moderngl.BLEND)

    def draw_image(self, image: np.ndarray, x: int, y: int, key: str = "overlay") -> None:
        """Draw ``uint8 [h, w, 4]`` (straight alpha, top row first) over the frame
        with its top-left corner at pixel ``(x, y)`` (y down). ``key`` names a
        texture reused while the image keeps its size."""
        self._require_frame()
        img = np.ascontiguousarray(image, dtype=np.uint8)
        if img.ndim != 3 or img.shape[2] != 4:
            raise ValueError(f"draw_image needs uint8 [h, w, 4], got {img.shape}")
        h, w = img.shape[:2]
        tex = self._images.get(key)
        if tex is None or tex.size != (w, h):
            if tex is not None:
                tex.release()
            tex = self.ctx.texture((w, h), 4)
            tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
            self._images[key] = tex
        tex.write(img.tobytes())
        W, H = self._size
        prog = self.programs["overlay"]
        prog["u_rect"].value = (2 * x / W - 1, 1 - 2 * (y + h) / H, 2 * (x + w) / W - 1, 1 - 2 * y / H)
        tex.use(location=0)
        set_uniform(prog, "u_image", 0)
        ctx = self.ctx
        ctx.disable(moderngl.DEPTH_TEST)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = (moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA, moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA)
        self._quad_vao.render(moderngl.TRIANGLE_STRIP)
        ctx.disable(moderngl.BLEND)
        ctx.enable(moderngl.DEPTH_TEST)

    def end(self) -> None:
        """Finish the frame: resolve the multisampled target."""
        self._require_frame()
        if self.samples:
            self.ctx.copy_framebuffer(self.resolved, self.target)

    # --------------------------------------------------------------- read-back
    def read_rgba(self) -> np.ndarray:
        """The last frame as ``uint8 [H, W, 4]``, top row first (alpha 0: background)."""
        w, h = self._size
        data = self.resolved.read(components=4, dtype="f1")
        return np.frombuffer(data, dtype=np.uint8).reshape(h, w, 4)[::-1].copy()

    def read_depth(self) -> np.ndarray:
        """Distance along the view axis in metres ``float32 [H, W]`` (top row
        first), ``inf`` where nothing was drawn."""
        if self._camera is None:
            raise RuntimeError("read_depth before any frame was drawn")
        w, h = self._size
        raw = np.frombuffer(self.resolved.read(attachment=-1, components=1, dtype="f4"), dtype=np.float32)
        d = raw.reshape(h, w)[::-1].astype(np.float64)
        near, far = self._camera.clip_planes()
        if self._camera.projection == "perspective":
            z = 2 * d - 1
            dist = 2 * near * far / (far + near - z * (far - near))
        else:
            dist = near + d * (far - near)
        return np.where(d >= 1.0, np.inf, dist).astype(np.float32)

    def present(self, framebuffer: moderngl.Framebuffer | None = None) -> None:
        """Copy the last frame into ``framebuffer`` (default: the window's screen)
        of the same size."""
        dst = framebuffer if framebuffer is not None else self.ctx.screen
        self.ctx.copy_framebuffer(dst, self.resolved)

    def finish(self) -> None:
        """Wait until the GPU has done every command (for timing)."""
        self.ctx.finish()

    def close(self) -> None:
        """Release the targets (and the context when ``headless`` made it)."""
        if self._owns_context:
            self.ctx.release()
        self._targets = None

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _require_frame(self) -> Camera:
        if self._camera is None:
            raise RuntimeError("call Renderer.begin(camera) before drawing")
        return self._camera


def colormap_table(name: str) -> np.ndarray:
    """``uint8 [COLORMAP_SIZE, 3]`` sRGB entries of matplotlib's colormap ``name``."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError as exc:
        raise ValueError(f"unknown colormap {name!r}; perceptual ones: viridis, inferno, magma, plasma, "
                         f"cividis") from exc
    rgba = cmap(np.linspace(0.0, 1.0, COLORMAP_SIZE))
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


def _matrix(program: moderngl.Program, name: str, m: np.ndarray) -> None:
    """Write a row-major numpy matrix to a GLSL (column-major) uniform."""
    if name in program:
        program[name].write(np.ascontiguousarray(np.asarray(m, dtype=np.float32).T).tobytes())

