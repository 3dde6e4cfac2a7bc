"""``facecast render`` (pictures and videos, headless) and ``facecast view``
(the window).

Examples::

    facecast render --out template.png                   # the template, front, landmarks
    facecast render --grid labels --out labels.png        # the 12 CoMA labels at apex
    facecast render --grid shapes --face-version 2 --out shapes.png   # key ARKit shapes, SynthFace v2
    facecast render --grid labels --face-version 1,2 --out cmp.png    # v1 and v2 side by side
    facecast render --grid identities --out ids.png       # a population of identities
    facecast render --heatmap high_smile --out heat.png   # distance to neutral (mm)
    facecast render --sequence data/synth --label mouth_open --out clip.gif
    facecast view data/synth                              # play a data folder
    facecast view take.npz                                # play a recording
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from runtime.frames import Frame, SourceError, open_source
from runtime.render import PROJECTIONS, VIEWS, Camera, GLUnavailableError, Renderer
from runtime.render.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, flatten, grid, save_image, write_video
from runtime.render.overlay import colorbar_image
from runtime.render.scene import FaceView, Style

GRIDS = ("labels", "shapes", "identities", "views")
#: grid columns (with several --face-version: pictures per row, each once per version)
COLUMNS = 4
#: tile size of grids and the default size of single pictures (pixels)
TILE = (256, 320)
SINGLE = 512
#: framing margin of sequences (union of all their frames)
SEQUENCE_MARGIN = 1.08
HEATMAP_DEFAULT_LABEL = "high_smile"


def _versions(text: str) -> tuple[int, ...]:
    """``--face-version``: ``1``, ``2`` or ``1,2`` (each picture once per version, side by side)."""
    from models.face import FACE_VERSIONS

    try:
        versions = tuple(int(p) for p in text.split(","))
    except ValueError:
        versions = ()
    if not versions or any(v not in FACE_VERSIONS for v in versions) or len(set(versions)) != len(versions):
        raise argparse.ArgumentTypeError(f"--face-version takes {', '.join(map(str, FACE_VERSIONS))} or a "
                                         f"comma-separated list of them such as 1,2; got {text!r}")
    return versions


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or WxH, got {text!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 16 or max(parts) > 8192:
        raise argparse.ArgumentTypeError(f"size must be N or WxH between 16 and 8192, got {text!r}")
    return parts[0], parts[1]


# ----------------------------------------------------------------- pictures
def _template(args):
    if bool(args.template) != bool(args.template_landmarks):
        raise ValueError("--template and --template-landmarks go together")
    if not args.template:
        return None
    from runtime.render.gallery import load_template

    return load_template(args.template, args.template_landmarks)


def _subject_frames(args, template, version: int = 1) -> tuple[list[Frame], list[str], str]:
    """The frames of a picture of SynthFace ``version``, their captions, and how they were made."""
    from runtime.render import gallery

    if args.grid == "labels":
        frames = gallery.label_frames(identity_seed=args.identity_seed, seed=args.seed, template=template,
                                      face_version=version)
        return frames, [f.label for f in frames], "the 12 CoMA labels at apex"
    if args.grid == "shapes":
        frames = gallery.shape_frames(identity_seed=args.identity_seed, template=template, face_version=version)
        return frames, [f.label for f in frames], f"{len(frames)} key ARKit shapes at 1"
    if args.grid == "identities":
        frames = gallery.identity_frames(args.count, seed=args.seed, template=template, face_version=version)
        return frames, [f.subject for f in frames], f"{args.count} identities"
    if isinstance(args.heatmap, str) and args.heatmap != "auto":
        if args.heatmap not in gallery.COMA_LABELS:
            raise ValueError(f"--heatmap takes a CoMA label ({', '.join(gallery.COMA_LABELS)}), "
                             f"got {args.heatmap!r}")
        frame = gallery.label_frames((args.heatmap,), identity_seed=args.identity_seed, seed=args.seed,
                                     template=template, face_version=version)[0]
        return [frame], [args.heatmap], f"{args.heatmap} apex, distance to neutral"
    if args.heatmap == "auto":
        frame = gallery.label_frames((HEATMAP_DEFAULT_LABEL,), identity_seed=args.identity_seed, seed=args.seed,
                                     template=template, face_version=version)[0]
        return [frame], [HEATMAP_DEFAULT_LABEL], f"{HEATMAP_DEFAULT_LABEL} apex, distance to neutral"
    return [gallery.template_frame(template, face_version=version)], ["template"], "the template"


def _picture_frames(args, template) -> tuple[list[list[Frame]], list[str], list[str], str]:
    """The frames of each ``--face-version`` (one list per version), their
    captions, each version's caption tag (``" (v2)"``; none for one version)
    and how they were made."""
    versions = args.face_version or (1,)
    made = [_subject_frames(args, template, v) for v in versions]
    frames, captions, what = [m[0] for m in made], made[0][1], made[0][2]
    if len(versions) == 1:
        return frames, captions, [""], what + (f", SynthFace v{versions[0]}" if versions[0] != 1 else "")
    names = " and ".join(f"v{v}" for v in versions)
    return frames, captions, [f" (v{v})" for v in versions], f"{what}, SynthFace {names} side by side"


def _interleave(per_version: list[list]) -> list:
    """Each item of every version in turn: [a v1, a v2, b v1, b v2, ...]."""
    return [item for items in zip(*per_version) for item in items]


def _style(args, default_landmarks: bool, colorbar: bool = True) -> Style:
    landmarks = default_landmarks if args.landmarks is None else args.landmarks
    return Style(landmarks=landmarks, wireframe=args.wireframe, heatmap=args.heatmap is not None,
                 accessories=False if args.no_accessories else None, colormap=args.colormap,
                 colorbar=colorbar, scalar_range=tuple(args.range) if args.range else None)


def _camera(args, view: str | None = None) -> Camera:
    """The named view with the chosen projection (aimed by ``fit`` later)."""
    return Camera.named(view or args.view, projection=args.projection)


def cmd_render(args: argparse.Namespace) -> int:
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        raise ValueError(f"--out {out}: write .png, .gif or .mp4")
    if suffix in VIDEO_SUFFIXES and not args.sequence:
        raise ValueError(f"--out {out}: a video needs --sequence (a data folder or a .npz recording)")
    if args.sequence and args.grid:
        raise ValueError("--sequence and --grid go separately")
    if args.sequence and args.face_version:
        raise ValueError("--face-version picks the SynthFace of a picture; a --sequence brings its own meshes")
    start = time.perf_counter()
    if args.sequence:
        return _render_sequence(args, out, start)
    template = _template(args)
    per_version, captions, tags, what = _picture_frames(args, template)
    size = args.size or ((SINGLE, SINGLE) if args.grid is None else TILE)
    heat = args.heatmap is not None
    with Renderer.headless(size=size, samples=args.samples) as renderer:
        view = FaceView(renderer)
        aspect = size[0] / size[1]
        if args.grid == "views":                  # each view framed on its own, the same for every version
            union = np.concatenate([frames[0].vertices for frames in per_version])
            cameras = [_camera(args, v).fit(union, aspect=aspect) for v in VIEWS] * len(per_version)
            frames = [f for frames in per_version for f in frames * len(VIEWS)]
            captions = [v.replace("_", "-") + tag for tag in tags for v in VIEWS]
            columns = args.columns or len(VIEWS)
        else:                                     # one camera for all, so sizes compare
            frames = _interleave(per_version)
            captions = _interleave([[c + tag for c in captions] for tag in tags])
            union = np.concatenate([f.vertices for f in frames])
            cameras = [_camera(args).fit(union, aspect=aspect)] * len(frames)
            columns = ((args.columns or COLUMNS) if args.grid else 1) * len(per_version)
        scalar_range = tuple(args.range) if args.range else (
            (0.0, max(float(f.scalar.max()) for f in frames)) if heat else None)
        style = replace(_style(args, default_landmarks=args.grid is None and not heat, colorbar=False),
                        scalar_range=scalar_range)
        tiles = []
        for frame, camera in tqdm(list(zip(frames, cameras)), desc="render", unit="image", leave=False,
                                  disable=args.quiet or len(frames) == 1, file=sys.stderr):
            view.set_frame(frame)
            view.draw(camera, style)
            tiles.append(renderer.read_rgba())
        info = renderer.info
    if len(tiles) == 1:
        image = flatten(tiles[0])
    else:
        image = grid(tiles, columns=columns, captions=None if args.no_captions else captions,
                     caption_size=max(12, size[1] // 20))
    if heat:
        image = _with_colorbar(image, args.colormap, scalar_range, frames[0].scalar_name)
    save_image(out, image)
    h, w = image.shape[:2]
    print(f"wrote {out}: {what}, {w}x{h} px, {len(tiles)} render(s) in {time.perf_counter() - start:.1f} s "
          f"({info['renderer']})")
    return 0


def _with_colorbar(image: np.ndarray, colormap: str, scalar_range, label: str) -> np.ndarray:
    """``image`` (RGB) with a colour bar column on its right."""
    h = image.shape[0]
    bar = flatten(colorbar_image(colormap, float(scalar_range[0]), float(scalar_range[1]), label, min(h, 720)),
                  tuple(c / 255 for c in image[0, 0]))
    column = np.empty((h, bar.shape[1], 3), dtype=np.uint8)
    column[:] = image[0, 0]
    top = (h - bar.shape[0]) // 2
    column[top:top + bar.shape[0]] = bar
    return np.concatenate([image, column], axis=1)


def _render_sequence(args, out: Path, start: float) -> int:
    source = open_source(args.sequence)
    with source:
        if args.label or args.subject:
            source.select(label=args.label, subject=args.subject)
        size = args.size or (SINGLE, SINGLE)
        frames = list(source.frames())
        if not frames:
            raise ValueError(f"{args.sequence}: the selection has no frames")
        union = np.concatenate([f.vertices for f in frames])
        heat = args.heatmap is not None
        if heat and frames[0].scalar is None:
            raise ValueError(f"{args.sequence}: its frames carry no per-vertex scalar for --heatmap")
        style = _style(args, default_landmarks=False)
        if heat and style.scalar_range is None:
            style = replace(style, scalar_range=source.scalar_range())
        fps = args.fps or source.fps
        with Renderer.headless(size=size, samples=args.samples) as renderer:
            view = FaceView(renderer)
            camera = _camera(args).fit(union, aspect=size[0] / size[1], margin=SEQUENCE_MARGIN)
            if out.suffix.lower() in IMAGE_SUFFIXES:
                k = args.frame if args.frame is not None else len(frames) // 2
                if not 0 <= k < len(frames):
                    raise ValueError(f"--frame {k}: the selection has frames 0..{len(frames) - 1}")
                view.set_frame(frames[k])
                view.draw(camera, style)
                save_image(out, renderer.read_rgba())
                count = 1
            else:
                def rendered():
                    for frame in tqdm(frames, desc="render", unit="frame", leave=False, disable=args.quiet,
                                      file=sys.stderr):
                        view.set_frame(frame)
                        view.draw(camera, style)
                        yield renderer.read_rgba()
                count = write_video(out, rendered(), fps)
            info = renderer.info
        sel = source.current()
        what = ", ".join(f"{k} {v}" for k, v in sel.items() if v) or "all frames"
    print(f"wrote {out}: {count} frame(s) of {args.sequence} ({what}) at {size[0]}x{size[1]} "
          f"in {time.perf_counter() - start:.1f} s ({info['renderer']})")
    return 0


# -------------------------------------------------------------------- window
def cmd_view(args: argparse.Namespace) -> int:
    from clients.viewer import ViewerConfig, run_viewer

    source = open_source(args.source)
    with source:
        if args.label or args.subject:
            source.select(label=args.label, subject=args.subject)
        style = Style(landmarks=not args.no_landmarks, wireframe=args.wireframe, heatmap=args.heatmap,
                      colormap=args.colormap)
        config = ViewerConfig(size=args.size, samples=args.samples, view=args.view, projection=args.projection,
                              style=style, max_frames=args.frames,
                              screenshot=Path(args.screenshot) if args.screenshot else None,
                              vsync=not args.no_vsync, title=f"facecast - {args.source}")
        return run_viewer(source, config)


def _guarded(func):
    """Report bad input, missing files and missing OpenGL as one line on stderr (exit 2)."""
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (GLUnavailableError, SourceError, ValueError, FileNotFoundError) as exc:
            print(f"facecast {args.command}: {exc}", file=sys.stderr)
            return 2
    return run


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--view", choices=list(VIEWS), default="front", help="camera view (default front)")
    p.add_argument("--projection", choices=list(PROJECTIONS), default="perspective",
                   help="perspective, or scaled orthographic (the tracker's model)")
    p.add_argument("--samples", type=int, default=4, help="MSAA samples (default 4)")
    p.add_argument("--wireframe", action="store_true", help="draw the triangle edges")
    p.add_argument("--colormap", default="viridis", help="matplotlib colormap of heat maps (default viridis)")
    p.add_argument("--label", help="with a data folder or recording: the label to play")
    p.add_argument("--subject", help="with a data folder or recording: the subject to play")


def register_render(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="render pictures (PNG) and videos (GIF/MP4) headless",
                       description="Render SynthFace, a data folder or a recording offscreen. With only --out: "
                                   "the SynthFace template from the front with its landmarks.")
    p.add_argument("--out", required=True, help="output file: .png, .gif or .mp4")
    p.add_argument("--grid", choices=GRIDS,
                   help="a grid: the 12 labels at apex, 12 key ARKit shapes at 1 on the mean face (jawOpen, "
                        "blinks, smile, ...), identities, or three views")
    p.add_argument("--face-version", type=_versions, metavar="{1,2}",
                   help="SynthFace 1 (default) or 2; 1,2 renders each picture for v1 and v2 side by side "
                        "(grids: --columns pairs per row; views: a row per version) under one camera and "
                        "heat-map range, the captions naming the version")
    p.add_argument("--heatmap", nargs="?", const="auto", metavar="LABEL",
                   help="colour by a per-vertex distance in mm: with LABEL, SynthFace's apex of LABEL vs its "
                        "neutral (default high_smile); with --grid or --sequence, the frames' own scalar")
    p.add_argument("--sequence", metavar="URI", help="a data folder or .npz recording to render")
    p.add_argument("--frame", type=int, help="with --sequence and a .png: which frame (default the middle)")
    p.add_argument("--fps", type=float, help="video frame rate (default: the source's)")
    p.add_argument("--size", type=_size, help=f"pixels, N or WxH (default {SINGLE}, grid tiles {TILE[0]}x{TILE[1]})")
    p.add_argument("--count", type=int, default=12, help="identities in --grid identities (default 12)")
    p.add_argument("--columns", type=int,
                   help="grid columns (default 4; 3 for views); with --face-version 1,2, pictures per row, "
                        "each shown for v1 and v2")
    p.add_argument("--seed", type=int, default=0, help="seed of identities and performances (default 0)")
    p.add_argument("--identity-seed", type=int, default=-1,
                   help="identity of label pictures: -1 the mean face (default), else a sampled one")
    p.add_argument("--range", type=float, nargs=2, metavar=("LO", "HI"), help="heat map range (mm)")
    p.add_argument("--landmarks", dest="landmarks", action="store_true", default=None, help="draw the 68 landmarks")
    p.add_argument("--no-landmarks", dest="landmarks", action="store_false", help="do not draw them")
    p.add_argument("--no-accessories", action="store_true", help="no eyeballs or mouth cavity behind the slits")
    p.add_argument("--no-captions", action="store_true", help="grids without captions")
    p.add_argument("--template", help="render this template (OBJ/PLY, metres) instead of SynthFace's")
    p.add_argument("--template-landmarks", help="its 68 landmarks (JSON)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func=_guarded(cmd_render))


def register_view(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="play a data folder or a .npz recording in a window",
                       description="An interactive window: drag to orbit, scroll to zoom, arrows switch label "
                                   "and subject, W/L/H toggle wireframe, landmarks and heat map.")
    p.add_argument("source", help="a data folder (with meta.json), a .npz recording, or a live runtime: tcp://HOST:PORT[/STREAM] or ws://HOST:PORT[/STREAM]")
    p.add_argument("--size", type=_size, default=(960, 720), help="window size, N or WxH (default 960x720)")
    p.add_argument("--frames", type=int, help="close by itself after this many frames")
    p.add_argument("--screenshot", help="PNG written on S, and after the last frame of a --frames run")
    p.add_argument("--heatmap", action="store_true", help="start with the heat map on")
    p.add_argument("--no-landmarks", action="store_true", help="start with the landmarks off")
    p.add_argument("--no-vsync", action="store_true", help="draw as fast as possible")
    _common(p)
    p.set_defaults(func=_guarded(cmd_view))


def main(argv: list[str] | None = None) -> int:
    """``python -m clients.cli render|view ...``: these two commands alone, as
    ``facecast`` runs them (for scripts and tests that need no other package)."""
    parser = argparse.ArgumentParser(prog="facecast", description="facecast render and view")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_render(sub)
    register_view(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
