"""OpenGL contexts for the renderer: a standalone EGL context (headless) or
the context of a window someone else created (glfw), with one clear error
when no OpenGL is available.

The renderer needs OpenGL 3.3 core; with 4.3 or newer it also computes
vertex normals in a compute shader. On a Debian machine without a GPU,
``libegl1`` and ``libgl1-mesa-dri`` give Mesa's llvmpipe (OpenGL 4.5 core).
"""

from __future__ import annotations

import moderngl

#: the OpenGL version every program needs (GLSL 330 core)
MIN_GL_VERSION = 330
#: compute shaders and shader storage buffers arrive with OpenGL 4.3
COMPUTE_GL_VERSION = 430
#: what to install when there is no OpenGL at all
GL_FIX = ("headless rendering needs EGL and Mesa: install the Debian packages libegl1 and "
          "libgl1-mesa-dri with 'make system-deps' (or apt-get install libegl1 libgl1-mesa-dri)")


class GLUnavailableError(RuntimeError):
    """No OpenGL context could be made; the message says what to install."""


def headless_context(require: int = MIN_GL_VERSION) -> moderngl.Context:
    """A standalone OpenGL context over EGL (no window, no display).

    Raises:
        GLUnavailableError: EGL or Mesa is missing or offers no device, or the
            OpenGL version is below ``require``.
    """
    try:
        ctx = moderngl.create_standalone_context(backend="egl", require=require)
    except Exception as exc:  # moderngl raises bare Exception for every EGL failure
        raise GLUnavailableError(f"no OpenGL context over EGL ({exc}); {GL_FIX}") from exc
    return ctx


def window_context(require: int = MIN_GL_VERSION) -> moderngl.Context:
    """The context of the window that is current on this thread (e.g. glfw)."""
    try:
        return moderngl.create_context(require=require)
    except Exception as exc:  # as above: moderngl's errors are bare Exceptions
        raise GLUnavailableError(f"the window has no usable OpenGL {require // 100}.{require % 100 // 10} "
                                 f"context ({exc}); {GL_FIX}") from exc


def gl_info(ctx: moderngl.Context) -> dict:
    """What the context runs on: renderer, vendor, version, and the normals path."""
    return {
        "renderer": ctx.info["GL_RENDERER"],
        "vendor": ctx.info["GL_VENDOR"],
        "version": ctx.info["GL_VERSION"],
        "version_code": ctx.version_code,
        "max_samples": ctx.max_samples,
        "compute_shaders": ctx.version_code >= COMPUTE_GL_VERSION,
    }
