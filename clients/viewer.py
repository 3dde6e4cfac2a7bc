"""``facecast view``: a glfw window that plays a source of frames.

The window never reads files or sockets itself: it polls a
``runtime.frames.FrameSource`` once per refresh (a recording, a data folder,
later a live stream) and draws the frame with the same ``Renderer`` and
``FaceView`` that make offscreen pictures.

The input logic is ``ViewerState``, a plain object that turns key presses,
drags and scrolls into camera and style changes and source selections; it
touches no window, so tests drive it directly. ``Viewer`` is the thin glfw
adapter around it.

Controls:
    left drag   orbit              right / middle drag   pan
    scroll      zoom               F                     fit the face
    <- / ->     previous / next label
    up / down   previous / next subject
    1 2 3       front, three-quarter, profile view
    W           wireframe          L                     landmarks
    H           heat map           A                     eyes and mouth
    P           perspective / scaled orthographic
    space       pause              S                     screenshot (PNG)
    Q / Esc     quit
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from runtime.frames import Frame, FrameSource
from runtime.render import Camera, GLUnavailableError, Renderer, window_context
from runtime.render.images import save_image
from runtime.render.overlay import text_image
from runtime.render.scene import FaceView, Style

#: degrees of orbit per pixel of drag
ORBIT_DEG_PER_PX = 0.4
#: zoom factor per scroll step
ZOOM_STEP = 0.9
#: framing margin around the first frame of a clip (room for expressions)
FIT_MARGIN = 1.25
#: the FPS readout is refreshed this often (seconds)
FPS_WINDOW = 0.5
HELP = "drag orbit | scroll zoom | <- -> label | up down subject | 1 2 3 view | W wire | L landmarks | " \
       "H heat map | P projection | space pause | S screenshot | Q quit"
VIEW_KEYS = {"1": "front", "2": "three_quarter", "3": "profile"}


@dataclass
class ViewerState:
    """Camera, style and play state of the viewer, driven by input events."""

    source: FrameSource
    camera: Camera = field(default_factory=lambda: Camera.named("front"))
    style: Style = field(default_factory=Style)
    size: tuple[int, int] = (960, 720)
    paused: bool = False
    running: bool = True
    screenshot_requested: bool = False
    message: str = ""
    needs_fit: bool = True

    def key(self, name: str) -> None:
        """A key press by name: ``"left"``, ``"w"``, ``"space"``, ``"1"`` ..."""
        name = name.lower()
        s = self.style
        if name in ("q", "escape"):
            self.running = False
        elif name in ("left", "right"):
            self._step("label", -1 if name == "left" else 1)
        elif name in ("up", "down"):
            self._step("subject", -1 if name == "up" else 1)
        elif name in VIEW_KEYS:
            self.camera = replace(self.camera, yaw=Camera.named(VIEW_KEYS[name]).yaw,
                                  pitch=Camera.named(VIEW_KEYS[name]).pitch)
            self.needs_fit = True
        elif name == "f":
            self.needs_fit = True
        elif name == "w":
            self.style = replace(s, wireframe=not s.wireframe)
        elif name == "l":
            self.style = replace(s, landmarks=not s.landmarks)
        elif name == "h":
            self.style = replace(s, heatmap=not s.heatmap)
        elif name == "a":
            on = s.accessories if s.accessories is not None else True
            self.style = replace(s, accessories=not on)
        elif name == "p":
            other = "orthographic" if self.camera.projection == "perspective" else "perspective"
            self.camera = self.camera.with_projection(other)
        elif name == "space":
            self.paused = not self.paused
        elif name == "s":
            self.screenshot_requested = True

    def drag(self, dx: float, dy: float, button: str) -> None:
        """Mouse moved ``(dx, dy)`` pixels (y down) with ``button`` held."""
        if button == "left":
            self.camera = self.camera.orbit(-dx * ORBIT_DEG_PER_PX, dy * ORBIT_DEG_PER_PX)
        else:
            metres_per_px = 2.0 * self._half_height() / self.size[1]
            self.camera = self.camera.pan(-dx * metres_per_px, dy * metres_per_px)

    def scroll(self, steps: float) -> None:
        """Scrolled ``steps`` (positive: away from the user, zoom in)."""
        self.camera = self.camera.zoom(ZOOM_STEP ** steps)

    def _half_height(self) -> float:
        c = self.camera
        if c.projection == "orthographic":
            return c.half_height
        return c.distance * float(np.tan(np.radians(c.fov_y) / 2))

    def _step(self, what: str, delta: int) -> None:
        options = self.source.labels() if what == "label" else self.source.subjects()
        if not options:
            self.message = f"this source has no {what}s to switch"
            return
        now = self.source.current()[what]
        i = (options.index(now) + delta) % len(options) if now in options else 0
        self.source.select(**{what: options[i]})
        self.message = f"{what}: {options[i]}"

    def heatmap_style(self, frame: Frame | None) -> Style:
        """The style to draw with: the source's scalar range for heat maps."""
        if not self.style.heatmap or frame is None or frame.scalar is None:
            return self.style
        return replace(self.style, scalar_range=self.source.scalar_range() or self.style.scalar_range)


@dataclass(frozen=True)
class ViewerConfig:
    """Window and run options of ``Viewer``."""

    size: tuple[int, int] = (960, 720)
    samples: int = 4
    view: str = "front"
    projection: str = "perspective"
    style: Style = Style()
    max_frames: int | None = None          #: close by itself after this many frames
    screenshot: Path | None = None         #: where S (and the last frame of a --frames run) is saved
    vsync: bool = True
    title: str = "facecast"


@dataclass(frozen=True)
class ViewerStats:
    frames: int
    seconds: float
    renderer: str

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Viewer:
    """A glfw window showing a ``FrameSource``."""

    def __init__(self, source: FrameSource, config: ViewerConfig = ViewerConfig()) -> None:
        self.source = source
        self.config = config
        camera = Camera.named(config.view)
        if config.projection != camera.projection:
            camera = camera.with_projection(config.projection)
        self.state = ViewerState(source=source, camera=camera, style=config.style, size=config.size)

    def run(self) -> ViewerStats:
        import glfw

        if not glfw.init():
            raise GLUnavailableError("cannot open a window: glfw could not initialise (no display?); run under "
                                     "a desktop session or xvfb-run, or render offscreen with 'facecast render'")
        try:
            window = _create_window(glfw, self.config)
            return self._loop(glfw, window)
        finally:
            glfw.terminate()

    # ------------------------------------------------------------------ loop
    def _loop(self, glfw, window) -> ViewerStats:
        cfg, state = self.config, self.state
        glfw.make_context_current(window)
        glfw.swap_interval(1 if cfg.vsync else 0)
        ctx = window_context()
        renderer = Renderer(ctx, size=glfw.get_framebuffer_size(window), samples=cfg.samples)
        view = FaceView(renderer)
        self._install_callbacks(glfw, window)
        frame: Frame | None = None
        drawn, start = 0, time.perf_counter()
        play_clock, last = 0.0, start
        fps, fps_count, fps_since = 0.0, 0, start
        hud_text, hud = None, None
        while state.running and not glfw.window_should_close(window):
            glfw.poll_events()
            now = time.perf_counter()
            if not state.paused:
                play_clock += now - last
            last = now
            new = self.source.poll(play_clock)
            if new is not None:
                frame = new
                view.set_frame(frame)
            size = glfw.get_framebuffer_size(window)
            if size[0] > 0 and size[1] > 0 and size != renderer.size:
                renderer.resize(size)
                state.size = size
            if frame is None:
                glfw.wait_events_timeout(0.01)
                continue
            if state.needs_fit:
                state.camera = view.fit(state.camera, margin=FIT_MARGIN)
                state.needs_fit = False
            fps_count += 1
            if now - fps_since >= FPS_WINDOW:
                fps, fps_count, fps_since = fps_count / (now - fps_since), 0, now
            text = self._hud_lines(frame, fps)
            if text != hud_text:
                hud_text, hud = text, text_image(text, size=max(12, renderer.size[1] // 50), background=(0, 0, 0, 190))
            view.draw(state.camera, state.heatmap_style(frame), overlays=((hud, 8, 8, "hud"),))
            renderer.present(ctx.screen)
            drawn += 1
            last_frame = cfg.max_frames is not None and drawn >= cfg.max_frames
            if state.screenshot_requested or (last_frame and cfg.screenshot):
                self._screenshot(ctx)
                state.screenshot_requested = False
            glfw.swap_buffers(window)
            if last_frame:
                state.running = False
        seconds = time.perf_counter() - start
        return ViewerStats(frames=drawn, seconds=seconds, renderer=ctx.info["GL_RENDERER"])

    def _hud_lines(self, frame: Frame, fps: float) -> tuple[str, ...]:
        state = self.state
        parts = [f"{fps:5.1f} fps", f"frame {frame.index}"]
        if frame.label:
            parts.append(frame.label)
        if frame.subject:
            parts.append(frame.subject)
        if state.style.heatmap and frame.scalar is None:
            parts.append("no scalar to map")
        if state.paused:
            parts.append("paused")
        lines = [" | ".join(parts), HELP]
        if state.message:
            lines.append(state.message)
        return tuple(lines)

    def _screenshot(self, ctx) -> Path:
        """Save what the window's back buffer holds now (a real window read-back)."""
        w, h = ctx.screen.size
        data = np.frombuffer(ctx.screen.read(components=4), dtype=np.uint8).reshape(h, w, 4)[::-1]
        path = self.config.screenshot or Path(f"facecast-{time.strftime('%Y%m%d-%H%M%S')}.png")
        rgb = np.ascontiguousarray(data[..., :3])
        save_image(path, rgb)
        self.state.message = f"saved {path}"
        return path

    def _install_callbacks(self, glfw, window) -> None:
        state = self.state
        names = {glfw.KEY_LEFT: "left", glfw.KEY_RIGHT: "right", glfw.KEY_UP: "up", glfw.KEY_DOWN: "down",
                 glfw.KEY_ESCAPE: "escape", glfw.KEY_SPACE: "space"}
        buttons = {glfw.MOUSE_BUTTON_LEFT: "left", glfw.MOUSE_BUTTON_RIGHT: "right",
                   glfw.MOUSE_BUTTON_MIDDLE: "middle"}
        held: dict[str, bool] = {}
        cursor: list[float] = []

        def on_key(_w, key, _scancode, action, _mods):
            if action != glfw.PRESS:
                return
            if key in names:
                state.key(names[key])
            elif glfw.KEY_A <= key <= glfw.KEY_Z or glfw.KEY_0 <= key <= glfw.KEY_9:
                state.key(chr(key).lower())

        def on_button(_w, button, action, _mods):
            if button in buttons:
                held[buttons[button]] = action == glfw.PRESS

        def on_cursor(_w, x, y):
            if cursor:
                dx, dy = x - cursor[0], y - cursor[1]
                for name in ("left", "right", "middle"):
                    if held.get(name):
                        state.drag(dx, dy, name)
                        break
            cursor[:] = [x, y]

        def on_scroll(_w, _dx, dy):
            state.scroll(dy)

        glfw.set_key_callback(window, on_key)
        glfw.set_mouse_button_callback(window, on_button)
        glfw.set_cursor_pos_callback(window, on_cursor)
        glfw.set_scroll_callback(window, on_scroll)


def _create_window(glfw, cfg: ViewerConfig):
    """A window with an OpenGL 4.3 core context (compute normals), else 3.3 core."""
    for major, minor in ((4, 3), (3, 3)):
        glfw.default_window_hints()
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, major)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, minor)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        window = glfw.create_window(cfg.size[0], cfg.size[1], cfg.title, None, None)
        if window:
            return window
    description = glfw.get_error()[1] if hasattr(glfw, "get_error") else None
    raise GLUnavailableError(f"cannot open an OpenGL 3.3 window ({description or 'glfw gave no window'}); "
                             "check the display, or run 'facecast doctor'")


def run_viewer(source: FrameSource, config: ViewerConfig) -> int:
    """Run the window until it is closed; print a one-line summary."""
    stats = Viewer(source, config).run()
    print(f"viewer: {stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} fps) on {stats.renderer}",
          file=sys.stdout)
    return 0
