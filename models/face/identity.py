"""SynthFace's identity space: 15 named semantic parameters and 20 smooth
random fields, each a displacement field of position in the face frame.

A parameter vector ``beta [..., 35]`` is standard normal (``beta = 0`` is the
template). Parameter ``k`` displaces a point ``p`` by ``beta_k * d_k(p)``,
``d_k = s R f_k(xi(p))``: ``f_k`` is a smooth field of normalised face
coordinates written against the template's landmark anchors, so the same
parameters reshape SynthFace's mask and a user's FLAME head alike.

Amplitudes are per one standard deviation, in normalised units (1 = the
outer-eye-corner distance, about 86 mm on SynthFace), chosen to span a
plausible adult population within +-3 sigma.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.face.anchors import Anchors
from models.face.regions import front_weight
from models.geometry.smooth import bump, smoothstep

SEMANTIC: tuple[str, ...] = (
    "face_width", "face_height", "jaw_width", "chin", "nose_length", "nose_width",
    "nose_projection", "nose_bridge", "lip_fullness", "mouth_width", "eye_spacing",
    "eye_size", "brow_height", "cheekbones", "forehead_slope",
)
#: number of smooth random fields after the semantic parameters
N_RANDOM = 20
#: seed of the random fields: part of the model definition, never changed
RANDOM_FIELD_SEED = 20221
#: bumps per random field, and their radius range (normalised units)
RANDOM_BUMPS = 6
RANDOM_RADIUS = (0.3, 0.6)
#: RMS displacement of one random field at one sigma (normalised units; ~0.5 mm)
RANDOM_RMS = 0.006
#: the face domain the random fields live in (normalised x, y)
RANDOM_DOMAIN = ((-0.75, 0.75), (-1.15, 0.9))

#: fields that reshape the whole head, not only the face
GLOBAL_FIELDS = ("face_width", "face_height", "jaw_width")

NAMES: tuple[str, ...] = SEMANTIC + tuple(f"shape_{i:02d}" for i in range(N_RANDOM))
N_IDENTITY = len(NAMES)


def _bump2(x, y, cx, cy, rx, ry):
    return bump(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)


def semantic_fields(xi: np.ndarray, a: Anchors) -> np.ndarray:
    """The 15 semantic fields at ``xi [N, 3]``: ``[15, N, 3]`` normalised, per sigma."""
    x, y, z = xi[:, 0], xi[:, 1], xi[:, 2]
    zero = np.zeros_like(x)
    out = {}
    # widths and heights of the whole face, faded off far behind the face
    front = smoothstep((z + 1.6) / 0.6)
    out["face_width"] = np.stack([0.045 * x * front, zero, zero], 1)
    lower = smoothstep(-y / 0.4)
    out["face_height"] = np.stack([zero, 0.05 * y * lower * front, zero], 1)
    jaw = smoothstep((a.mouth_line(0.0 * x) - y) / 0.5) * smoothstep((np.abs(x) - 0.15) / 0.45)
    out["jaw_width"] = np.stack([0.1 * x * jaw * front, zero, zero], 1)
    chin = _bump2(x, y, 0.0, a.chin[1] + 0.12, 0.42, 0.36)
    out["chin"] = np.stack([zero, -0.03 * chin, 0.035 * chin], 1)
    # nose
    tip, nasion, sub = a.nose_tip, a.nasion, a.subnasale
    # nose length: the tip and the nose base move down, the nasion and the lips
    # stay (the upper lip's skin takes up the change)
    lip_top = a.upper_lip_top
    rise = np.clip((y - lip_top) / (sub[1] - lip_top), 0.0, 1.0)
    along = rise * rise * (3.0 - 2.0 * rise) * (1.0 - smoothstep((y - tip[1]) / (nasion[1] - tip[1])))
    nose_len = along * bump((x / 0.4) ** 2)
    out["nose_length"] = np.stack([zero, -0.022 * nose_len, -0.006 * nose_len], 1)
    alar_y = 0.5 * (a.point(31)[1] + a.point(35)[1])
    out["nose_width"] = np.stack([0.22 * x * _bump2(x, y, 0.0, alar_y + 0.02, 0.36, 0.22), zero, zero], 1)
    out["nose_projection"] = np.stack([zero, zero, 0.028 * _bump2(x, y, 0.0, tip[1], 0.22, 0.32)], 1)
    bridge_y = 0.5 * (nasion[1] + tip[1])
    out["nose_bridge"] = np.stack([zero, zero, 0.018 * _bump2(x, y, 0.0, bridge_y + 0.05, 0.13, 0.2)], 1)
    # lips: both vermilions away from the contact line and forward
    mouth_y = a.mouth_line(np.clip(x, a.point(48)[0], a.point(54)[0]))
    lips = _bump2(x, y, a.mouth_centre[0], a.mouth_centre[1], a.mouth_half_width + 0.06, 0.2)
    rel = np.clip((y - mouth_y) / 0.08, -1.0, 1.0)
    out["lip_fullness"] = np.stack([zero, 0.012 * rel * lips, 0.014 * lips], 1)
    mouth = _bump2(x, y, 0.0, a.mouth_centre[1], a.mouth_half_width + 0.35, 0.28)
    out["mouth_width"] = np.stack([0.1 * x * mouth, zero, zero], 1)
    # eyes and brows, each side around its own centre
    spacing = np.zeros_like(xi)
    size = np.zeros_like(xi)
    brow = np.zeros_like(x)
    cheek = np.zeros_like(xi)
    for side in (-1, 1):
        c = a.eye_centre(side)
        w = _bump2(x, y, c[0], c[1], 0.33, 0.3)
        spacing[:, 0] += 0.028 * side * w
        ws = _bump2(x, y, c[0], c[1], 0.3, 0.24)
        size[:, 0] += 0.1 * (x - c[0]) * ws
        size[:, 1] += 0.1 * (y - c[1]) * ws
        b = a.brow_centre(side)
        brow += _bump2(x, y, b[0], b[1] + 0.02, 0.42, 0.14)
        wc = _bump2(x, y, side * 0.5, c[1] - 0.28, 0.3, 0.25)
        cheek[:, 0] += 0.015 * side * wc
        cheek[:, 2] += 0.025 * wc
    out["eye_spacing"] = spacing
    out["eye_size"] = size
    out["brow_height"] = np.stack([zero, 0.024 * brow, zero], 1)
    out["cheekbones"] = cheek
    above = np.clip(y - (a.brow_line(0.0 * x) + 0.1), 0.0, None)
    out["forehead_slope"] = np.stack([zero, zero, -0.09 * above ** 2 * front], 1)
    # local features act on the face only, never on the back of a full head
    face = front_weight(z)[:, None]
    for name in SEMANTIC:
        if name not in GLOBAL_FIELDS:
            out[name] = out[name] * face
    return np.stack([out[name] for name in SEMANTIC])


@dataclass(frozen=True)
class _RandomBumps:
    centres: np.ndarray    # [K, B, 2]
    radii: np.ndarray      # [K, B]
    vectors: np.ndarray    # [K, B, 3]


def _random_bumps() -> _RandomBumps:
    rng = np.random.default_rng(RANDOM_FIELD_SEED)
    (x0, x1), (y0, y1) = RANDOM_DOMAIN
    centres = np.stack([rng.uniform(x0, x1, (N_RANDOM, RANDOM_BUMPS)),
                        rng.uniform(y0, y1, (N_RANDOM, RANDOM_BUMPS))], -1)
    radii = rng.uniform(*RANDOM_RADIUS, (N_RANDOM, RANDOM_BUMPS))
    vectors = rng.normal(size=(N_RANDOM, RANDOM_BUMPS, 3)) * np.array([0.35, 0.35, 1.0])
    return _RandomBumps(centres, radii, vectors)


def _random_raw(xi: np.ndarray, rb: _RandomBumps) -> np.ndarray:
    """Unscaled mirror-symmetric random fields ``[K, N, 3]``."""
    mirror = np.array([-1.0, 1.0, 1.0])
    out = np.zeros((N_RANDOM, len(xi), 3))
    for sgn in (1.0, -1.0):
        x = sgn * xi[:, 0]
        for b in range(RANDOM_BUMPS):
            w = bump(((x[None] - rb.centres[:, b, 0:1]) / rb.radii[:, b, None]) ** 2
                     + ((xi[None, :, 1] - rb.centres[:, b, 1:2]) / rb.radii[:, b, None]) ** 2)
            vec = rb.vectors[:, b] * (mirror if sgn < 0 else 1.0)
            out += w[..., None] * vec[:, None, :]
    return out


def _random_scale(rb: _RandomBumps) -> np.ndarray:
    """Per-field factor giving RMS ``RANDOM_RMS`` over a grid of the face domain
    (template independent, so a parameter means the same on every template)."""
    (x0, x1), (y0, y1) = RANDOM_DOMAIN
    gx, gy = np.meshgrid(np.linspace(x0, x1, 41), np.linspace(y0, y1, 61))
    grid = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], 1)
    raw = _random_raw(grid, rb)
    rms = np.sqrt(np.mean(np.sum(raw ** 2, -1), -1))
    return RANDOM_RMS / rms


def random_fields(xi: np.ndarray) -> np.ndarray:
    """The smooth random fields at ``xi [N, 3]``: ``[20, N, 3]`` normalised, per
    sigma, on the face only."""
    rb = _random_bumps()
    scale = _random_scale(rb)[:, None, None] * front_weight(xi[:, 2])[None, :, None]
    return _random_raw(xi, rb) * scale


def identity_fields(xi: np.ndarray, anchors: Anchors) -> np.ndarray:
    """All identity fields at ``xi [N, 3]``: ``[35, N, 3]`` normalised, per sigma."""
    return np.concatenate([semantic_fields(xi, anchors), random_fields(xi)])


def sample_identities(n: int, rng: np.random.Generator, clip: float = 3.0) -> np.ndarray:
    """``n`` identity vectors ``float32 [n, 35]`` from the population prior
    (standard normal, clipped to ``+-clip`` sigma)."""
    return np.clip(rng.standard_normal((n, N_IDENTITY)), -clip, clip).astype(np.float32)


def population_identity(index: int, seed: int = 0) -> np.ndarray:
    """Identity parameters ``float32 [35]`` of member ``index`` of the SynthFace
    population drawn with ``seed``: the same person every time (``facecast data
    synth`` subject ``synth_{index:03d}`` of a set made with that seed, and the
    runtime's ``identity: {"index": i}``)."""
    if index < 0:
        raise ValueError(f"identity index must be >= 0, got {index}")
    return sample_identities(1, np.random.default_rng([seed, index]))[0]
