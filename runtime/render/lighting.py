"""The light rig and materials of ``shaders/mesh.glsl``.

Lights are fixed to the camera (view space: +x right, +y up, +z toward the
viewer), so a face keeps its portrait lighting while it is orbited: a warm
key light from the upper left, a cool fill from the right, and a hemisphere
whose sky is the world's up. Colours are linear RGB intensities; albedos
are sRGB in ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import moderngl
import numpy as np


@dataclass(frozen=True)
class LightRig:
    """Key, fill and hemisphere lights (directions point toward the light, view space)."""

    key_direction: tuple[float, float, float] = (-0.55, 0.55, 0.65)
    key_color: tuple[float, float, float] = (0.95, 0.88, 0.80)
    fill_direction: tuple[float, float, float] = (0.75, 0.05, 0.45)
    fill_color: tuple[float, float, float] = (0.26, 0.29, 0.34)
    sky_color: tuple[float, float, float] = (0.30, 0.32, 0.36)
    ground_color: tuple[float, float, float] = (0.10, 0.08, 0.07)


@dataclass(frozen=True)
class Material:
    """Surface response: Blinn-Phong specular, wrapped diffuse, scatter tint."""

    albedo: tuple[float, float, float] = (0.80, 0.62, 0.52)   #: sRGB, used where no per-vertex albedo is given
    specular: float = 0.12
    shininess: float = 28.0
    wrap: float = 0.35             #: diffuse wrap past the terminator (0: Lambert)
    scatter: tuple[float, float, float] = (0.10, 0.02, 0.01)   #: linear colour added in the wrap band
    rim: float = 0.25              #: Fresnel rim strength
    inside: float = 0.45           #: brightness of back faces


#: a light skin (the default), and the tones used for training images
SKIN = Material()
#: per-vertex scalars (heat maps): little specular, so the colours read true
HEATMAP = Material(specular=0.04, shininess=16.0, wrap=0.5, scatter=(0.0, 0.0, 0.0), rim=0.1, inside=0.6)
#: the wet, glossy eyeball
EYE = Material(albedo=(1.0, 1.0, 1.0), specular=0.35, shininess=160.0, wrap=0.1, scatter=(0.0, 0.0, 0.0),
               rim=0.1, inside=1.0)
#: the inside of the mouth: dark and matt
MOUTH = Material(albedo=(0.20, 0.06, 0.06), specular=0.0, shininess=1.0, wrap=0.0, scatter=(0.0, 0.0, 0.0),
                 rim=0.0, inside=1.0)


def skin_tone(lightness: float, warmth: float = 0.5) -> tuple[float, float, float]:
    """An sRGB skin albedo from ``lightness`` in [0, 1] (deep to light) and
    ``warmth`` in [0, 1] (olive to rosy), for varied training images."""
    deep, light = np.array([0.30, 0.19, 0.13]), np.array([0.90, 0.72, 0.62])
    base = deep + float(np.clip(lightness, 0, 1)) * (light - deep)
    tint = (float(np.clip(warmth, 0, 1)) - 0.5) * np.array([0.06, -0.02, -0.04])
    return tuple(float(c) for c in np.clip(base + tint, 0.0, 1.0))


def set_uniform(program: moderngl.Program, name: str, value) -> None:
    """Set ``name`` when the program uses it (GLSL drops unused uniforms)."""
    if name in program:
        program[name].value = value


def apply(program: moderngl.Program, rig: LightRig, material: Material, view_rotation: np.ndarray) -> None:
    """Write the rig and material uniforms; ``view_rotation`` is the camera's
    world -> view rotation (for the sky's direction)."""
    up = tuple(float(c) for c in view_rotation @ np.array([0.0, 1.0, 0.0]))
    for name, value in (
        ("u_key_direction", rig.key_direction), ("u_key_color", rig.key_color),
        ("u_fill_direction", rig.fill_direction), ("u_fill_color", rig.fill_color),
        ("u_sky_color", rig.sky_color), ("u_ground_color", rig.ground_color), ("u_up", up),
        ("u_specular", material.specular), ("u_shininess", material.shininess), ("u_wrap", material.wrap),
        ("u_scatter", material.scatter), ("u_rim", material.rim), ("u_inside", material.inside),
    ):
        set_uniform(program, name, value)
