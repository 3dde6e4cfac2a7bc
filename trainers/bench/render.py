"""``facecast bench render``: milliseconds per frame of the renderer.

A 5k-vertex mesh (the SynthFace template, 5,229 vertices and 10,080
triangles) plays a precomputed SynthFace sequence; every frame writes the
new positions into the vertex buffer (orphan + write), recomputes the
vertex normals (compute shader where OpenGL >= 4.3, numpy otherwise),
draws the lit face with its landmarks into a 4x MSAA target and resolves
it. Figures, at 512x512 and 1024x1024:

- ``ms_per_frame``: that whole frame, pipelined as a window would run it
  (one ``glFinish`` at the end of the timed run), mean over the frames;
- ``stages_ms``: the same work with a ``glFinish`` after each stage (upload,
  normals, draw, resolve) and the read-back of RGBA to numpy, so each
  stage's own cost shows (their sum exceeds ``ms_per_frame`` by the lost
  overlap);
- ``ms_per_frame_numpy_normals``: the whole frame with the numpy fallback;
- ``renderer``: the GL_RENDERER string of the context measured;
- ``machine.load_average_1min``: the load before and after the run (llvmpipe
  shares the CPU cores with everything else running).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from trainers.bench import emit, machine

SIZES = (512, 1024)
#: frames in the animated sequence, frames timed per figure, frames to warm up
SEQUENCE = 60
TIMED = 120
WARMUP = 10


def _sequence():
    from models.face import synthface
    from models.face.labels import apex_weights

    model = synthface()
    apex, _ = apex_weights("mouth_extreme", np.random.default_rng(0))
    ramp = np.sin(np.linspace(0.0, np.pi, SEQUENCE))[:, None].astype(np.float32)
    verts = model.vertices(np.zeros((SEQUENCE, 35), dtype=np.float32), ramp * apex[None])
    return model.template, verts


def _measure(template, verts, size: int, normals: str, stages: bool, timed: int = TIMED) -> dict:
    from runtime.render import Camera, Renderer

    with Renderer.headless(size=(size, size), samples=4, normals=normals) as r:
        mesh = r.mesh(template.faces, template.n_vertices)
        camera = Camera.named("three_quarter").fit(verts.reshape(-1, 3))
        landmarks = template.landmark_points(verts)
        times = {"upload": 0.0, "normals": 0.0, "draw": 0.0, "resolve": 0.0, "readback": 0.0}

        def frame(i: int, timed: bool) -> None:
            k = i % SEQUENCE
            marks = [time.perf_counter()]
            mesh.update(verts[k], normals=not stages)
            if stages:
                r.finish()
                marks.append(time.perf_counter())
                mesh.update_normals()
                r.finish()
                marks.append(time.perf_counter())
            r.begin(camera, (0.93, 0.93, 0.94, 1.0))
            r.draw_mesh(mesh)
            r.draw_points(landmarks[k], key="landmarks")
            if stages:
                r.finish()
                marks.append(time.perf_counter())
            r.end()
            if stages:
                r.finish()
                marks.append(time.perf_counter())
                r.read_rgba()
                marks.append(time.perf_counter())
                if timed:
                    for name, a, b in zip(times, marks[:-1], marks[1:]):
                        times[name] += b - a

        for i in range(WARMUP):
            frame(i, False)
        r.finish()
        start = time.perf_counter()
        for i in range(timed):
            frame(i, True)
        r.finish()
        total = time.perf_counter() - start
        info = r.info
    out = {"ms_per_frame": total / timed * 1000.0, "info": info}
    if stages:
        out["stages_ms"] = {k: round(v / timed * 1000.0, 3) for k, v in times.items()}
    return out


def run(args: argparse.Namespace) -> int:
    from runtime.render import GLUnavailableError

    if args.frames < 1:
        raise SystemExit("facecast bench render: --frames must be at least 1")
    template, verts = _sequence()
    load_before = os.getloadavg()[0]
    result: dict = {"mesh": {"vertices": template.n_vertices, "faces": int(len(template.faces))},
                    "frames_timed": args.frames, "samples": 4,
                    "ms_per_frame": {}, "ms_per_frame_numpy_normals": {}, "stages_ms": {}}
    try:
        for size in SIZES:
            main = _measure(template, verts, size, "auto", stages=False, timed=args.frames)
            result["ms_per_frame"][str(size)] = round(main["ms_per_frame"], 3)
            result["stages_ms"][str(size)] = _measure(template, verts, size, "auto", stages=True,
                                                      timed=args.frames)["stages_ms"]
            result["ms_per_frame_numpy_normals"][str(size)] = round(
                _measure(template, verts, size, "numpy", stages=False, timed=args.frames)["ms_per_frame"], 3)
    except GLUnavailableError as exc:
        print(f"facecast bench render: {exc}")
        return 2
    info = main["info"]
    result.update({"renderer": info["renderer"], "gl_version": info["version"], "normals": info["normals"],
                   "fps": {k: round(1000.0 / v, 1) for k, v in result["ms_per_frame"].items()},
                   "machine": {**machine(), "load_average_1min": [round(load_before, 2),
                                                                  round(os.getloadavg()[0], 2)]}})
    emit(result, args.json)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="renderer milliseconds per frame at 512 and 1024 pixels")
    p.add_argument("--json", help="also write the JSON here")
    p.add_argument("--frames", type=int, default=TIMED, help=f"frames timed per figure (default {TIMED})")
    p.set_defaults(func=run)
