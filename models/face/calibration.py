"""SynthFace v2's calibrated expression fields and mechanism parameters.

Each of SynthFace v2's blendshape fields is a smooth function of position in
the normalised face frame (``models.face.frame``), never a table of one
mesh, so it deforms any template with the 68 landmarks. A field is a sum of
Gaussian radial basis functions on four *sheets*:

    D_e(p) = sum_s sheet_s(p) sum_c phi_c(p) C[e, s, c],   phi_c(p) = exp(-|p - c|^2 / 2 sigma^2)

``sheet_0 = 1``; the others are the steps across the mouth slit and across
each eye slit (``models.face.slits``), windowed around their slit, so a
field may differ on the two lips or the two lids while staying smooth
everywhere else. The coefficients were fitted (``facecast train face``) to
ICT-FaceKit's scan-derived expression shapes transferred onto SynthFace's
mask; only the coefficients and the fit's figures live here, not ICT's
arrays, and building SynthFace v2 needs nothing but this file.

An *entry* is one field with one response to its shape's weight: most
shapes have one linear entry; a smile's cheek bulge and a cheek puff have a
second, saturating entry (``SATURATION``). ``jawOpen`` and the blinks are
mainly mechanisms (``models.face.mechanisms``) whose parameters are stored
here too; their entries hold what the mechanism leaves over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from models.face.anchors import Anchors
from models.face.regions import lips_ellipse
from models.face.slits import lid_step, mouth_step
from models.geometry.smooth import smoothstep

#: the shipped calibration (package data)
CALIBRATION_FILE = Path(__file__).resolve().parent / "synthface_v2.npz"
#: file format of a calibration
FORMAT = "facecast-synthface-calibration"
VERSION = 1
#: sheets: everywhere, below the mouth slit, above the right eye slit, above the left
N_SHEETS = 4
#: an RBF is cut off (exactly zero) beyond this many widths
RBF_CUTOFF = 4.0
#: a slit sheet fades out between 1x and 2x its slit's zone
EYE_WINDOW = (0.09, 0.2)          #: half extents of an eye's zone beyond its corners (x) and its centre (y)
#: response of a saturating entry: tanh(k w) / tanh(k)
SATURATION = 2.0
RESPONSES = ("linear", "saturating")


@dataclass(frozen=True)
class Entry:
    """One calibrated field: the ARKit ``shape`` it belongs to and its ``response``."""

    shape: str
    response: str = "linear"


def _window(r2: np.ndarray) -> np.ndarray:
    """1 inside the unit (squared radius <= 1), fading to 0 at radius 2."""
    return 1.0 - smoothstep(np.sqrt(r2) - 1.0)


def sheets(xi: np.ndarray, normals_xi: np.ndarray, anchors: Anchors) -> np.ndarray:
    """The ``N_SHEETS`` sheet memberships ``[4, N]`` at ``xi [N, 3]``."""
    x, y = xi[:, 0], xi[:, 1]
    out = [np.ones(len(xi)), mouth_step(xi, normals_xi, anchors) * _window(lips_ellipse(x, y, anchors))]
    for side in (-1, 1):
        inner, outer = anchors.eye_corners(side)
        cx = 0.5 * (inner[0] + outer[0])
        hx = 0.5 * abs(outer[0] - inner[0]) + EYE_WINDOW[0]
        cy = anchors.eye_centre(side)[1]
        zone = ((x - cx) / hx) ** 2 + ((y - cy) / EYE_WINDOW[1]) ** 2
        out.append(lid_step(xi, normals_xi, anchors, side) * _window(zone))
    return np.stack(out)


def response(kind: str, w: np.ndarray) -> np.ndarray:
    """An entry's activation at weights ``w`` (any shape)."""
    if kind == "linear":
        return w
    if kind == "saturating":
        return np.tanh(SATURATION * w) / np.tanh(SATURATION)
    raise ValueError(f"unknown response {kind!r}; known: {', '.join(RESPONSES)}")


@dataclass(frozen=True)
class Calibration:
    """Centres ``[C, 3]`` (normalised) with width ``sigma``, entries, and
    coefficients ``coef [E, 4, C, 3]``; the jaw: its joints ``jaw_hinge
    [2, 3]`` (normalised), ``jaw_angle`` (rad at ``jawOpen = 1``) and
    ``jaw_glide`` (the joints' glide at 1, normalised, face frame) and
    ``jaw_coef [4, C]``, the coefficients of the scalar field that says how
    much of the mandible's motion the skin follows (None: v1's analytic
    weight); ``lip_curl [2, 3]``, each lip's roll (upper, lower): its axis'
    height and depth from the margin (normalised) and its angle at weight 1
    (None: rolls are fields only); ``meta`` says where it came from and how
    well it fits."""

    centres: np.ndarray
    sigma: float
    entries: tuple[Entry, ...]
    coef: np.ndarray
    jaw_hinge: np.ndarray
    jaw_angle: float
    jaw_glide: np.ndarray
    jaw_coef: np.ndarray | None = None
    lip_curl: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        c, e = len(self.centres), len(self.entries)
        if self.coef.shape != (e, N_SHEETS, c, 3):
            raise ValueError(f"calibration coefficients must be [{e}, {N_SHEETS}, {c}, 3], got {self.coef.shape}")
        for entry in self.entries:
            if entry.response not in RESPONSES:
                raise ValueError(f"calibration entry {entry.shape!r}: unknown response {entry.response!r}")
        if self.jaw_coef is not None and np.shape(self.jaw_coef) != (N_SHEETS, c):
            raise ValueError(f"calibration jaw_coef must be [{N_SHEETS}, {c}], got {np.shape(self.jaw_coef)}")
        if self.lip_curl is not None and np.shape(self.lip_curl) != (2, 3):
            raise ValueError(f"calibration lip_curl must be [2, 3], got {np.shape(self.lip_curl)}")
        if np.shape(self.jaw_hinge) != (2, 3) or np.shape(self.jaw_glide) != (3,):
            raise ValueError(f"calibration jaw_hinge must be [2, 3] and jaw_glide [3], got "
                             f"{np.shape(self.jaw_hinge)} and {np.shape(self.jaw_glide)}")
        if not (np.all(np.isfinite(self.coef)) and np.all(np.isfinite(self.centres))
                and np.all(np.isfinite(self.jaw_hinge)) and np.isfinite(self.jaw_angle)
                and np.all(np.isfinite(self.jaw_glide)) and np.isfinite(self.sigma) and self.sigma > 0
                and (self.jaw_coef is None or np.all(np.isfinite(self.jaw_coef)))
                and (self.lip_curl is None or np.all(np.isfinite(self.lip_curl)))):
            raise ValueError("calibration holds NaN or infinite numbers")

    @staticmethod
    def empty(centres: np.ndarray, sigma: float, jaw_hinge: np.ndarray) -> "Calibration":
        """No fields, no jaw motion: the starting point of a fit."""
        return Calibration(centres=np.asarray(centres, np.float64), sigma=float(sigma), entries=(),
                           coef=np.zeros((0, N_SHEETS, len(centres), 3)), jaw_hinge=np.asarray(jaw_hinge, float),
                           jaw_angle=0.0, jaw_glide=np.zeros(3))

    def basis(self, xi: np.ndarray, normals_xi: np.ndarray, anchors: Anchors):
        """The sheet-times-RBF design ``[N, 4 * C]`` (sparse CSR) at ``xi``."""
        import scipy.sparse as sp

        tree = cKDTree(self.centres)
        lists = tree.query_ball_point(xi, RBF_CUTOFF * self.sigma)
        rows = np.repeat(np.arange(len(xi)), [len(x) for x in lists])
        cols = np.fromiter((c for x in lists for c in x), dtype=np.int64, count=len(rows))
        d2 = np.sum((xi[rows] - self.centres[cols]) ** 2, axis=1)
        phi = np.exp(-0.5 * d2 / self.sigma ** 2)
        s = sheets(xi, normals_xi, anchors)
        c = len(self.centres)
        blocks = [sp.csr_matrix((phi * s[k, rows], (rows, cols)), shape=(len(xi), c)) for k in range(N_SHEETS)]
        return sp.hstack(blocks).tocsr()

    def jaw_weight(self, xi: np.ndarray, normals_xi: np.ndarray, anchors: Anchors) -> np.ndarray | None:
        """How much of the mandible's motion each point follows ``[N]`` in [0, 1]
        (None when the calibration has no jaw field)."""
        if self.jaw_coef is None:
            return None
        return np.clip(self.basis(xi, normals_xi, anchors) @ self.jaw_coef.reshape(-1), 0.0, 1.0)

    def fields(self, xi: np.ndarray, normals_xi: np.ndarray, anchors: Anchors) -> np.ndarray:
        """Every entry's field ``[E, N, 3]`` (normalised) at ``xi [N, 3]``."""
        if not self.entries:
            return np.zeros((0, len(xi), 3))
        a = self.basis(xi, normals_xi, anchors)
        flat = self.coef.reshape(len(self.entries), -1, 3)                  # [E, 4C, 3]
        return np.stack([a @ flat[e] for e in range(len(self.entries))])

    # ---------------------------------------------------------------- files
    def save(self, path: str | Path, keep: float = 0.0) -> Path:
        """Write to ``path`` (npz). Coefficients whose basis function adds less
        than ``keep`` of its entry's largest are dropped (stored sparse)."""
        path = Path(path)
        mag = np.linalg.norm(self.coef, axis=-1)                              # [E, 4, C]
        limit = keep * mag.reshape(len(self.entries), -1).max(axis=1)[:, None, None] if self.entries else 0.0
        idx = np.flatnonzero(mag > limit)
        values = self.coef.reshape(-1, 3)[idx]
        meta = {"format": FORMAT, "version": VERSION, **self.meta}
        np.savez_compressed(path, centres=self.centres.astype(np.float32), sigma=np.float64(self.sigma),
                            entry_shape=np.array([e.shape for e in self.entries]),
                            entry_response=np.array([e.response for e in self.entries]),
                            coef_index=idx.astype(np.int32), coef_value=values.astype(np.float32),
                            jaw_hinge=np.asarray(self.jaw_hinge, np.float64),
                            jaw_coef=(np.zeros((0,)) if self.jaw_coef is None else self.jaw_coef.astype(np.float32)),
                            lip_curl=(np.zeros((0,)) if self.lip_curl is None else self.lip_curl.astype(np.float64)),
                            jaw_angle=np.float64(self.jaw_angle), jaw_glide=self.jaw_glide.astype(np.float64),
                            meta=np.array(json.dumps(meta)))
        return path

    @staticmethod
    def load(path: str | Path = CALIBRATION_FILE) -> "Calibration":
        """Read a calibration; a missing or malformed file is a ``ValueError`` naming it."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"SynthFace v2 calibration {path} not found (make it with 'facecast train face')")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != FORMAT or meta.get("version") != VERSION:
                    raise ValueError(f"format {meta.get('format')!r} v{meta.get('version')}, "
                                     f"expected {FORMAT!r} v{VERSION}")
                centres = z["centres"].astype(np.float64)
                entries = tuple(Entry(str(s), str(r)) for s, r in zip(z["entry_shape"], z["entry_response"]))
                coef = np.zeros((len(entries), N_SHEETS, len(centres), 3))
                idx = z["coef_index"]
                if idx.size and (idx.min() < 0 or idx.max() >= coef.size // 3):
                    raise ValueError("coefficient index out of range")
                coef.reshape(-1, 3)[idx] = z["coef_value"]
                return Calibration(centres=centres, sigma=float(z["sigma"]), entries=entries, coef=coef,
                                   jaw_hinge=z["jaw_hinge"].astype(np.float64), jaw_angle=float(z["jaw_angle"]),
                                   jaw_glide=z["jaw_glide"].astype(np.float64),
                                   jaw_coef=z["jaw_coef"].astype(np.float64) if z["jaw_coef"].size else None,
                                   lip_curl=z["lip_curl"].astype(np.float64) if z["lip_curl"].size else None,
                                   meta=meta)
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"SynthFace v2 calibration {path}: cannot read it ({exc})") from exc
