"""Images drawn over a frame: text (FPS readouts, captions) and colour bars.

Both are ``uint8 [h, w, 4]`` RGBA arrays (straight alpha, top row first)
for ``Renderer.draw_image`` or for compositing pictures. Text uses Pillow
with matplotlib's bundled DejaVu Sans; colour bars are drawn by
matplotlib itself (ticks, label) on a transparent canvas.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def _font(size: int):
    from matplotlib import font_manager
    from PIL import ImageFont

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def text_image(lines: list[str] | str, size: int = 14, color: tuple[int, int, int] = (255, 255, 255),
               background: tuple[int, int, int, int] = (0, 0, 0, 140), padding: int = 6) -> np.ndarray:
    """Lines of text on a translucent box, ``uint8 [h, w, 4]``."""
    from PIL import Image, ImageDraw

    lines = [lines] if isinstance(lines, str) else list(lines)
    font = _font(int(size))
    step = int(round(size * 1.3))
    width = max((int(font.getlength(line)) for line in lines), default=0) + 2 * padding
    height = step * len(lines) + 2 * padding
    img = Image.new("RGBA", (max(width, 1), max(height, 1)), background)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((padding, padding + i * step), line, font=font, fill=(*color, 255))
    return np.asarray(img, dtype=np.uint8).copy()


def caption(image: np.ndarray, text: str, size: int = 16, color: tuple[int, int, int] = (40, 40, 40),
            where: str = "bottom") -> np.ndarray:
    """``image [H, W, 3|4]`` with ``text`` centred at its bottom (or top) edge."""
    from PIL import Image, ImageDraw

    pil = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(pil)
    font = _font(int(size))
    w = font.getlength(text)
    y = pil.height - int(size * 1.45) if where == "bottom" else int(size * 0.25)
    draw.text(((pil.width - w) / 2, y), text, font=font, fill=(*color, 255))
    return np.asarray(pil).copy()


@lru_cache(maxsize=8)
def colorbar_image(colormap: str, vmin: float, vmax: float, label: str, height: int,
                   text_color: tuple[float, float, float] = (0.15, 0.15, 0.15)) -> np.ndarray:
    """A vertical colour bar with ticks and ``label``, ``uint8 [height, w, 4]``
    (transparent background); ``w`` is about a fifth of ``height``."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colorbar import Colorbar
    from matplotlib.figure import Figure

    dpi = 100
    h_in = height / dpi
    w_in = max(0.22 * h_in, 0.9)
    fig = Figure(figsize=(w_in, h_in), dpi=dpi)
    fig.patch.set_alpha(0.0)
    FigureCanvasAgg(fig)
    font = max(7.0, height / 36)
    ax = fig.add_axes((0.12, 0.08, 0.16, 0.84))
    norm = matplotlib.colors.Normalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-6)
    bar = Colorbar(ax, cmap=matplotlib.colormaps[colormap], norm=norm, orientation="vertical")
    bar.set_label(label, color=text_color, fontsize=font)
    ax.tick_params(colors=text_color, labelsize=font)
    bar.outline.set_edgecolor(text_color)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba(), dtype=np.uint8).copy()
