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
- ``realism``: ``trainers.face.realism`` for SynthFace v1 (``"v1"``, with
  the v1 generator), v2 (``"v2"``) and ICT-FaceKit (``"ict"``, all its
  identities, the v2 generator) when its folder is there (``--ict``, default
  the reference folder's ``ict/``), on ``--subjects`` population members.
  The shape figures are against ICT's shapes, through one correspondence of
  SynthFace's template (v1 and v2 share it) to ICT's head. ICT is the
  reference itself, so its ``shape_amplitude_ratio`` and ``shape_cosine``
  are 1.0 per shape by definition, not a measurement. A cosine with a shape
  that moves nothing (v1's ``eyeLook*``) is undefined: null in the JSON.
  Without ICT, ``"ict"`` and the shape figures of v1 and v2 are a string
  saying why. ``realism_s`` times each stage. A side-by-side table of these
  figures goes to stderr with the summary line (stdout stays one JSON object).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from models.constants import MM_PER_M
from trainers.bench import best_of, emit, machine
from trainers.progress import progress

DEFAULT_REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
BATCH = 1000
#: the SynthFace versions measured for realism: JSON key -> face model version (also its generator's)
SYNTHFACE_VERSIONS = {"v1": 1, "v2": 2}
#: ICT has no generator of its own: it performs with the v2 dynamics
ICT_FACE_VERSION = 2
#: the issue's bounds on a shape against ICT's: amplitude ratio within, cosine at least
AMPLITUDE_RATIO_BOUNDS = (0.8, 1.25)
COSINE_BOUND = 0.85


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


def load_ict_model(folder: Path):
    """ICT-FaceKit with all its identities (the identity-transfer figure needs
    them): the reference arrays (``ict_expressions.npz``) or a user's
    ``FaceXModel`` folder."""
    from models.face.ict import ict_from_reference, load_ict_facekit

    if (folder / "ict_expressions.npz").is_file():
        return ict_from_reference(folder)
    return load_ict_facekit(folder)


def realism_figures(ict_folder: Path, cfg, show_progress: bool = True) -> tuple[dict, dict]:
    """``trainers.face.realism`` for v1, v2 and (when ``ict_folder`` holds it)
    ICT-FaceKit. Returns ``(figures, seconds)``: ``figures`` maps ``"v1"``,
    ``"v2"``, ``"ict"`` to ``realism()``'s dict (``"ict"`` to a string when
    ICT was not found; then the shape figures of v1 and v2 are that string
    too); ``seconds`` times each stage. ``cfg`` is a ``RealismConfig``."""
    from models.face import face_model, synthface_template
    from trainers.face.calibrate import reference_fields
    from trainers.face.correspond import correspond
    from trainers.face.realism import realism

    seconds: dict[str, float] = {}
    why = None
    t = time.perf_counter()
    try:
        ict = load_ict_model(ict_folder)
    except (OSError, ValueError) as exc:
        ict, why = None, f"not measured: no ICT-FaceKit ({exc})"
    seconds["load_ict"] = round(time.perf_counter() - t, 2)
    reference = None
    if ict is not None:
        t = time.perf_counter()
        names, fields = reference_fields(ict)
        reference = (fields, correspond(synthface_template(), ict.template))   # v1 and v2 share the template
        seconds["correspondence"] = round(time.perf_counter() - t, 2)

    figures: dict = {}
    plan = list(SYNTHFACE_VERSIONS.items()) + ([("ict", ICT_FACE_VERSION)] if ict is not None else [])
    for key, version in progress(plan, desc="bench face realism", unit="model", enabled=show_progress):
        t = time.perf_counter()
        if key == "ict":                       # the reference against itself: 1 by definition
            out = {"shape_amplitude_ratio": {n: 1.0 for n in names}, "shape_cosine": {n: 1.0 for n in names},
                   **realism(ict, version, None, cfg)}
        elif reference is None:
            out = {"shape_amplitude_ratio": why, "shape_cosine": why,
                   **realism(face_model(version), version, None, cfg)}
        else:
            out = realism(face_model(version), version, reference, cfg)
        figures[key] = _undefined_as_null(out)
        seconds[key] = round(time.perf_counter() - t, 2)
    if ict is None:
        figures["ict"] = why
    return figures, seconds


def _undefined_as_null(figures: dict) -> dict:
    """``figures`` with NaN (a cosine of a shape that moves nothing) as ``None``:
    JSON's null, where ``json.dumps`` would write a non-standard ``NaN``."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return None if isinstance(v, float) and not np.isfinite(v) else v
    return clean(figures)


def _spread(values: dict[str, float | None]) -> str:
    v = np.array([x for x in values.values() if x is not None])
    undefined = len(values) - len(v)
    if not len(v):
        return "undefined"
    return (f"{v.min():.2f} / {np.median(v):.2f} / {v.max():.2f}"
            + (f" ({undefined} undefined)" if undefined else ""))


def _within(values: dict[str, float | None], ok) -> str:
    return f"{sum(x is not None and bool(ok(x)) for x in values.values())} of {len(values)}"


def _static(shares: dict[str, float]) -> str:
    label = max(shares, key=shares.get)
    return f"{shares[label]:.1%} ({label})"


#: the rows of ``realism_table``: name, the ``realism()`` key, how its value reads
_ROWS = (
    ("shape amplitude ratio, min / median / max", "shape_amplitude_ratio", _spread),
    (f"  shapes with ratio in [{AMPLITUDE_RATIO_BOUNDS[0]}, {AMPLITUDE_RATIO_BOUNDS[1]}]", "shape_amplitude_ratio",
     lambda v: _within(v, lambda x: AMPLITUDE_RATIO_BOUNDS[0] <= x <= AMPLITUDE_RATIO_BOUNDS[1])),
    ("shape cosine, min / median / max", "shape_cosine", _spread),
    (f"  shapes with cosine >= {COSINE_BOUND}", "shape_cosine", lambda v: _within(v, lambda x: x >= COSINE_BOUND)),
    ("blink: upper lid to lower lid (mm)", "blink_lid_gap_mm", lambda v: f"{v:.2f}"),
    ("jawOpen: chin travel (mm)", "jaw_chin_travel_mm", lambda v: f"{v:.1f}"),
    ("apex static share, max over labels", "apex_static_share", _static),
    ("still through a whole performance, worst", "sequence_static_share", lambda v: f"{v:.1%}"),
    ("identity transfer error", "identity_transfer_error", lambda v: f"{v:.3f}"),
    ("linear map residual, mm (share)", "linear_map_residual", lambda v: f"{v['mm']:.3f} ({v['share']:.1%})"),
    ("label apexes through themselves (mean pairs)", "apex_self_intersections",
     lambda v: f"{v['share']:.0%} ({v['mean_pairs']:.1f})"),
    ("components for 99 % variance", "components_99", str),
    ("label separability", "label_separability", lambda v: f"{v:.1%}"),
)
#: the table's columns: ``realism_figures`` key -> heading
_COLUMNS = {"v1": "SynthFace v1", "v2": "SynthFace v2", "ict": "ICT-FaceKit"}


def realism_table(figures: dict) -> str:
    """``realism_figures``' figures as a text table: one row per figure, one
    column per model (v1, v2, ICT); per-shape figures as min / median / max
    and how many shapes are within the issue's bounds, ICT's as the
    reference; ``-`` where a model or figure was not measured."""
    def cell(key: str, row_key: str, fmt) -> str:
        f = figures.get(key)
        if not isinstance(f, dict) or not isinstance(f.get(row_key), (dict, int, float)):
            return "-"
        if key == "ict" and row_key.startswith("shape_"):
            return "1 (reference)"
        return fmt(f[row_key])

    keys = list(_COLUMNS)
    cells = [["realism"] + [_COLUMNS[k] for k in keys]]
    cells += [[name] + [cell(k, row_key, fmt) for k in keys] for name, row_key, fmt in _ROWS]
    widths = [max(len(r[i]) for r in cells) for i in range(len(keys) + 1)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "-" * len(lines[0]))
    if isinstance(figures.get("ict"), str):
        lines.append(f"ICT-FaceKit: {figures['ict']}")
    return "\n".join(lines)


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
    from trainers.face.realism import RealismConfig

    cfg = RealismConfig() if args.subjects is None else RealismConfig(subjects=args.subjects)
    start = time.perf_counter()
    result["realism"], result["realism_s"] = realism_figures(Path(args.ict) if args.ict else reference / "ict", cfg,
                                                             show_progress=not args.quiet)
    result["realism_s"]["total"] = round(time.perf_counter() - start, 2)
    result["realism_config"] = asdict(cfg)
    emit(result, args.json)
    print(realism_table(result["realism"]), file=sys.stderr)
    print(f"bench face: realism of {', '.join(k for k, v in result['realism'].items() if isinstance(v, dict))} "
          f"on {cfg.subjects} subjects in {result['realism_s']['total']:.0f} s", file=sys.stderr)
    return 0


def _subjects(text: str) -> int:
    """``--subjects``: enough for ``realism``'s held-out subjects plus one to fit and one to choose the ridge."""
    from trainers.face.realism import RealismConfig

    least = RealismConfig().test_subjects + 2
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--subjects takes a whole number, got {text!r}") from None
    if n < least:
        raise argparse.ArgumentTypeError(f"--subjects must be at least {least}, got {n}")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("face", help="SynthFace evaluation speed, calibration and realism (v1, v2, ICT-FaceKit)")
    p.add_argument("--json", help="also write the JSON here")
    p.add_argument("--reference", default=str(DEFAULT_REFERENCE),
                   help="folder with the CoMA/FLAME reference head (default %(default)s)")
    p.add_argument("--ict", help="ICT-FaceKit for the realism figures: a FaceXModel folder, or the reference "
                                 "arrays' folder (default: the --reference folder's ict/)")
    p.add_argument("--subjects", type=_subjects,
                   help="population members performing every label in the realism figures (default: "
                        "RealismConfig's, 6; at least 4). Fewer is faster and rougher")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
