"""``facecast train face``: fit SynthFace v2's expression fields to a scanned face model.

The reference is ICT-FaceKit (a light-stage head with 53 ARKit-named
expression shapes, MIT). Its shapes are transferred onto SynthFace's mask
through a landmark-driven correspondence (``trainers.face.correspond``) and
SynthFace v2 is fitted to reproduce them at weight 1 on its mean face:

1. the jaw: the rotation angle about SynthFace's jaw joints and the
   condylar glide that best explain ICT's ``jawOpen`` (a scan over the
   angle, the glide by least squares at each);
2. each shape's *residual*: ICT's field less what SynthFace v2's mechanisms
   already do at weight 1 (the jaw's rotation and glide undone per vertex
   for ``jawOpen`` and for ``mouthClose`` on the open jaw; the lid closure
   for the blinks);
3. the residuals as Gaussian-RBF fields on four sheets (``models.face.calibration``),
   one weighted least-squares solve for all of them, with a small ridge;
   a smile's cheek bulge and a cheek puff split off as saturating entries.

The fit writes ``models/face/synthface_v2.npz`` (coefficients and figures,
never ICT's arrays) and reports, per shape, the amplitude ratio and cosine
against ICT that ``facecast bench face`` and the tests measure again.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.linalg as sl
from scipy.spatial import cKDTree

from models.face import synthface_template
from models.face.anchors import Anchors
from models.face.calibration import CALIBRATION_FILE, Calibration, Entry
from models.face.expression import ARKIT_NAMES, INDEX, JAW_HINGE
from models.face.ict import ICTFaceKit, ict_from_reference, load_ict_facekit
from models.face.model_v2 import ROLLS, SynthFaceV2
from models.face.topology import FaceTemplate
from models.geometry.align import fit_similarity
from models.geometry.normals import vertex_normals
from models.geometry.smooth import bump
from trainers.face.compare import BASE_SHAPE, compare_shapes, shape_fields, vertex_areas
from trainers.face.correspond import WARP_LANDMARKS, Correspondence, correspond
from trainers.progress import summary

#: the shared reference folder beside a developer's checkout
DEFAULT_ICT = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "ict"
#: shapes whose cheek part saturates (centre offset from the mouth corner and radii, normalised)
SMILE_CHEEK = {"mouthSmileLeft": 1, "mouthSmileRight": -1}
CHEEK_OFFSET = (0.13, 0.2)
CHEEK_RADII = (0.22, 0.2)
#: shapes that saturate as a whole (a balloon that stiffens as it stretches)
SATURATING = ("cheekPuff",)
#: the reference's lower teeth: parts moved at least this far (m, mean) by jawOpen, rigidly to this (m)
MANDIBLE_MOTION = 0.005
RIGID_TOLERANCE = 0.0005
#: a lip's roll is fitted on its vertices this close (normalised) to its margin
CURL_FIT_DEPTH = 0.08
#: height of the jaw joints (normalised face y): the condyles sit about on the Frankfort
#: horizontal, level with the lower orbital rim, ~13 mm below the eye centres on a 90 mm face
JOINT_HEIGHT = -0.15


@dataclass(frozen=True)
class FaceFitConfig:
    """How the fields are fitted."""

    spacing: float = 0.06              #: distance between RBF centres (normalised, ~5 mm)
    width: float = 1.0                 #: RBF width sigma, in spacings
    ridge: float = 1e-4                #: Tikhonov weight, relative to the mean diagonal
    keep: float = 1e-3                 #: coefficients below this share of their entry's largest are dropped


def load_ict(path: str | Path) -> ICTFaceKit:
    """ICT-FaceKit from a ``FaceXModel`` folder (as downloaded) or from the
    reference arrays (``ict_expressions.npz``) of a developer's ``../shared``."""
    path = Path(path)
    if (path / "ict_expressions.npz").is_file():
        return ict_from_reference(path, n_identities=0)
    return load_ict_facekit(path)


def reference_fields(ict: ICTFaceKit) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """The ARKit shapes ICT has and their normalised fields on ICT's mean face."""
    names = tuple(n for n in ARKIT_NAMES if n not in ict.zero_shapes)
    return names, shape_fields(ict, names)


def poisson_centres(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points ``[C, 3]`` of ``points`` at least ``spacing`` apart (greedy, in a
    fixed order from the top of the face down)."""
    order = np.lexsort((points[:, 0], -points[:, 1]))
    tree = cKDTree(points)
    blocked = np.zeros(len(points), dtype=bool)
    taken = []
    for i in order:
        if blocked[i]:
            continue
        taken.append(i)
        blocked[tree.query_ball_point(points[i], spacing)] = True
    return points[np.array(taken)]


def mandible(ict: ICTFaceKit) -> np.ndarray:
    """Vertex ids of the reference's lower teeth: the parts (connected
    components off the skin) that ``jawOpen`` moves rigidly and far."""
    t = ict.template
    comp, skin = t.components, t.skin
    v = t.vertices.astype(np.float64)
    d = ict.expression_basis.reshape(len(ARKIT_NAMES), -1, 3)[INDEX["jawOpen"]].astype(np.float64)
    out = []
    for c in np.unique(comp[~skin]):
        ids = np.flatnonzero(comp == c)
        if len(ids) < 4 or np.linalg.norm(d[ids], axis=1).mean() < MANDIBLE_MOTION:
            continue
        sim = fit_similarity(v[ids], v[ids] + d[ids])
        if np.linalg.norm(sim.apply(v[ids]) - v[ids] - d[ids], axis=1).max() < RIGID_TOLERANCE:
            out.append(ids)
    if not out:
        raise ValueError(f"{ict.name}: no part moves rigidly with jawOpen (lower teeth), so the jaw "
                         f"cannot be calibrated")
    return np.concatenate(out)


def jaw_from_reference(ict: ICTFaceKit, template: FaceTemplate) -> tuple[np.ndarray, float, np.ndarray]:
    """SynthFace v2's jaw from the reference's lower teeth at ``jawOpen = 1``.

    The teeth are carried into SynthFace's normalised frame by the similarity
    that best aligns the two faces' landmarks (a turn survives it unchanged)
    and their rigid motion is fitted: a turn by ``angle`` about a centre.
    SynthFace's joints sit where anatomy puts the condyles (``JOINT_HEIGHT``,
    at the depth of that centre), and the glide is what the joints must
    travel for the turn about them to be the reference's motion at weight 1.

    Returns ``(hinge_xi [2, 3], angle, glide_xi [3])``.
    """
    ids = mandible(ict)
    src, dst = ict.template, template
    use = list(WARP_LANDMARKS)
    a = src.frame.to_local(src.landmark_points().astype(np.float64))[use]
    b = dst.frame.to_local(dst.landmark_points().astype(np.float64))[use]
    carry = fit_similarity(a, b)
    v = ict.template.vertices.astype(np.float64)[ids]
    d = ict.expression_basis.reshape(len(ARKIT_NAMES), -1, 3)[INDEX["jawOpen"]].astype(np.float64)[ids]
    p0 = carry.apply(src.frame.to_local(v))
    p1 = carry.apply(src.frame.to_local(v + d))
    rigid = fit_similarity(p0, p1)
    r = rigid.rotation
    angle = float(np.arctan2(r[2, 1], r[1, 1]))          # about the face's x axis (opening: chin down, back)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.linalg.solve(np.eye(2) - rigid.scale * r[1:, 1:], rigid.translation[1:])   # fixed point (y, z)
    joint = np.array([JOINT_HEIGHT, centre[1]])
    glide = (np.eye(2) - rot) @ (centre - joint)                 # (y, z): R (p - H) + H + g = R (p - c) + c
    hinge = np.array([[-JAW_HINGE[1, 0], joint[0], joint[1]], [JAW_HINGE[1, 0], joint[0], joint[1]]])
    return hinge, angle, np.array([0.0, glide[0], glide[1]])


def skin_follow(template: FaceTemplate, hinge: np.ndarray, angle: float, glide: np.ndarray,
                target: np.ndarray) -> np.ndarray:
    """How much of the mandible's motion each vertex makes in the reference's
    ``jawOpen`` (``target [N, 3]``, normalised): the projection of the target
    on the rigid motion there, in [0, 1] ``[N]``."""
    from models.geometry.rotation import rotate_about_axis

    frame = template.frame
    p = template.vertices.astype(np.float64)
    hinge_w = frame.to_world(hinge[None])[0]
    turned = rotate_about_axis(p[None], hinge_w[None], np.full((1, len(p)), angle))[0]
    rigid = turned + frame.rotation @ glide * frame.scale - p
    t = frame.vectors_to_world(target)
    share = np.einsum("nc,nc->n", t, rigid) / np.maximum(np.einsum("nc,nc->n", rigid, rigid), 1e-30)
    return np.clip(share, 0.0, 1.0)


def curl_from_reference(bare: SynthFaceV2, targets: dict[str, np.ndarray]) -> np.ndarray:
    """Each lip's roll as a turn about an axis at its root, fitted to the
    reference's roll shapes (normalised): ``[2, 3]`` rows (upper, lower) of
    (axis height, axis depth from the margin, angle at weight 1)."""
    from scipy.optimize import least_squares

    lips = bare.lips
    frame = bare.template.frame
    xi = frame.to_local(bare.template.vertices.astype(np.float64))
    out = np.zeros((2, 3))
    for k, (name, upper) in enumerate((("mouthRollUpper", True), ("mouthRollLower", False))):
        sel = (lips.upper == upper) & (lips.depth <= CURL_FIT_DEPTH) & (lips.corner_fade > 0.99)
        ids = lips.vertices[sel]
        at = lips.at_upper if upper else lips.at_lower
        margin = lips.slit.at(xi[None], tuple(a[sel] for a in at), upper)[0][:, 1:]
        p = xi[ids, 1:]
        q = p + targets[name][ids, 1:]

        def radial(c):
            centre = margin + c
            return np.linalg.norm(q - centre, axis=1) - np.linalg.norm(p - centre, axis=1)

        c = least_squares(radial, np.array([0.1 if upper else -0.1, -0.05])).x
        a, b = p - margin - c, q - margin - c
        angle = np.arctan2(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0], (a * b).sum(axis=1))
        out[k] = (c[0], c[1], float(np.median(angle)))
    return out


@contextmanager
def without_contact(model: SynthFaceV2):
    """``model`` with its lips' contact off: rest-space fields are fitted to
    what the shape alone does; the contact stays a constraint of the frame."""
    lips = model.lips
    if lips is None:
        yield model
        return
    lips.contact = lambda *args, **kwargs: None
    try:
        yield model
    finally:
        del lips.contact


def _residuals(bare: SynthFaceV2, targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What each shape's field must add to the mechanisms (normalised, rest space)."""
    t = bare.template
    frame = t.frame
    p = t.vertices.astype(np.float64)
    out = {}
    jaw = bare.jaw
    ids = jaw.vertices
    rot = jaw.linear_part(bare.hinge.astype(np.float64))                   # [M, 3, 3] at jawOpen = 1
    pivot = 0.5 * (bare.hinge[0] + bare.hinge[1]).astype(np.float64)
    glide = frame.rotation @ jaw.glide_xi * frame.scale
    alpha = jaw.weight[ids].astype(np.float64)
    for name, target in targets.items():
        tw = frame.vectors_to_world(target)
        if name == "jawOpen":
            r = tw.copy()
            q = p[ids] + tw[ids] - alpha[:, None] * glide - pivot
            r[ids] = np.einsum("mji,mj->mi", rot, q) + pivot - p[ids]
        elif BASE_SHAPE.get(name) == "jawOpen":
            r = tw.copy()
            r[ids] = np.einsum("mji,mj->mi", rot, tw[ids])
        elif name.startswith("eyeBlink") or name in ROLLS:
            w = np.zeros((1, len(ARKIT_NAMES)), np.float32)
            w[0, INDEX[name]] = 1.0
            with without_contact(bare):
                moved = bare.vertices(np.zeros((1, bare.n_identity), np.float32), w)[0].astype(np.float64)
            r = tw - (moved - p)
        else:
            r = tw
        out[name] = (r @ frame.rotation) / frame.scale
    return out


def _entries(template: FaceTemplate, residuals: dict[str, np.ndarray], anchors: Anchors
             ) -> tuple[list[Entry], list[np.ndarray]]:
    """Split the residuals into entries (linear, and the saturating cheek parts)."""
    xi = template.frame.to_local(template.vertices.astype(np.float64))
    entries, fields = [], []
    for name, r in residuals.items():
        if name in SATURATING:
            entries.append(Entry(name, "saturating"))
            fields.append(r)
            continue
        if name in SMILE_CHEEK:
            side = SMILE_CHEEK[name]
            corner = anchors.point(54 if side > 0 else 48)
            cheek = bump(((xi[:, 0] - corner[0] - side * CHEEK_OFFSET[0]) / CHEEK_RADII[0]) ** 2
                         + ((xi[:, 1] - corner[1] - CHEEK_OFFSET[1]) / CHEEK_RADII[1]) ** 2)
            entries += [Entry(name, "linear"), Entry(name, "saturating")]
            fields += [r * (1.0 - cheek)[:, None], r * cheek[:, None]]
            continue
        entries.append(Entry(name, "linear"))
        fields.append(r)
    return entries, fields


def calibrate(ict: ICTFaceKit, template: FaceTemplate | None = None, cfg: FaceFitConfig = FaceFitConfig(),
              log=print) -> tuple[Calibration, dict]:
    """Fit SynthFace v2 on ``template`` (SynthFace's mask by default) to ``ict``.

    Returns the calibration and a report (per-shape agreement, jaw parameters).
    """
    template = template or synthface_template()
    start = time.perf_counter()
    corr = correspond(template, ict.template)
    names, ref = reference_fields(ict)
    targets = {n: corr.sample(ref[n]) for n in names}
    log(f"correspondence: {corr.shared.mean():.1%} of the mask shared, median distance "
        f"{np.median(corr.distance) * template.frame.scale * 1000:.2f} mm ({time.perf_counter() - start:.1f} s)")
    frame = template.frame
    v64 = template.vertices.astype(np.float64)
    xi = frame.to_local(v64)
    normals = vertex_normals(v64, template.faces) @ frame.rotation
    anchors = Anchors(frame.to_local(template.landmark_points(v64)))
    centres = poisson_centres(xi, cfg.spacing)
    sigma = cfg.width * cfg.spacing
    hinge, angle, glide = jaw_from_reference(ict, template)
    empty = Calibration.empty(centres, sigma, hinge)
    area = vertex_areas(template.vertices, template.faces)
    area /= area.mean()
    log(f"jaw: {np.degrees(angle):.1f} degrees about joints at {hinge[1].round(3).tolist()}, glide "
        f"{glide.round(4).tolist()} (normalised) at jawOpen = 1")
    a = empty.basis(xi, normals, anchors)                                   # [N, 4C] sparse
    aw = a.multiply(area[:, None]).tocsr()
    gram = (a.T @ aw).toarray()
    gram += cfg.ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    factor = sl.cho_factor(gram)

    follow = skin_follow(template, hinge, angle, glide, targets["jawOpen"])
    jaw_coef = sl.cho_solve(factor, aw.T @ follow).reshape(4, len(centres))
    mechanisms = dict(centres=centres, sigma=sigma, entries=(), coef=empty.coef, jaw_hinge=hinge, jaw_angle=angle,
                      jaw_glide=glide, jaw_coef=jaw_coef)
    curl = curl_from_reference(SynthFaceV2(template, Calibration(**mechanisms)), targets)
    log("lip roll: " + ", ".join(f"{lip} {np.degrees(c[2]):.0f} degrees about an axis {c[0]:+.3f} up, "
                                 f"{c[1]:+.3f} forward of its margin" for lip, c in zip(("upper", "lower"), curl)))
    bare = SynthFaceV2(template, Calibration(**mechanisms, lip_curl=curl))
    residuals = _residuals(bare, targets)

    def fit(residuals: dict[str, np.ndarray]) -> Calibration:
        entries, fields = _entries(template, residuals, anchors)
        rhs = np.stack([aw.T @ f for f in fields])                          # [E, 4C, 3]
        coef = np.stack([sl.cho_solve(factor, r) for r in rhs])
        return Calibration(centres=centres, sigma=sigma, entries=tuple(entries),
                           coef=coef.reshape(len(entries), 4, len(centres), 3), jaw_hinge=hinge, jaw_angle=angle,
                           jaw_glide=glide, jaw_coef=jaw_coef, lip_curl=curl)

    cal = fit(residuals)
    # what the stored (sparse) calibration does, measured as the bench measures it
    sparse = _sparsified(cal, cfg.keep)
    model = SynthFaceV2(template, sparse)
    figures = compare_shapes(model, ref, corr, names)
    report = {
        "reference": ict.name,
        "shapes": {n: asdict(f) for n, f in figures.items()},
        "min_cosine": min(f.cosine for f in figures.values()),
        "amplitude_ratio_range": [min(f.amplitude_ratio for f in figures.values()),
                                  max(f.amplitude_ratio for f in figures.values())],
        "jaw_angle_deg": float(np.degrees(angle)),
        "jaw_hinge": hinge.round(4).tolist(),
        "jaw_glide_mm": (frame.rotation @ glide * frame.scale * 1000).round(2).tolist(),
        "shared_share": float(corr.shared.mean()),
        "centres": len(centres),
        "config": asdict(cfg),
        "seconds": round(time.perf_counter() - start, 1),
    }
    meta = {"source": "fitted to ICT-FaceKit (USC ICT Vision and Graphics Lab, MIT licence) by "
                      "'facecast train face'", "fit": report}
    return Calibration(**{**sparse.__dict__, "meta": meta}), report


def _sparsified(cal: Calibration, keep: float) -> Calibration:
    """The calibration as ``save(keep=...)`` stores it."""
    mag = np.linalg.norm(cal.coef, axis=-1)
    limit = keep * mag.reshape(len(cal.entries), -1).max(axis=1)[:, None, None]
    coef = np.where((mag > limit)[..., None], cal.coef, 0.0).astype(np.float32).astype(np.float64)
    return Calibration(centres=cal.centres.astype(np.float32).astype(np.float64), sigma=cal.sigma,
                       entries=cal.entries, coef=coef, jaw_hinge=cal.jaw_hinge, jaw_angle=cal.jaw_angle,
                       jaw_glide=cal.jaw_glide, jaw_coef=cal.jaw_coef.astype(np.float32).astype(np.float64),
                       lip_curl=cal.lip_curl)


def run(args: argparse.Namespace) -> int:
    try:
        ict = load_ict(args.ict)
    except (OSError, ValueError) as exc:
        print(f"facecast train face: {exc}", file=sys.stderr)
        return 2
    cal, report = calibrate(ict, cfg=FaceFitConfig(spacing=args.spacing))
    out = cal.save(args.out, keep=FaceFitConfig().keep)
    summary(f"SynthFace v2 fitted to {ict.name}: {len(cal.entries)} fields, cosine >= {report['min_cosine']:.3f}, "
            f"amplitude ratio {report['amplitude_ratio_range'][0]:.2f}-{report['amplitude_ratio_range'][1]:.2f}, "
            f"jaw {report['jaw_angle_deg']:.1f} deg; wrote {out} ({out.stat().st_size / 1e3:.0f} kB) "
            f"in {report['seconds']:.0f} s")
    return 0


def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("face", help="fit SynthFace v2's expression fields to ICT-FaceKit")
    p.add_argument("--ict", default=str(DEFAULT_ICT),
                   help="ICT-FaceKit: a FaceXModel folder, or the reference arrays' folder (default %(default)s)")
    p.add_argument("--out", default=str(CALIBRATION_FILE), help="calibration file to write (default %(default)s)")
    p.add_argument("--spacing", type=float, default=FaceFitConfig().spacing,
                   help="RBF centre spacing, normalised face units (default %(default)s)")
    p.set_defaults(func=run)


__all__ = ["Correspondence", "FaceFitConfig", "calibrate", "load_ict", "reference_fields"]
