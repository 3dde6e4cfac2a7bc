"""Pictures and videos from rendered frames: grids with captions, PNG, GIF, MP4.

Images are ``uint8 [H, W, 3|4]`` arrays, top row first. Videos are written
frame by frame as they are rendered: MP4 through imageio's ffmpeg plugin
(H.264, yuv420p), GIF through its Pillow plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from runtime.render.overlay import caption

IMAGE_SUFFIXES = (".png",)
VIDEO_SUFFIXES = (".gif", ".mp4")
#: height of a grid tile's caption band, in caption font sizes
CAPTION_BAND = 1.7


def flatten(image: np.ndarray, background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """RGBA -> RGB over ``background`` (sRGB in [0, 1]); RGB is returned as is."""
    if image.shape[-1] == 3:
        return image
    a = image[..., 3:4].astype(np.float32) / 255.0
    bg = np.asarray(background, dtype=np.float32) * 255.0
    return np.round(image[..., :3] * a + bg * (1.0 - a)).astype(np.uint8)


def grid(images: list[np.ndarray], columns: int, captions: list[str] | None = None,
         caption_size: int = 16, gap: int = 0, background: tuple[int, int, int] = (237, 237, 240)) -> np.ndarray:
    """Tiles of equal size in rows of ``columns``, each with its caption in a
    band below it: ``uint8 [H, W, 3]``."""
    if not images:
        raise ValueError("grid needs at least one image")
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):
        raise ValueError("grid tiles must all have the same size")
    band = int(round(caption_size * CAPTION_BAND)) if captions else 0
    cell = h + band
    rows = (len(images) + columns - 1) // columns
    out = np.empty((rows * cell + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), dtype=np.uint8)
    out[:] = background
    for k, im in enumerate(images):
        tile = np.empty((cell, w, 3), dtype=np.uint8)
        tile[:] = background
        tile[:h] = flatten(im, tuple(c / 255 for c in background))
        if captions:
            tile = caption(tile, captions[k], size=caption_size)
        r, c = divmod(k, columns)
        out[r * (cell + gap):r * (cell + gap) + cell, c * (w + gap):c * (w + gap) + w] = tile
    return out


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write a PNG (RGB when the image is opaque, else RGBA)."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: images are written as {', '.join(IMAGE_SUFFIXES)}")
    img = np.ascontiguousarray(image)
    if img.shape[-1] == 4 and np.all(img[..., 3] == 255):
        img = img[..., :3]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, optimize=True)
    return path


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Write RGB(A) frames to ``.mp4`` or ``.gif``; returns the number written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"{path}: videos are written as {', '.join(VIDEO_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if suffix == ".gif":
        import imageio.v3 as iio

        with iio.imopen(path, "w", plugin="pillow") as out:
            for frame in frames:
                out.write(flatten(frame), duration=1000.0 / fps, loop=0)
                count += 1
    else:
        import imageio.v2 as iio2

        try:
            writer = iio2.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p",
                                     macro_block_size=2, ffmpeg_log_level="error")
        except (ImportError, RuntimeError) as exc:
            raise RuntimeError(f"cannot write {path}: MP4 needs ffmpeg (pip install imageio-ffmpeg, "
                               f"or make system-deps for Debian's ffmpeg): {exc}") from exc
        with writer:
            for frame in frames:
                writer.append_data(flatten(frame))
                count += 1
    if count == 0:
        path.unlink(missing_ok=True)
        raise ValueError(f"{path}: no frames to write")
    return count
