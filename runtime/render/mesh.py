"""A triangle mesh on the GPU: uploaded once per topology, updated per frame.

``GpuMesh`` owns an index buffer (the faces) and one vertex buffer per
attribute (positions, normals, albedo, uv, scalar). Per frame only the
positions (and optionally the scalar) change: their buffers are orphaned
and rewritten in place, never re-created, and the normals are recomputed
from the new positions, by the ``normals`` compute shader when the context
has OpenGL 4.3, else by a vectorised numpy fallback over a vertex-triangle
incidence matrix built once (``models.geometry.normals``). Both give the
area-weighted unit normals of ``vertex_normals``.

Arrays: ``vertices`` float32 ``[N, 3]`` metres, ``faces`` int32 ``[F, 3]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import moderngl
import numpy as np

from models.constants import EPS_LENGTH
from models.geometry.normals import face_normals, vertex_face_incidence

if TYPE_CHECKING:
    from runtime.render.renderer import Renderer

#: invocations per work group of shaders/normals.glsl (its local_size_x)
NORMALS_GROUP = 64
F32 = 4


class GpuMesh:
    """One topology's buffers and vertex array in a ``Renderer``'s context."""

    def __init__(self, renderer: "Renderer", faces: np.ndarray, n_vertices: int,
                 uv: np.ndarray | None = None, albedo: np.ndarray | None = None) -> None:
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
            raise ValueError(f"faces must be a non-empty int array [F, 3], got shape {faces.shape}")
        if faces.min() < 0 or faces.max() >= n_vertices:
            raise ValueError(f"faces index vertices outside 0..{n_vertices - 1}")
        self.renderer = renderer
        self.faces = np.ascontiguousarray(faces, dtype=np.int32)
        self.n_vertices = int(n_vertices)
        self.compute = renderer.normals_mode == "compute"
        ctx = renderer.ctx
        n = self.n_vertices
        self.index = ctx.buffer(self.faces.astype(np.uint32).tobytes())
        self.positions = ctx.buffer(reserve=n * 3 * F32, dynamic=True)
        self.normals = ctx.buffer(reserve=n * 3 * F32, dynamic=True)
        self.albedo = ctx.buffer(reserve=n * 3 * F32)
        self.uv = ctx.buffer(reserve=n * 2 * F32)
        self.scalar = ctx.buffer(reserve=n * F32, dynamic=True)
        self.has_albedo = False
        self.has_scalar = False
        if uv is not None:
            self.uv.write(self._checked(uv, (n, 2), "uv"))
        if albedo is not None:
            self.set_albedo(albedo)
        self.vao = ctx.vertex_array(
            renderer.programs["mesh"],
            [(self.positions, "3f", "in_position"), (self.normals, "3f", "in_normal"),
             (self.albedo, "3f", "in_albedo"), (self.uv, "2f", "in_uv"), (self.scalar, "f", "in_scalar")],
            index_buffer=self.index, index_element_size=4,
        )
        if self.compute:
            offsets, incident = _incident_triangles(self.faces, n)
            self._offsets = ctx.buffer(offsets.tobytes())
            self._incident = ctx.buffer(incident.tobytes())
        else:
            self._incidence = vertex_face_incidence(self.faces, n)
        self.vertices: np.ndarray | None = None      #: the last positions written (host copy)

    # ------------------------------------------------------------------ updates
    def update(self, vertices: np.ndarray, scalar: np.ndarray | None = None, normals: bool = True) -> None:
        """New positions ``[N, 3]`` (and per-vertex ``scalar [N]``); the normals are
        recomputed unless ``normals`` is False (then call ``update_normals``)."""
        v = self._checked(vertices, (self.n_vertices, 3), "vertices")
        self.positions.orphan()
        self.positions.write(v)
        self.vertices = v
        if scalar is not None:
            self.scalar.orphan()
            self.scalar.write(self._checked(scalar, (self.n_vertices,), "scalar"))
            self.has_scalar = True
        if normals:
            self.update_normals()

    def set_albedo(self, albedo: np.ndarray | None) -> None:
        """Per-vertex sRGB albedo ``[N, 3]`` in [0, 1], or None for the material's."""
        if albedo is None:
            self.has_albedo = False
            return
        self.albedo.write(self._checked(albedo, (self.n_vertices, 3), "albedo"))
        self.has_albedo = True

    def update_normals(self) -> None:
        """Recompute the normal buffer from the position buffer."""
        if self.vertices is None:
            raise RuntimeError("GpuMesh.update_normals before any positions were written")
        if self.compute:
            shader = self.renderer.programs["normals"]
            for binding, buf in enumerate((self.positions, self.index, self._offsets, self._incident, self.normals)):
                buf.bind_to_storage_buffer(binding)
            shader["u_count"].value = self.n_vertices
            shader["u_eps"].value = EPS_LENGTH
            shader.run(group_x=(self.n_vertices + NORMALS_GROUP - 1) // NORMALS_GROUP)
            self.renderer.ctx.memory_barrier(moderngl.VERTEX_ATTRIB_ARRAY_BARRIER_BIT
                                             | moderngl.BUFFER_UPDATE_BARRIER_BIT
                                             | moderngl.SHADER_STORAGE_BARRIER_BIT)
        else:
            self.normals.orphan()
            self.normals.write(numpy_normals(self.vertices, self.faces, self._incidence))

    def read_normals(self) -> np.ndarray:
        """The normal buffer as float32 ``[N, 3]`` (a GPU read-back, for tests)."""
        return np.frombuffer(self.normals.read(), dtype=np.float32).reshape(self.n_vertices, 3).copy()

    def release(self) -> None:
        for obj in (self.vao, self.index, self.positions, self.normals, self.albedo, self.uv, self.scalar,
                    getattr(self, "_offsets", None), getattr(self, "_incident", None)):
            if obj is not None:
                obj.release()

    @staticmethod
    def _checked(array: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
        a = np.ascontiguousarray(array, dtype=np.float32)
        if a.shape != shape:
            raise ValueError(f"{name} must have shape {list(shape)}, got {list(np.shape(array))}")
        return a


def numpy_normals(vertices: np.ndarray, faces: np.ndarray, incidence) -> np.ndarray:
    """Area-weighted unit vertex normals float32 ``[N, 3]`` with a prebuilt
    ``vertex_face_incidence`` (the CPU path; equal to ``vertex_normals``)."""
    summed = incidence @ face_normals(vertices, faces, normalize=False)
    length = np.linalg.norm(summed, axis=-1, keepdims=True)
    return (summed / np.maximum(length, EPS_LENGTH)).astype(np.float32)


def _incident_triangles(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists of the triangles each vertex belongs to: ``offsets uint32 [N + 1]``
    and ``incident uint32 [3 F]`` (triangle ids, ascending per vertex)."""
    corners = faces.reshape(-1).astype(np.int64)
    tri = np.repeat(np.arange(len(faces), dtype=np.int64), 3)
    order = np.lexsort((tri, corners))
    counts = np.bincount(corners, minlength=n_vertices)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.uint32)
    return offsets, tri[order].astype(np.uint32)
