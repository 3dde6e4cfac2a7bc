"""The renderer: moderngl over a glfw window or a headless EGL context.

    Renderer        draws meshes, points and images; reads back RGBA and depth
    GpuMesh         one topology on the GPU, updated per frame
    Camera          orbit, fit-to-bounds, named views; perspective or scaled orthographic
    LightRig, Material, SKIN ...   lighting and materials
    FaceView, Style draw a ``runtime.frames.Frame`` (face, eyes, mouth, landmarks, heat map)
    vertex_normals  the area-weighted unit normals it shades with (numpy), for exporters
"""

from models.geometry.normals import vertex_normals
from runtime.render.camera import PROJECTIONS, VIEWS, Camera
from runtime.render.context import GLUnavailableError, gl_info, headless_context, window_context
from runtime.render.lighting import EYE, HEATMAP, MOUTH, SKIN, LightRig, Material, skin_tone
from runtime.render.mesh import GpuMesh
from runtime.render.renderer import Heatmap, Renderer
from runtime.render.scene import FaceView, Style
from runtime.render.shaders import ShaderError, load_program, program_names

__all__ = [
    "EYE", "HEATMAP", "MOUTH", "PROJECTIONS", "SKIN", "VIEWS", "Camera", "FaceView", "GLUnavailableError",
    "GpuMesh", "Heatmap", "LightRig", "Material", "Renderer", "ShaderError", "Style", "gl_info", "headless_context",
    "load_program", "program_names", "skin_tone", "vertex_normals", "window_context",
]
