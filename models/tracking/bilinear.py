"""The bilinear face model of the tracker, ``S = Cr x2 a_id x3 b_exp``.

As in FaceWarehouse and the cascaded-regression paper: a data tensor of
meshes, vertices x identities x expressions, here rendered by SynthFace
(``identities`` members of its training population, each in the same
``expressions``), reduced by a truncated higher-order SVD over the identity
and expression modes (not over vertices). The core ``Cr`` holds
``id_dims x exp_dims`` meshes; a face is ``S(a, b) = sum_ik a_i b_k Cr[i, k]``.
The rows of the two factor matrices are the training identities' and
expressions' coefficients; their means and variances are the priors of the
fitting's regularisers (Mahalanobis distances).

The expression set (``expression_set``): the neutral face, each of the 52
ARKit units alone at full weight, the 12 CoMA labels' apexes at full and
half intensity. ``blendshapes(b)`` maps expression coefficients to the 52
ARKit weights (ridge regression on that set, clipped to [0, 1]), so tracked
frames can carry them.

Meshes are metres; ``float32``. The core of the defaults (150 identities,
77 expressions, 50 x 25 dims) is 78 MB: too big to ship, so it is built
from SynthFace (half a minute) and cached under the data folder, keyed by
its config and the template's topology id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.face.expression import N_EXPRESSION
from models.face.labels import COMA_LABELS, apex_weights

#: meshes per pass over the core in ``BilinearFace.coefficients``
COEFFICIENT_CHUNK = 32
#: prior pull of those solves (relative to the data term)
COEFFICIENT_RIDGE = 1e-6
#: ridge strength of the expression -> ARKit weights regression (relative to the coefficients' scale)
BLENDSHAPE_RIDGE = 1e-3


@dataclass(frozen=True)
class BilinearConfig:
    identities: int = 150       #: SynthFace training identities in the data tensor
    id_dims: int = 50           #: identity coefficients kept (the paper's 50; at most ``identities``)
    exp_dims: int = 25          #: expression coefficients kept (the paper's 25; at most the 77 expressions)
    seed: int = 0               #: population and apex seed

    def key(self, topology_id: str) -> str:
        text = json.dumps({**asdict(self), "topology": topology_id, "version": 1}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def expression_set(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """The tensor's expressions: ``(weights float32 [E, 52], names)``; row 0 is neutral."""
    from models.face.labels import ARKIT_NAMES

    rng = np.random.default_rng([seed, 29])
    rows, names = [np.zeros(N_EXPRESSION, np.float32)], ["neutral"]
    for j, name in enumerate(ARKIT_NAMES):
        w = np.zeros(N_EXPRESSION, np.float32)
        w[j] = 1.0
        rows.append(w)
        names.append(name)
    for label in COMA_LABELS:
        apex, _ = apex_weights(label, rng)
        rows += [apex.astype(np.float32), 0.5 * apex.astype(np.float32)]
        names += [label, f"{label}@50%"]
    return np.stack(rows), names


class BilinearFace:
    """``S(a, b)`` with its priors and the expression -> ARKit weights map.

    ``core`` float32 ``[id_dims, exp_dims, N, 3]``; ``id_mean``/``id_var``
    ``[id_dims]`` and ``exp_mean``/``exp_var`` ``[exp_dims]`` (the priors);
    ``neutral_exp`` ``[exp_dims]`` (the neutral expression's coefficients);
    ``to_blendshapes`` ``[exp_dims + 1, 52]`` (affine map)."""

    def __init__(self, core: np.ndarray, id_mean: np.ndarray, id_var: np.ndarray, exp_mean: np.ndarray,
                 exp_var: np.ndarray, neutral_exp: np.ndarray, to_blendshapes: np.ndarray,
                 topology_id: str, config: BilinearConfig):
        self.core = np.asarray(core, np.float32)
        self.id_mean, self.id_var = np.asarray(id_mean, np.float64), np.asarray(id_var, np.float64)
        self.exp_mean, self.exp_var = np.asarray(exp_mean, np.float64), np.asarray(exp_var, np.float64)
        self.neutral_exp = np.asarray(neutral_exp, np.float64)
        self.to_blendshapes = np.asarray(to_blendshapes, np.float64)
        self.topology_id = topology_id
        self.config = config

    @property
    def id_dims(self) -> int:
        return self.core.shape[0]

    @property
    def exp_dims(self) -> int:
        return self.core.shape[1]

    @property
    def n_vertices(self) -> int:
        return self.core.shape[2]

    def mesh(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Meshes ``float32 [..., N, 3]`` of identities ``a [..., id_dims]`` and expressions ``b [..., exp_dims]``."""
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        if a.ndim == 1 and b.ndim == 1:                   # one face: two BLAS products, not a 3-way einsum
            return (b @ self.identity_core(a).reshape(self.exp_dims, -1)).reshape(-1, 3)
        a, b = np.broadcast_arrays(a[..., :, None], b[..., None, :])
        pairs = (a * b).reshape(-1, self.id_dims * self.exp_dims)
        return (pairs @ self.core.reshape(self.id_dims * self.exp_dims, -1)).reshape(*a.shape[:-2], -1, 3)

    def identity_core(self, a: np.ndarray) -> np.ndarray:
        """``Cr x2 a``: the expression basis of identity ``a`` ``[exp_dims, N, 3]``
        (``mesh(a, b) = tensordot(b, identity_core(a), 1)``; cheap per frame once ``a`` is frozen)."""
        return np.tensordot(np.asarray(a, np.float32), self.core, axes=(0, 0))

    def sub(self, vertices: np.ndarray) -> np.ndarray:
        """The core at some vertices only, ``[id_dims, exp_dims, len(vertices), 3]`` (float64)."""
        return self.core[:, :, vertices].astype(np.float64)

    def blendshapes(self, b: np.ndarray) -> np.ndarray:
        """ARKit weights ``[..., 52]`` in [0, 1] of expression coefficients ``b [..., exp_dims]``."""
        b = np.asarray(b, np.float64)
        w = np.concatenate([b, np.ones(b.shape[:-1] + (1,))], axis=-1) @ self.to_blendshapes
        return np.clip(w, 0.0, 1.0).astype(np.float32)

    def coefficients(self, meshes: np.ndarray, iterations: int = 8, ridge: float = COEFFICIENT_RIDGE
                     ) -> tuple[np.ndarray, np.ndarray]:
        """The model's closest faces to ``meshes [B, N, 3]`` in 3D (alternating least squares from
        the mean identity and the neutral expression, each solve pulled gently towards the prior
        mean by ``ridge``, without which directions the other factor hardly moves the mesh along
        run away): ``(a [B, id_dims], b [B, exp_dims])``, in the ``gauge``. The ground truth of a
        rendered face, in the model's coefficients."""
        x = np.asarray(meshes, np.float64).reshape(len(meshes), -1)
        by_exp = self.core.transpose(1, 0, 2, 3).reshape(self.exp_dims, -1)     # [exp, id * 3N]
        by_id = self.core.reshape(self.id_dims, -1)                            # [id, exp * 3N]
        a = np.repeat(self.id_mean[None], len(x), axis=0)
        b = np.repeat(self.neutral_exp[None], len(x), axis=0)
        for s in range(0, len(x), COEFFICIENT_CHUNK):              # a chunk of meshes shares each pass over the core
            sl = slice(s, s + COEFFICIENT_CHUNK)
            for _ in range(iterations):
                m = (b[sl].astype(np.float32) @ by_exp).reshape(-1, self.id_dims, x.shape[1])
                a[sl] = _solve_rows(m, x[sl], self.id_mean, self.id_var, ridge)
                m = (a[sl].astype(np.float32) @ by_id).reshape(-1, self.exp_dims, x.shape[1])
                b[sl] = _solve_rows(m, x[sl], self.exp_mean, self.exp_var, ridge)
        return self.gauge(a, b)

    def gauge(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``S(c a, b / c) = S(a, b)``: the representative whose first expression coefficient (the
        leading HOSVD component, the mean shape every expression shares) is the training
        expressions' mean, so coefficients of different fits compare."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        c = b[..., 0] / self.exp_mean[0]
        c = np.where(np.abs(c) > 1e-9, c, 1.0)
        return a * c[..., None], b / c[..., None]

    def canonical(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``gauge`` representative scaled to the mean identity's size (first identity
        coefficient at its mean): the same face shape, at the size a scaled orthographic camera
        cannot tell apart, so a fit and the truth compare coefficient by coefficient."""
        a, b = self.gauge(a, b)
        c = a[..., 0] / self.id_mean[0]
        return a / np.where(np.abs(c) > 1e-9, c, 1.0)[..., None], b

    def arrays(self) -> dict[str, np.ndarray]:
        return {"core": self.core, "id_mean": self.id_mean, "id_var": self.id_var, "exp_mean": self.exp_mean,
                "exp_var": self.exp_var, "neutral_exp": self.neutral_exp, "to_blendshapes": self.to_blendshapes}


def build_bilinear(face, config: BilinearConfig = BilinearConfig(), show_progress: bool = False) -> BilinearFace:
    """The model from a ``SynthFace`` by truncated HOSVD (see the module docstring)."""
    from tqdm import tqdm

    from trainers.neutral.data import split_identities

    ids = split_identities("train", config.identities, config.seed)
    weights, _ = expression_set(config.seed)
    n = face.template.n_vertices
    data = np.empty((len(weights), len(ids), 3 * n), np.float32)       # [E, I, 3N]
    for e in tqdm(range(len(weights)), desc="bilinear model: SynthFace meshes", unit="expression",
                  disable=not show_progress, leave=False):
        data[e] = face.vertices(ids, np.repeat(weights[e:e + 1], len(ids), axis=0)).reshape(len(ids), -1)
    gram_id = np.einsum("eiv,ejv->ij", data, data, optimize=True).astype(np.float64)   # mode-2 unfolding Gram
    gram_exp = np.einsum("eiv,fiv->ef", data, data, optimize=True).astype(np.float64)  # mode-3
    u_id = _leading(gram_id, config.id_dims)                            # [I, id_dims]
    u_exp = _leading(gram_exp, config.exp_dims)                         # [E, exp_dims]
    core = _core(data, u_id, u_exp)
    to_bs = _blendshape_map(u_exp, weights)
    return BilinearFace(core.reshape(u_id.shape[1], u_exp.shape[1], n, 3), u_id.mean(0), u_id.var(0),
                        u_exp.mean(0), u_exp.var(0), u_exp[0], to_bs, face.template.topology_id, config)


def _solve_rows(m: np.ndarray, x: np.ndarray, mean: np.ndarray, var: np.ndarray, ridge: float) -> np.ndarray:
    """Per row ``r``: ``c`` minimising ``|m[r].T c - x[r]|^2 + lam (c - mean)' diag(1/var) (c - mean)``,
    ``lam = ridge * trace(gram) * mean(var) / D`` (normal equations in float64), ``[R, D]``."""
    m = m.astype(np.float64)
    gram = m @ m.transpose(0, 2, 1)
    rhs = (m @ x[..., None])[..., 0]
    d = gram.shape[-1]
    lam = ridge * np.trace(gram, axis1=1, axis2=2) * var.mean() / d                   # [R]
    prior = lam[:, None] / np.maximum(var, 1e-12)                                      # [R, D]
    gram = gram + prior[:, :, None] * np.eye(d)
    return np.linalg.solve(gram, (rhs + prior * mean)[..., None])[..., 0]


def _leading(gram: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` leading eigenvectors of a Gram matrix (the left singular vectors of its unfolding),
    signs fixed so each column's largest entry is positive."""
    vals, vecs = np.linalg.eigh(gram)
    u = vecs[:, ::-1][:, :k]
    flip = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(u.shape[1])])
    return u * flip


def _core(data: np.ndarray, u_id: np.ndarray, u_exp: np.ndarray) -> np.ndarray:
    """``T x2 U_id^T x3 U_exp^T`` -> ``float32 [id_dims, exp_dims, 3N]``."""
    out = np.zeros((u_id.shape[1], u_exp.shape[1], data.shape[2]), np.float32)
    uid = u_id.T.astype(np.float32)
    for e in range(len(data)):
        y = uid @ data[e]                                               # [id_dims, 3N]
        out += u_exp[e].astype(np.float32)[None, :, None] * y[:, None, :]
    return out


def _blendshape_map(u_exp: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Affine ridge map ``[b, 1] -> weights``: ``[exp_dims + 1, 52]``."""
    x = np.concatenate([u_exp, np.ones((len(u_exp), 1))], axis=1)
    reg = BLENDSHAPE_RIDGE * np.trace(x.T @ x) / x.shape[1] * np.eye(x.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(x.T @ x + reg, x.T @ weights.astype(np.float64))


def load_bilinear(face=None, config: BilinearConfig = BilinearConfig(), cache: Path | None = None,
                  show_progress: bool = False) -> BilinearFace:
    """The model, from the cache when it holds this config for this topology, else built and cached."""
    from models.face import synthface
    from models.paths import data_dir

    face = face or synthface()
    topo = face.template.topology_id
    folder = Path(cache) if cache is not None else data_dir() / "cache"
    path = folder / f"bilinear_{config.key(topo)}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return BilinearFace(**{k: z[k] for k in z.files}, topology_id=topo, config=config)
        except (OSError, ValueError, KeyError):
            pass                                            # a broken cache file: rebuild it
    model = build_bilinear(face, config, show_progress)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **model.arrays())
    tmp.replace(path)
    return model
