"""``facecast doctor``: what is installed, what is missing, and the fix for each."""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Callable

SYSTEM_FIX = "make system-deps (Debian: apt-get install libegl1 libgl1-mesa-dri chromium xvfb ffmpeg)"
CORE = ("torch", "numpy", "scipy", "zmq", "msgpack", "moderngl", "glfw", "trimesh", "websockets", "tqdm")


@dataclass(frozen=True)
class Check:
    name: str
    required: bool
    probe: Callable[[], str]       #: returns a detail string, raises if missing
    fix: str


def _module(name: str) -> Callable[[], str]:
    def probe() -> str:
        mod = importlib.import_module(name)
        return getattr(mod, "__version__", "installed")
    return probe


def _python() -> str:
    if sys.version_info < (3, 11):
        raise RuntimeError(f"Python {sys.version.split()[0]} is older than 3.11")
    return sys.version.split()[0]


def _gl() -> str:
    import moderngl

    ctx = moderngl.create_standalone_context(backend="egl")
    try:
        return f"{ctx.info['GL_RENDERER']} (OpenGL {ctx.version_code // 100}.{ctx.version_code % 100 // 10})"
    finally:
        ctx.release()


def _display() -> str:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise RuntimeError("no DISPLAY: windows need a screen or Xvfb; offscreen rendering still works")
    return os.environ.get("DISPLAY") or os.environ["WAYLAND_DISPLAY"]


def _dlib_model() -> str:
    from models.tracking.dlib68 import shape_predictor_path

    importlib.import_module("dlib")
    return str(shape_predictor_path())


def _executable(*names: str) -> Callable[[], str]:
    def probe() -> str:
        for n in names:
            path = shutil.which(n) or (n if os.path.isabs(n) and os.access(n, os.X_OK) else None)
            if path:
                return path
        raise RuntimeError(f"none of {', '.join(names)} found")
    return probe


def _ffmpeg() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return _executable("ffmpeg")()


CHECKS: tuple[Check, ...] = (
    Check("python >= 3.11", True, _python, "install Python 3.11 or newer"),
    *(Check(f"python package {m}", True, _module(m), "make demo (creates .venv and installs facecast)")
      for m in CORE),
    Check("OpenGL context (EGL, headless)", True, _gl, SYSTEM_FIX),
    Check("display for windows", False, _display, "run under a desktop, or xvfb-run facecast view ..."),
    Check("dlib + 68-point model", False, _dlib_model, "pip install -e '.[track]'"),
    Check("Chromium browser", False, _executable("chromium", "/usr/bin/chromium"), SYSTEM_FIX),
    Check("Playwright (browser tests)", False, _module("playwright"), "pip install -e '.[dev]'"),
    Check("ffmpeg (MP4/GIF)", False, _ffmpeg, "pip install imageio-ffmpeg, or " + SYSTEM_FIX),
    Check("Xvfb (window tests)", False, _executable("Xvfb"), SYSTEM_FIX),
)


def run_checks(checks: tuple[Check, ...] = CHECKS) -> list[tuple[Check, bool, str]]:
    out = []
    for c in checks:
        try:
            out.append((c, True, c.probe()))
        except Exception as exc:  # every failure is a finding to report, never a crash
            out.append((c, False, f"{type(exc).__name__}: {exc}"))
    return out


def doctor(args: argparse.Namespace) -> int:
    results = run_checks()
    width = max(len(c.name) for c, _, _ in results)
    missing_required = False
    for c, ok, detail in results:
        mark = "ok  " if ok else ("MISSING" if c.required else "absent")
        print(f"{mark:8s} {c.name:<{width}}  {detail}")
        if not ok:
            print(f"{'':8s} {'':<{width}}  fix: {c.fix}")
            missing_required |= c.required
    print("facecast doctor: " + ("required parts missing (see fixes above)" if missing_required
                                 else "all required parts present"))
    return 1 if missing_required else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check what is installed and what is missing")
    p.set_defaults(func=doctor)
