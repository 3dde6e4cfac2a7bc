"""GLSL programs, loaded by name from the project's ``shaders/`` folder.

One file per program (``shaders/NAME.glsl``). The file starts with its
``#version`` line; its stages are the blocks guarded by ``VERTEX_SHADER``,
``GEOMETRY_SHADER``, ``FRAGMENT_SHADER`` or ``COMPUTE_SHADER``, and the
loader compiles each stage it finds with that name defined right after the
version line (the layout of moderngl-window's program files).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import moderngl

#: where the program files live: ``shaders/`` beside the packages
SHADER_DIR = Path(__file__).resolve().parents[2] / "shaders"
STAGES = ("VERTEX_SHADER", "GEOMETRY_SHADER", "FRAGMENT_SHADER", "COMPUTE_SHADER")
_VERSION = re.compile(r"^\s*#version[^\n]*\n", re.MULTILINE)


class ShaderError(RuntimeError):
    """A program file that is missing or does not compile; the message names it."""


def program_names() -> list[str]:
    """Every program in ``shaders/`` (file names without ``.glsl``)."""
    # NAME_es.glsl files are GLSL ES variants for the web page (WebGL2), not desktop programs
    return sorted(p.stem for p in SHADER_DIR.glob("*.glsl") if not p.stem.endswith("_es"))


@lru_cache(maxsize=None)
def program_source(name: str) -> str:
    """The text of ``shaders/NAME.glsl``."""
    path = SHADER_DIR / f"{name}.glsl"
    if not path.is_file():
        raise ShaderError(f"shader program {name!r} not found: {path} does not exist "
                          f"(programs: {', '.join(program_names()) or 'none'})")
    return path.read_text()


def program_stages(name: str) -> dict[str, str]:
    """``{stage: source}`` for each stage the file defines, ready to compile."""
    text = program_source(name)
    match = _VERSION.search(text)
    if match is None or text[:match.start()].strip():
        raise ShaderError(f"shaders/{name}.glsl: the first line must be its #version")
    head, body = text[:match.end()], text[match.end():]
    stages = {s: f"{head}#define {s}\n{body}" for s in STAGES if re.search(rf"\bdefined\s+{s}\b", text)}
    if not stages:
        raise ShaderError(f"shaders/{name}.glsl defines no stage ({', '.join(STAGES)})")
    return stages


def load_program(ctx: moderngl.Context, name: str) -> moderngl.Program | moderngl.ComputeShader:
    """Compile ``shaders/NAME.glsl``: a ``Program``, or a ``ComputeShader`` for a
    compute-only file."""
    stages = program_stages(name)
    try:
        if "COMPUTE_SHADER" in stages:
            if len(stages) > 1:
                raise ShaderError(f"shaders/{name}.glsl mixes a compute stage with others")
            return ctx.compute_shader(stages["COMPUTE_SHADER"])
        return ctx.program(
            vertex_shader=stages.get("VERTEX_SHADER"),
            geometry_shader=stages.get("GEOMETRY_SHADER"),
            fragment_shader=stages.get("FRAGMENT_SHADER"),
        )
    except ShaderError:
        raise
    except Exception as exc:  # moderngl reports compile and link errors as bare Exceptions
        raise ShaderError(f"shaders/{name}.glsl does not compile: {exc}") from exc
