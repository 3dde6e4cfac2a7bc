"""``facecast bench face``: SynthFace evaluation and data generation speed,
and SynthFace's proportions against real faces where they are available.

Figures:
- ``model_build_s``: template + identity/expression bases, from scratch.
- ``meshes_per_s``: a batch of 1,000 meshes, ``distinct`` (1,000 identities,
  random expressions) and ``one_identity`` (one identity, 1,000 frames).
- ``synth_meshes_per_s``: ``facecast data synth`` end to end (2 subjects x 2
  labels), with and without writing the PLY tree.
- ``calibration``: with the CoMA/FLAME reference head (``--reference``), the
  mean distance of SynthFace's 68 landmarks to the reference's after a
  similarity alignment (mm), and the mean surface distance of the mask to
  the reference head after that alignment (mm); with dlib installed, the
  mean 2D landmark error against dlib on skimage's ``astronaut`` photograph
  as a share of the outer-eye-corner distance.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from models.constants import MM_PER_M
from trainers.bench import best_of, emit, machine

DEFAULT_REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
BATCH = 1000


def astronaut_error(template_landmarks: np.ndarray) -> dict:
    """dlib's 68 points on ``astronaut`` vs the template's frontal landmarks.

    Returns the mean and max error after a 2D similarity alignment, as a
    share of the template's outer-eye-corner distance.
    """
    from skimage import data as skdata

    from models.geometry.align import aligned_distances
    from models.tracking.dlib68 import Dlib68

    image = skdata.astronaut()
    tracker = Dlib68()
    faces = tracker.detect(image)
    if not faces:
        raise RuntimeError("dlib found no face in skimage's astronaut image")
    pts = tracker.landmarks(image, faces[0].box)
    pts[:, 1] *= -1.0                                     # image y down -> model y up
    ours = template_landmarks[:, :2].astype(np.float64)
    err = aligned_distances(pts, ours)
    eye = np.linalg.norm(ours[36] - ours[45])
    return {"mean_share": float(err.mean() / eye), "max_share": float(err.max() / eye),
            "detector_score": faces[0].score}


def reference_calibration(reference: Path) -> dict:
    """SynthFace against the CoMA/FLAME reference head (mm)."""
    from models.face import load_template, synthface_template
    from models.geometry.align import fit_similarity
    from models.geometry.proximity import closest_points

    ref = load_template(reference / "coma_template.obj", reference / "flame68_landmark_embedding.json")
    ours = synthface_template()
    a, b = ours.landmark_points().astype(np.float64), ref.landmark_points().astype(np.float64)
    sim = fit_similarity(a, b)
    lm_err = np.linalg.norm(sim.apply(a) - b, axis=1)
    moved = sim.apply(ours.vertices.astype(np.float64))
    _, dist = closest_points(ref.vertices, ref.faces, moved)
    return {"landmark_mean_mm": float(lm_err.mean() * MM_PER_M), "landmark_max_mm": float(lm_err.max() * MM_PER_M),
            "surface_mean_mm": float(dist.mean() * MM_PER_M), "surface_median_mm": float(np.median(dist) * MM_PER_M),
            "alignment_scale": sim.scale}


def run(args: argparse.Namespace) -> int:
    from models.face import (
        N_EXPRESSION,
        FaceTemplate,
        LandmarkEmbedding,
        SynthFace,
        sample_identities,
        synthface_template,
    )
    from models.face.template import build_template
    from trainers.data.synth import SynthConfig, generate

    t = time.perf_counter()
    mesh = build_template()
    template = FaceTemplate("synthface", mesh.vertices, mesh.faces,
                            LandmarkEmbedding.from_vertices(mesh.landmark_vertices, mesh.faces))
    model = SynthFace(template)
    build_s = time.perf_counter() - t
    assert template.topology_id == synthface_template().topology_id

    rng = np.random.default_rng(0)
    ids = sample_identities(BATCH, rng)
    active = rng.random((BATCH, N_EXPRESSION)) < 0.2
    weights = rng.uniform(0.0, 1.0, (BATCH, N_EXPRESSION)).astype(np.float32) * active
    distinct = best_of(lambda: model.vertices(ids, weights))
    one = best_of(lambda: model.vertices(np.repeat(ids[:1], BATCH, 0), weights))

    synth = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ply in (True, False):
            cfg = SynthConfig(identities=2, labels=("mouth_open", "high_smile"), write_ply=ply)
            start = time.perf_counter()
            meta = generate(cfg, Path(tmp) / f"ply{int(ply)}", model=model, show_progress=False, report=False)
            frames = json.loads(meta.read_text())["n_frames"]
            synth["with_ply" if ply else "cache_only"] = frames / (time.perf_counter() - start)

    result = {
        "template": {"vertices": template.n_vertices, "faces": len(template.faces),
                     "topology_id": template.topology_id},
        "model_build_s": round(build_s, 3),
        "batch": BATCH,
        "meshes_per_s": {"distinct": round(BATCH / distinct), "one_identity": round(BATCH / one)},
        "ms_per_batch": {"distinct": round(distinct * 1000, 1), "one_identity": round(one * 1000, 1)},
        "synth_meshes_per_s": {k: round(v) for k, v in synth.items()},
        "calibration": {},
        "machine": machine(),
    }
    reference = Path(args.reference)
    if (reference / "coma_template.obj").is_file():
        result["calibration"]["flame_reference"] = reference_calibration(reference)
    else:
        result["calibration"]["flame_reference"] = f"not measured: {reference} has no coma_template.obj"
    try:
        result["calibration"]["astronaut_dlib"] = astronaut_error(template.landmark_points())
    except Exception as exc:  # dlib is an optional extra; say why it was not measured
        result["calibration"]["astronaut_dlib"] = f"not measured: {exc}"
    emit(result, args.json)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("face", help="SynthFace evaluation speed and calibration")
    p.add_argument("--json", help="also write the JSON here")
    p.add_argument("--reference", default=str(DEFAULT_REFERENCE),
                   help="folder with the CoMA/FLAME reference head (default %(default)s)")
    p.set_defaults(func=run)
