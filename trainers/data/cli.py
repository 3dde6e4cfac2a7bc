"""``facecast data``: make, import and describe 4D data folders."""

from __future__ import annotations

import argparse
import json
import sys

from models.paths import data_dir


def _template(args: argparse.Namespace):
    from models.face import load_template, synthface_template

    if bool(args.template) != bool(args.landmarks):
        raise SystemExit("--template and --landmarks go together")
    if args.template:
        return load_template(args.template, args.landmarks)
    return synthface_template()


def cmd_synth(args: argparse.Namespace) -> int:
    from models.face import SynthFace
    from models.face.labels import COMA_LABELS
    from trainers.data.cache import DataError
    from trainers.data.synth import SynthConfig, generate

    labels = tuple(COMA_LABELS) if args.labels == "all" else tuple(s.strip() for s in args.labels.split(","))
    version = args.face_version or (2 if args.ict else 1)
    try:
        cfg = SynthConfig(identities=args.identities, labels=labels, fps=args.fps, seed=args.seed,
                          write_ply=not args.no_ply, face_version=version,
                          performances=args.performances, registration_noise_mm=args.registration_noise_mm,
                          noise_correlation_mm=args.noise_correlation_mm,
                          landmark_noise_mm=args.landmark_noise_mm)
        model = None                      # the face version's own model on its own template
        if args.ict:
            if args.template or args.landmarks:
                raise ValueError("--ict brings its own head; leave out --template and --landmarks")
            from models.face.ict import load_ict_facekit

            model = load_ict_facekit(args.ict)
        elif args.template or args.landmarks:
            template = _template(args)
            if version == 1:
                model = SynthFace(template)
            else:
                from models.face.model_v2 import SynthFaceV2

                model = SynthFaceV2(template)
        generate(cfg, args.out, model=model, show_progress=not args.quiet)
    except (ValueError, DataError, OSError) as exc:
        print(f"facecast data synth: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"facecast data synth: interrupted; {args.out} stays marked incomplete until a run into it "
              f"finishes", file=sys.stderr)
        return 130
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from trainers.data.cache import DataError
    from trainers.data.coma import import_coma

    try:
        template = _template(args)
        import_coma(args.dir, args.out or args.dir, template, fps=args.fps, show_progress=not args.quiet)
    except (ValueError, DataError, FileNotFoundError) as exc:
        print(f"facecast data import: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"facecast data import: interrupted; {args.out or args.dir} stays marked incomplete until an "
              f"import into it finishes", file=sys.stderr)
        return 130
    return 0


def cmd_tracker(args: argparse.Namespace) -> int:
    from runtime.render import GLUnavailableError
    from trainers.tracker.renders import TrackerRenderConfig, write_tracker_set

    out = args.out or str(data_dir() / "tracker" / args.split)
    try:
        write_tracker_set(out, TrackerRenderConfig(seed=args.seed, split=args.split), args.n,
                          show_progress=not args.quiet)
    except (ValueError, GLUnavailableError, OSError) as exc:
        print(f"facecast data tracker: {exc}", file=sys.stderr)
        return 2
    return 0


def describe(root) -> dict:
    from trainers.data.cache import FaceData

    data = FaceData.open(root)
    sizes = data.size_bytes()
    lengths = [q.length for q in data.sequences]
    per_take: dict[int, int] = {}
    for q in data.sequences:
        per_take[q.take] = per_take.get(q.take, 0) + 1
    generator = data.meta.get("generator") or {}
    return {
        "path": str(data.root),
        "source": data.meta["source"],
        "subjects": len(data.subjects),
        "labels": data.labels,
        "sequences": len(data.sequences),
        "frames": data.n_frames,
        "takes": {"max": max(per_take), "sequences_per_take": {str(k): per_take[k] for k in sorted(per_take)}},
        "face_version": generator.get("face_version", 1) if generator else None,
        "noise_mm": {k: generator[k] for k in ("registration_noise_mm", "landmark_noise_mm") if k in generator},
        "observed_landmarks": data.observed_landmarks is not None,
        "frames_per_sequence": {"min": min(lengths), "mean": round(sum(lengths) / len(lengths), 1),
                                "max": max(lengths)},
        "fps": data.fps,
        "vertices": data.template.n_vertices,
        "topology_id": data.template.topology_id,
        "bytes": sizes,
        "skipped_files": len(data.meta.get("skipped", [])),
    }


def cmd_info(args: argparse.Namespace) -> int:
    from trainers.data.cache import DataError
    from trainers.progress import human_bytes

    try:
        info = describe(args.dir)
    except DataError as exc:
        print(f"facecast data info: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    f = info["frames_per_sequence"]
    print(f"{info['path']}  ({info['source'].get('kind')})")
    print(f"  subjects   {info['subjects']}")
    print(f"  labels     {len(info['labels'])}: {', '.join(info['labels'])}")
    print(f"  sequences  {info['sequences']} ({f['min']}-{f['max']} frames, mean {f['mean']}) at {info['fps']:g} fps")
    takes = info["takes"]
    counts = ", ".join(f"take {k}: {n}" for k, n in takes["sequences_per_take"].items())
    print(f"  takes      up to {takes['max']} per subject and label ({counts} sequences)")
    print(f"  frames     {info['frames']}")
    print(f"  mesh       {info['vertices']} vertices, topology {info['topology_id']}")
    if info["face_version"] is not None:
        noise = ", ".join(f"{k.replace('_mm', '').replace('_', ' ')} {v:g} mm"
                          for k, v in info["noise_mm"].items() if v)
        print(f"  generator  SynthFace v{info['face_version']}" + (f", {noise}" if noise else ", no noise"))
    if info["observed_landmarks"]:
        print("  landmarks  observed (noisy) landmarks in cache/landmarks.npy")
    print(f"  size       cache {human_bytes(info['bytes']['cache'])}, PLY {human_bytes(info['bytes']['ply'])}")
    if info["skipped_files"]:
        print(f"  skipped    {info['skipped_files']} file(s) at import (listed in meta.json)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="make, import and describe 4D data folders")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    s = dsub.add_parser("synth", help="generate SynthFace 4D sequences (CoMA layout + cache)")
    s.add_argument("--identities", type=int, default=12, help="subjects (default 12)")
    s.add_argument("--labels", default="all", help="comma-separated CoMA labels, or 'all' (default)")
    s.add_argument("--fps", type=float, default=60.0, help="frame rate (default 60)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--out", default=str(data_dir() / "synth"),
                   help="output folder (default %(default)s); what an interrupted run left there is "
                        "removed first, anything else is refused")
    s.add_argument("--no-ply", action="store_true", help="write only the cache, not the PLY tree")
    s.add_argument("--ict", metavar="DIR",
                   help="generate on ICT-FaceKit's scanned head (its FaceXModel folder, as downloaded) "
                        "instead of SynthFace, with the v2 dynamics unless --face-version 1")
    s.add_argument("--face-version", type=int, choices=(1, 2), default=None,
                   help="1: SynthFace v1, one noise-free take (default); 2: SynthFace v2 with richer "
                        "dynamics (per-unit timing, overshoot, micro-motion, blinks)")
    s.add_argument("--performances", type=int, default=None, metavar="N",
                   help="takes per subject and label (default: 1 for v1, 3 for v2); take N >= 2 "
                        "goes to <subject>/<label>.N/")
    s.add_argument("--registration-noise-mm", type=float, default=0.0, metavar="MM",
                   help="RMS of a smooth random displacement of the vertices per frame, as a scan "
                        "registration leaves (typical 0.1-0.3; default 0: none)")
    s.add_argument("--noise-correlation-mm", type=float, default=7.5, metavar="MM",   # synth.NOISE_CORRELATION_MM
                   help="correlation length of that displacement over the surface (at least 5; "
                        "default 7.5)")
    s.add_argument("--landmark-noise-mm", type=float, default=0.0, metavar="MM",
                   help="RMS of detector noise on observed landmarks, written to cache/landmarks.npy "
                        "(default 0: no observed landmarks)")
    s.add_argument("--template", help="generate on this template mesh (OBJ/PLY) instead of SynthFace's")
    s.add_argument("--landmarks", help="its 68 landmarks (JSON: vertex_ids, or face_idx + bary)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_synth)

    i = dsub.add_parser("import", help="read a CoMA-layout folder into a data folder's cache")
    i.add_argument("dir", help="folder with <subject>/<label>/<label>.<frame>.ply")
    i.add_argument("--out", help="data folder to write (default: DIR itself)")
    i.add_argument("--fps", type=float, default=60.0, help="capture frame rate (default 60, as CoMA)")
    i.add_argument("--template", help="template mesh of the data's topology (default: SynthFace)")
    i.add_argument("--landmarks", help="its 68 landmarks (JSON)")
    i.add_argument("--quiet", action="store_true", help="no progress bar")
    i.set_defaults(func=cmd_import)

    t = dsub.add_parser("tracker", help="render SynthFace images with ground truth for the face tracker")
    t.add_argument("--out", help=f"output folder (default {data_dir() / 'tracker'}/SPLIT)")
    t.add_argument("--n", type=int, default=1200, help="images (default 1200)")
    t.add_argument("--split", choices=("train", "test"), default="train",
                   help="identity population (default train; test never shares a face with it)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_tracker)

    n = dsub.add_parser("info", help="counts and sizes of a data folder")
    n.add_argument("dir")
    n.add_argument("--json", action="store_true", help="print JSON")
    n.set_defaults(func=cmd_info)
