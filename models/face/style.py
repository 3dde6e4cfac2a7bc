"""Per-identity expression style: everyone smiles, but not the same way.

Each identity performs each blendshape with its own smooth, region-wise
variation of amplitude and direction. A shape's field ``D_j(p)`` becomes

    D_j^beta(p) = (I + sum_k b_k(p) M_jk(beta)) D_j(p),
    M_jk = a_jk I + [omega_jk]_x

with ``K`` smooth modulation fields ``b_k`` over the face (1, a left-right
gradient, a top-bottom gradient and three smooth random fields) and, per
identity, shape and field, a gain ``a_jk`` (amplitude) and a small rotation
``omega_jk`` (direction). The style is a fixed function of the identity
vector (``M = sum_m beta_m G_m`` with ``G`` drawn once from
``STYLE_SEED``): the mean face has none, every person of the population a
different one, and the same person always the same. Direction changes stay
small, so the same weights still mean the same expression.

Applied as a product with the shape's field, the style is linear in the
(weights x style) coefficients: ``style_bases`` precomputes ``b_k D_j[c]``
once per template and a frame's styled displacement is one matrix product
(see ``SynthFaceV2``).
"""

from __future__ import annotations

import numpy as np

from models.face.identity import N_IDENTITY
from models.geometry.smooth import bump

#: modulation fields: constant, left-right, top-bottom, and random smooth fields
N_STYLE = 6
N_RANDOM_STYLE = 3
#: seed of the random modulation fields and of the identity -> style map (part of the model)
STYLE_SEED = 20261
#: standard deviation of a style gain ``a_jk`` for an identity drawn from the population
STYLE_GAIN_SD = 0.07
#: standard deviation of a style rotation ``omega_jk`` (radians, per axis)
STYLE_TURN_SD = 0.05
#: the face domain the random modulation fields are normalised over (normalised x, y)
STYLE_DOMAIN = ((-0.75, 0.75), (-1.15, 0.9))
#: bumps per random modulation field and their radius range (normalised)
STYLE_BUMPS = 5
STYLE_RADIUS = (0.5, 0.9)


def modulation_fields(xi: np.ndarray) -> np.ndarray:
    """The ``K`` modulation fields ``[K, N]`` at ``xi [N, 3]`` (normalised face
    coordinates); each but the first has RMS about 1 over the face."""
    x, y = xi[:, 0], xi[:, 1]
    out = [np.ones_like(x), np.clip(x / 0.45, -1.6, 1.6), np.clip((y + 0.15) / 0.55, -1.8, 1.8)]
    rng = np.random.default_rng([STYLE_SEED, 1])
    (x0, x1), (y0, y1) = STYLE_DOMAIN
    gx, gy = np.meshgrid(np.linspace(x0, x1, 31), np.linspace(y0, y1, 41))
    for _ in range(N_RANDOM_STYLE):
        cx, cy = rng.uniform(x0, x1, STYLE_BUMPS), rng.uniform(y0, y1, STYLE_BUMPS)
        rad = rng.uniform(*STYLE_RADIUS, STYLE_BUMPS)
        sign = rng.choice([-1.0, 1.0], STYLE_BUMPS)

        def field(px, py):
            return sum(s * bump(((px - a) / r) ** 2 + ((py - b) / r) ** 2) for a, b, r, s in zip(cx, cy, rad, sign))

        rms = np.sqrt(np.mean(field(gx, gy) ** 2))
        out.append(field(x, y) / rms)
    return np.stack(out)


def _generators(n_shapes: int) -> np.ndarray:
    """``G [35, S, K, 4]``: gain and rotation (3) per identity dimension, shape and field."""
    rng = np.random.default_rng([STYLE_SEED, 2, n_shapes])
    g = rng.standard_normal((N_IDENTITY, n_shapes, N_STYLE, 4)) / np.sqrt(N_IDENTITY)
    g[..., 0] *= STYLE_GAIN_SD
    g[..., 1:] *= STYLE_TURN_SD
    return g


def style_matrices(identity: np.ndarray, n_shapes: int) -> np.ndarray:
    """``M [B, S, K, 3, 3]`` of identities ``[B, 35]`` (see the module docstring)."""
    beta = np.asarray(identity, dtype=np.float64)
    p = np.einsum("bm,mskq->bskq", beta, _generators(n_shapes))
    gain, (wx, wy, wz) = p[..., 0], (p[..., 1], p[..., 2], p[..., 3])
    return np.stack([np.stack([gain, -wz, wy], -1),
                     np.stack([wz, gain, -wx], -1),
                     np.stack([-wy, wx, gain], -1)], -2)


def style_bases(fields: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """``Q [E, K, 3, N]``: ``b_k(p) * D_e(p)[c]`` for fields ``D [E, N, 3]``."""
    b = modulation_fields(xi)                                   # [K, N]
    return np.einsum("kn,enc->ekcn", b, fields)
