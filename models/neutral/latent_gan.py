"""Latent GAN neutralization (Kacem et al., 2021, "Disentangled face identity
representations for joint 3D face recognition and neutralisation").

Three parts, trained end to end (``trainers.neutral.latent_gan``):

1. a Chebyshev graph-convolution autoencoder (CoMA-style): four ChebConv
   layers of 16, 16, 16, 32 filters (``K = 6``), each followed by quadric
   down-sampling, and a linear layer to a 25-d latent ``z``; the decoder
   mirrors it (linear layer, then up-sampling + ChebConv per level, the last
   one linear to ``x, y, z``). The autoencoder works on per-vertex
   normalised offsets from the training mean face (as CoMA);
2. a latent generator ``G`` (FC 100-200-50-25) mapping an expressive face's
   latent to its neutral's latent, judged by a conditional discriminator
   (a candidate neutral latent given the expressive latent);
3. an identity classifier on the neutralised latent ``G(z)``.

Meshes are ``float32 [B, N, 3]`` in metres. Inside the networks features
are vertex-major, ``[N, B, C]``, so that a level's sparse Laplacian
multiplies all meshes and channels of a batch in one ``[N, N] @ [N, B * C]``.

Two outputs (``LatentGanConfig.residual`` picks the one ``neutralize`` gives):

    direct     decode(G(E(x)))                         the paper's output
    residual   x + decode(G(E(x))) - decode(E(x))      the decoded latent change applied to
                                                       the input (the default)

Deviation from the paper: the residual output is the default. A 25-d
latent cannot reconstruct a face to better than a few tenths of a
millimetre, comparable to the expression itself on SynthFace's local
expressions (0.51 mm from the true neutral on average); the residual form
cancels the autoencoder's reconstruction error where the expression does
not reach. Both figures are stored in the checkpoint's metrics
(``avd_direct_mm``, ``avd_residual_mm``).

The Chebyshev convolution uses the scaled normalised Laplacian
``L~ = 2 L / lambda_max - I`` with ``L = I - D^-1/2 A D^-1/2`` and
``lambda_max = 2`` (its upper bound, as CoMA does), i.e.
``L~ = -D^-1/2 A D^-1/2``; the recurrence ``T_0 = x``, ``T_1 = L~ x``,
``T_k = 2 L~ T_{k-1} - T_{k-2}`` and ``y = sum_k T_k W_k + b``.
Each level's Laplacian and the sampling maps are buffers of the network:
a checkpoint rebuilds the model from the file alone.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from models.checkpoint import (
    CheckpointError, CheckpointMeta, building, check_index, check_topology, config_from_dict, config_parts,
    load_checkpoint, tensor_of,
)
from models.neutral.base import Neutralizer, as_batch

FAMILY = "neutral_latent_gan"
#: the dtypes of its checkpoint: the pyramid's index tables int64, the rest float32
DTYPES = {"pyramid.lap_index*": torch.int64, "pyramid.keep*": torch.int64, "pyramid.up_idx*": torch.int64,
          "*": torch.float32}
#: per-vertex standard deviations are floored at this share of their median (still vertices)
STD_FLOOR_SHARE = 0.05
#: meshes per forward inside ``neutralize`` / ``reconstruct`` (bounds the memory of a big batch)
INFER_CHUNK = 32
#: negative slope of the generator's, discriminator's and classifier's leaky ReLUs
LEAKY_SLOPE = 0.2


@dataclass(frozen=True)
class LatentGanConfig:
    """The method: architecture and the paper's loss weights (stored in checkpoints)."""

    filters: tuple[int, ...] = (16, 16, 16, 32)     #: encoder ChebConv filters, one per level
    cheb_k: int = 6                                 #: Chebyshev polynomial order K
    latent: int = 25
    generator: tuple[int, ...] = (100, 200, 50)     #: hidden widths of G (its output is ``latent``)
    discriminator: tuple[int, ...] = (100, 50)      #: hidden widths of the conditional discriminator
    classifier: tuple[int, ...] = (100,)            #: hidden widths of the identity classifier
    lambda_l2l: float = 0.5                         #: ||G(E(x)) - E(x_neutral)||^2
    lambda_l1: float = 0.4                          #: |decode(G(E(x))) - x_neutral|
    lambda_gan: float = 1.0
    lambda_id: float = 0.05                         #: identity cross-entropy on G(E(x))
    lambda_rec: float = 2.0                         #: |decode(E(x)) - x|
    #: |x + decode(G(E(x))) - decode(E(x)) - x_neutral|, the residual output's own loss (not the paper's)
    lambda_residual: float = 0.0
    #: G(z) = z + MLP(z), the MLP's last layer zero at start: an untrained model does nothing (not the paper's)
    generator_skip: bool = True
    residual: bool = True                           #: ``neutralize`` gives the residual output

    @staticmethod
    def from_dict(d: dict, path: str | Path = "checkpoint") -> LatentGanConfig:
        return config_from_dict(LatentGanConfig, d, path)


@dataclass(frozen=True)
class LatentGanShape:
    """What the template and the training set fix (stored in checkpoints beside the config)."""

    sizes: tuple[int, ...]            #: vertices per level, the template first
    laplacian_nnz: tuple[int, ...]    #: non-zeros of each level's scaled Laplacian
    n_identities: int                 #: classes of the identity classifier (training identities)

    @staticmethod
    def from_dict(d: dict, path: str | Path = "checkpoint") -> LatentGanShape:
        return config_from_dict(LatentGanShape, d, path)


@dataclass(frozen=True)
class LatentGanOutput:
    """One forward of the autoencoder and the generator; meshes ``[B, N, 3]`` in metres."""

    z: torch.Tensor               #: ``[B, latent]`` the input's latent
    neutral_z: torch.Tensor       #: ``[B, latent]`` G(z), the neutralised latent
    reconstruction: torch.Tensor  #: decode(z)
    direct: torch.Tensor          #: decode(G(z)), the paper's neutral face
    residual: torch.Tensor        #: x + decode(G(z)) - decode(z)


# ---- graph operators (pure functions) ------------------------------------------------------

def scaled_laplacian(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """The mesh graph's scaled normalised Laplacian ``L~ = -D^-1/2 A D^-1/2`` (``lambda_max = 2``).

    Args:
        faces: ``int [F, 3]`` triangles.
        n_vertices: ``N``; a vertex in no triangle gets an all-zero row.

    Returns:
        ``(index int64 [2, nnz], value float32 [nnz])``, rows sorted (a coalesced COO matrix).
    """
    f = np.asarray(faces, np.int64)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    a = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_vertices, n_vertices)).tocsr()
    a.data[:] = 1.0                                      # duplicates summed: back to a 0/1 adjacency
    degree = np.asarray(a.sum(axis=1)).ravel()
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1.0)), 0.0)
    lap = (-(sp.diags(inv_sqrt) @ a @ sp.diags(inv_sqrt))).tocoo()
    order = np.lexsort((lap.col, lap.row))
    index = np.stack([lap.row[order], lap.col[order]]).astype(np.int64)
    return index, lap.data[order].astype(np.float32)


def chebyshev_basis(x: torch.Tensor, laplacian: torch.Tensor, k: int) -> torch.Tensor:
    """``T_0 x .. T_{K-1} x``: ``x [N, B, C]``, ``laplacian`` sparse ``[N, N]`` -> ``[N, B, K * C]``.

    ``T_0 = x``, ``T_1 = L~ x``, ``T_k = 2 L~ T_{k-1} - T_{k-2}``; the result's
    channels are ordered ``k``-major (``[.., k * C + c]``)."""
    n, b, c = x.shape
    flat = x.reshape(n, b * c)
    terms = [flat]
    if k > 1:
        terms.append(torch.sparse.mm(laplacian, flat))
    for _ in range(2, k):
        terms.append(2.0 * torch.sparse.mm(laplacian, terms[-1]) - terms[-2])
    return torch.stack([t.reshape(n, b, c) for t in terms], dim=2).reshape(n, b, k * c)


def chebyshev_sum(u: torch.Tensor, laplacian: torch.Tensor, k: int) -> torch.Tensor:
    """``sum_k T_k u_k`` by Clenshaw's recurrence: ``u [N, B, K * C]`` (``k``-major) -> ``[N, B, C]``.

    ``b_K = b_{K+1} = 0``, ``b_k = u_k + 2 L~ b_{k+1} - b_{k+2}``, result ``u_0 + L~ b_1 - b_2``:
    the same ``K - 1`` products as ``chebyshev_basis``, on ``C`` channels."""
    n, b, kc = u.shape
    c = kc // k
    terms = u.reshape(n, b, k, c).unbind(2)
    after = after2 = None                                       # b_{k+1}, b_{k+2}
    for i in range(k - 1, 0, -1):
        bk = terms[i].reshape(n, b * c)
        if after is not None:
            bk = bk + 2.0 * torch.sparse.mm(laplacian, after)
        if after2 is not None:
            bk = bk - after2
        after, after2 = bk, after
    y = terms[0].reshape(n, b * c)
    if after is not None:
        y = y + torch.sparse.mm(laplacian, after)
    if after2 is not None:
        y = y - after2
    return y.reshape(n, b, c)


class ChebConv(nn.Module):
    """Chebyshev graph convolution: ``x [N, B, C_in]``, sparse ``L~ [N, N]`` -> ``[N, B, C_out]``.

    ``y = sum_k T_k(L~) x W_k + b``. The products run on the narrower side: the
    basis ``T_k x`` when ``C_in <= C_out``, else ``x W_k`` first, summed by
    Clenshaw's recurrence (same result; the CPU is short of memory bandwidth,
    not arithmetic)."""

    def __init__(self, in_channels: int, out_channels: int, k: int):
        super().__init__()
        self.k = k
        self.linear = nn.Linear(k * in_channels, out_channels)

    def forward(self, x: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
        c, out = x.shape[-1], self.linear.out_features
        if c <= out:
            return self.linear(chebyshev_basis(x, laplacian, self.k))
        w = self.linear.weight.reshape(out, self.k, c).permute(2, 1, 0).reshape(c, self.k * out)
        return chebyshev_sum(x @ w, laplacian, self.k) + self.linear.bias


class MeshPyramid(nn.Module):
    """Each level's scaled Laplacian and the down/up-sampling maps between levels, as buffers.

    ``lap_index{i} int64 [2, nnz_i]``, ``lap_value{i} float [nnz_i]``: level ``i``'s Laplacian;
    ``keep{i} int64 [N_{i+1}]``: level ``i`` -> ``i + 1`` (a selection);
    ``up_idx{i} int64 [N_i, 3]``, ``up_w{i} float [N_i, 3]``: level ``i + 1`` -> ``i`` (barycentric).
    """

    def __init__(self, shape: LatentGanShape):
        super().__init__()
        self.sizes = list(shape.sizes)
        for i, (n, nnz) in enumerate(zip(shape.sizes, shape.laplacian_nnz)):
            self.register_buffer(f"lap_index{i}", torch.zeros(2, nnz, dtype=torch.long))
            self.register_buffer(f"lap_value{i}", torch.zeros(nnz))
        for i in range(len(shape.sizes) - 1):
            self.register_buffer(f"keep{i}", torch.zeros(shape.sizes[i + 1], dtype=torch.long))
            self.register_buffer(f"up_idx{i}", torch.zeros(shape.sizes[i], 3, dtype=torch.long))
            self.register_buffer(f"up_w{i}", torch.zeros(shape.sizes[i], 3))

    @torch.no_grad()
    def fill(self, hierarchy) -> None:
        """Set the buffers from a ``models.geometry.sampling.MeshHierarchy``."""
        for i, n in enumerate(self.sizes):
            index, value = scaled_laplacian(hierarchy.faces(i), n)
            getattr(self, f"lap_index{i}").copy_(torch.from_numpy(index))
            getattr(self, f"lap_value{i}").copy_(torch.from_numpy(value))
        for i, lv in enumerate(hierarchy.levels[:len(self.sizes) - 1]):
            getattr(self, f"keep{i}").copy_(torch.from_numpy(lv.keep.astype(np.int64)))
            getattr(self, f"up_idx{i}").copy_(torch.from_numpy(lv.up_idx.astype(np.int64)))
            getattr(self, f"up_w{i}").copy_(torch.from_numpy(lv.up_w.astype(np.float32)))

    def laplacian(self, level: int) -> torch.Tensor:
        """Level ``level``'s ``L~`` as a sparse ``[N, N]`` tensor."""
        index, value = getattr(self, f"lap_index{level}"), getattr(self, f"lap_value{level}")
        n = self.sizes[level]
        return self._sparse(("lap", level), index, value, (n, n))

    def upsampling(self, level: int) -> torch.Tensor:
        """Level ``level + 1`` -> ``level`` as a sparse ``[N_level, N_level+1]`` tensor (3 weights a row)."""
        idx, w = getattr(self, f"up_idx{level}"), getattr(self, f"up_w{level}")
        rows = torch.arange(idx.shape[0], device=idx.device)[:, None].expand_as(idx)
        return self._sparse(("up", level), torch.stack([rows.reshape(-1), idx.reshape(-1)]), w.reshape(-1),
                            (self.sizes[level], self.sizes[level + 1]), idx, w)

    def _sparse(self, key, index, value, size, *sources) -> torch.Tensor:
        """A sparse CSR tensor, built once per key and rebuilt when its source buffers change
        (``load_state_dict`` writes buffers in place, which bumps their version)."""
        cache = self.__dict__.setdefault("_sparse_cache", {})
        tag = tuple((t._version, t.data_ptr()) for t in (sources or (index, value)))
        if cache.get(key, (None,))[0] != tag:
            coo = torch.sparse_coo_tensor(index, value, size, check_invariants=False).coalesce()
            with warnings.catch_warnings():       # "sparse CSR support is in beta": measured 2-5x faster than COO
                warnings.simplefilter("ignore", UserWarning)
                cache[key] = (tag, coo.to_sparse_csr())
        return cache[key][1]

    def down(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """``[N_level, B, C] -> [N_level+1, B, C]`` (a selection)."""
        return x.index_select(0, getattr(self, f"keep{level}"))

    def up(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """``[N_level+1, B, C] -> [N_level, B, C]`` (barycentric interpolation)."""
        n, b, c = x.shape
        return torch.sparse.mm(self.upsampling(level), x.reshape(n, b * c)).reshape(-1, b, c)


# ---- networks ---------------------------------------------------------------------------------

def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers ``sizes[0] -> .. -> sizes[-1]`` with leaky ReLUs between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(LEAKY_SLOPE))
    return nn.Sequential(*layers)


class LatentGenerator(nn.Module):
    """``G``: latents ``[B, latent]`` -> neutral latents ``[B, latent]``, an MLP (FC 100-200-50-25).

    With ``skip`` it predicts the latent change, ``G(z) = z + MLP(z)``, and its last layer
    starts at zero: an untrained model maps every face to itself."""

    def __init__(self, latent: int, hidden: tuple[int, ...], skip: bool):
        super().__init__()
        self.skip = skip
        self.mlp = mlp([latent, *hidden, latent])
        if skip:
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.mlp(z) if self.skip else self.mlp(z)


class ChebEncoder(nn.Module):
    """Normalised meshes ``[N_0, B, 3]`` -> latents ``[B, latent]``."""

    def __init__(self, config: LatentGanConfig, sizes: tuple[int, ...]):
        super().__init__()
        channels = [3, *config.filters]
        self.convs = nn.ModuleList(ChebConv(channels[i], channels[i + 1], config.cheb_k)
                                   for i in range(len(config.filters)))
        self.fc = nn.Linear(sizes[len(config.filters)] * channels[-1], config.latent)
        self.act = nn.ELU()

    def forward(self, x: torch.Tensor, pyramid: MeshPyramid) -> torch.Tensor:
        for level, conv in enumerate(self.convs):
            x = pyramid.down(self.act(conv(x, pyramid.laplacian(level))), level)
        return self.fc(x.transpose(0, 1).reshape(x.shape[1], -1))


class ChebDecoder(nn.Module):
    """Latents ``[B, latent]`` -> normalised meshes ``[N_0, B, 3]`` (the encoder mirrored)."""

    def __init__(self, config: LatentGanConfig, sizes: tuple[int, ...]):
        super().__init__()
        levels = len(config.filters)
        self.coarse = (sizes[levels], config.filters[-1])
        self.fc = nn.Linear(config.latent, self.coarse[0] * self.coarse[1])
        channels = [*config.filters[::-1], 3]                  # 32, 16, 16, 16, 3
        self.convs = nn.ModuleList(ChebConv(channels[i], channels[i + 1], config.cheb_k) for i in range(levels))
        self.act = nn.ELU()

    def forward(self, z: torch.Tensor, pyramid: MeshPyramid) -> torch.Tensor:
        x = self.fc(z).reshape(z.shape[0], *self.coarse).transpose(0, 1)
        last = len(self.convs) - 1
        for block, conv in enumerate(self.convs):
            level = last - block                                 # 3, 2, 1, 0
            x = conv(pyramid.up(x, level), pyramid.laplacian(level))
            if block < last:
                x = self.act(x)
        return x


class LatentGanNet(nn.Module):
    """All modules of the method and the data normalisation (``mean``, ``std``: ``[N, 3]`` metres)."""

    def __init__(self, config: LatentGanConfig, shape: LatentGanShape):
        super().__init__()
        if len(shape.sizes) != len(config.filters) + 1:
            raise ValueError(f"{len(config.filters)} encoder layers need {len(config.filters) + 1} mesh levels, "
                             f"got sizes {shape.sizes}")
        self.config, self.shape = config, shape
        n = shape.sizes[0]
        self.register_buffer("mean", torch.zeros(n, 3))
        self.register_buffer("std", torch.ones(n, 3))
        self.pyramid = MeshPyramid(shape)
        self.encoder = ChebEncoder(config, shape.sizes)
        self.decoder = ChebDecoder(config, shape.sizes)
        self.generator = LatentGenerator(config.latent, config.generator, config.generator_skip)
        self.discriminator = mlp([2 * config.latent, *config.discriminator, 1])
        self.classifier = mlp([config.latent, *config.classifier, max(shape.n_identities, 1)])

    @torch.no_grad()
    def set_normalisation(self, meshes: torch.Tensor) -> None:
        """Mean face and per-vertex standard deviation from training meshes ``[M, N, 3]``."""
        self.mean.copy_(meshes.mean(0))
        std = meshes.std(0)
        self.std.copy_(std.clamp_min(float(std.median()) * STD_FLOOR_SHARE))

    def normalise(self, meshes: torch.Tensor) -> torch.Tensor:
        """Meshes ``[B, N, 3]`` (metres) -> normalised offsets ``[B, N, 3]``."""
        return (meshes - self.mean) / self.std

    def encode(self, meshes: torch.Tensor) -> torch.Tensor:
        """Meshes ``[B, N, 3]`` (metres) -> latents ``[B, latent]``."""
        return self.encoder(self.normalise(meshes).transpose(0, 1), self.pyramid)

    def decode_normalised(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, latent]`` -> normalised offsets ``[B, N, 3]``."""
        return self.decoder(z, self.pyramid).transpose(0, 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, latent]`` -> meshes ``[B, N, 3]`` (metres)."""
        return self.decode_normalised(z) * self.std + self.mean

    def judge(self, neutral_z: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Discriminator logits ``[B]``: is ``neutral_z`` the true neutral latent of the face whose latent is ``z``?"""
        return self.discriminator(torch.cat([neutral_z, z], dim=1))[:, 0]

    def forward(self, meshes: torch.Tensor) -> LatentGanOutput:
        """Meshes ``[B, N, 3]`` -> both outputs (one decoder pass over ``[z; G(z)]``)."""
        z = self.encode(meshes)
        g = self.generator(z)
        both = self.decode(torch.cat([z, g]))
        rec, direct = both[:len(z)], both[len(z):]
        return LatentGanOutput(z, g, rec, direct, meshes + direct - rec)


# ---- the method -------------------------------------------------------------------------------

class LatentGan(Neutralizer):
    """The latent GAN neutralizer around a ``LatentGanNet`` (inference only; CPU)."""

    name = "latent_gan"

    def __init__(self, net: LatentGanNet, topology_id: str | None, data: dict | None = None,
                 metrics: dict | None = None):
        self.net = net.eval()
        self.topology_id = topology_id
        self.data = dict(data or {})
        self.metrics = dict(metrics or {})

    @property
    def config(self) -> LatentGanConfig:
        return self.net.config

    @property
    def n_vertices(self) -> int:
        return self.net.shape.sizes[0]

    @torch.no_grad()
    def outputs(self, meshes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(direct, residual, reconstruction)``, each ``float32 [B, N, 3]``, for meshes ``[B, N, 3]``."""
        a = torch.from_numpy(as_batch(meshes, self.n_vertices))
        parts = [self.net(a[i:i + INFER_CHUNK]) for i in range(0, len(a), INFER_CHUNK)]
        return tuple(torch.cat([getattr(p, key) for p in parts]).numpy()
                     for key in ("direct", "residual", "reconstruction"))

    def neutralize(self, meshes: np.ndarray) -> np.ndarray:
        """Expressive faces ``[B, N, 3]`` -> neutral faces: the residual output (or the direct one
        when ``config.residual`` is off)."""
        direct, residual, _ = self.outputs(meshes)
        return residual if self.config.residual else direct

    @torch.no_grad()
    def reconstruct(self, meshes: np.ndarray) -> np.ndarray:
        """The autoencoder's reconstruction ``decode(E(x))`` of meshes ``[B, N, 3]``."""
        a = torch.from_numpy(as_batch(meshes, self.n_vertices))
        return torch.cat([self.net.decode(self.net.encode(a[i:i + INFER_CHUNK]))
                          for i in range(0, len(a), INFER_CHUNK)]).numpy()

    def meta(self) -> CheckpointMeta:
        return CheckpointMeta(family=FAMILY,
                              config={"config": asdict(self.config), "shape": asdict(self.net.shape)},
                              topology_id=self.topology_id, data=self.data, metrics=self.metrics)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint stores (``save_checkpoint(path, model.state_dict(), model.meta())``)."""
        return self.net.state_dict()


def build_latent_gan(template, cache_dir: str | Path, config: LatentGanConfig = LatentGanConfig(),
                     n_identities: int = 1) -> LatentGan:
    """A fresh (untrained) model for a ``FaceTemplate``; the quadric hierarchy is cached by topology id.

    ``n_identities``: classes of the identity classifier (the training identities)."""
    from models.geometry.sampling import cached_hierarchy

    h = cached_hierarchy(template.vertices, template.faces, template.topology_id, cache_dir)
    levels = len(config.filters)
    if len(h.sizes) < levels + 1:
        raise ValueError(f"the hierarchy has {len(h.sizes) - 1} levels, the encoder needs {levels}")
    nnz = tuple(scaled_laplacian(h.faces(i), n)[1].size for i, n in enumerate(h.sizes[:levels + 1]))
    shape = LatentGanShape(tuple(h.sizes[:levels + 1]), nnz, n_identities)
    net = LatentGanNet(config, shape)
    net.pyramid.fill(h)
    net.mean.copy_(torch.from_numpy(np.asarray(template.vertices, np.float32)))
    return LatentGan(net, template.topology_id)


def check_tables(path: str | Path, shape: LatentGanShape, state: dict[str, torch.Tensor]) -> None:
    """Refuse a checkpoint whose mesh pyramid does not fit ``shape`` (``CheckpointError``
    naming the file, the tensor and the bad range): the sparse matrices are built without
    torch's invariant checks, so an index past a level's vertices must never reach them.

    Level ``i`` has ``N_i = sizes[i]`` vertices: ``pyramid.lap_index{i} [2, nnz_i]`` (with
    ``lap_value{i} [nnz_i]``) rows and columns in ``[0, N_i)``; ``pyramid.keep{i} [N_{i+1}]``
    in ``[0, N_i)``; ``pyramid.up_idx{i} [N_i, 3]`` (with ``up_w{i}``) in ``[0, N_{i+1})``."""
    sizes, nnz = shape.sizes, shape.laplacian_nnz
    if not sizes or min(sizes) < 1 or len(nnz) != len(sizes) or min(nnz) < 0 or shape.n_identities < 0:
        raise CheckpointError(f"{path}: shape {asdict(shape)} is not a mesh pyramid (positive sizes, "
                              "one Laplacian size per level)")
    for i, n in enumerate(sizes):
        name = f"pyramid.lap_index{i}"
        check_index(path, name, tensor_of(path, state, name, (2, nnz[i])), n, f"mesh level {i} ({n} vertices)")
        tensor_of(path, state, f"pyramid.lap_value{i}", (nnz[i],))
    for i in range(len(sizes) - 1):
        name = f"pyramid.keep{i}"
        check_index(path, name, tensor_of(path, state, name, (sizes[i + 1],)), sizes[i],
                    f"mesh level {i} ({sizes[i]} vertices)")
        name = f"pyramid.up_idx{i}"
        check_index(path, name, tensor_of(path, state, name, (sizes[i], 3)), sizes[i + 1],
                    f"mesh level {i + 1} ({sizes[i + 1]} vertices)")
        tensor_of(path, state, f"pyramid.up_w{i}", (sizes[i], 3))


def load_latent_gan(path: str | Path, topology_id: str | None = None) -> LatentGan:
    """Rebuild the method from its checkpoint alone; refuse (``CheckpointError`` naming the file)
    a checkpoint for another topology, or one whose config or pyramid does not fit."""
    meta, state = load_checkpoint(path, family=FAMILY, dtypes=DTYPES)
    if topology_id is not None:
        check_topology(meta, topology_id, path)
    config, shape = config_parts(meta.config, ("config", "shape"), path)
    config, shape = LatentGanConfig.from_dict(config, path), LatentGanShape.from_dict(shape, path)
    check_tables(path, shape, state)
    with building(path, "latent GAN"):
        net = LatentGanNet(config, shape)
        net.load_state_dict(state)
    return LatentGan(net, meta.topology_id, meta.data, meta.metrics)
