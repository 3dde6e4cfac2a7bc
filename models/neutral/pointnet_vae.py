"""PointNet VAE neutralization (FG 2023, "3D face expression/identity
disentanglement"; official code rmraaron/FaceExpDisentanglement).

A face ``x`` (``float32 [B, N, 3]``, metres) is a point set. A PointNet
encoder (a per-point MLP shared by all points, then a max pool over them)
gives two Gaussians, identity ``(mu_id, logvar_id)`` and expression
``(mu_exp, logvar_exp)``; two decoders give per-vertex offsets from the mean
face and the model is additive::

    x  ~  mean + X_id(z_id) + X_exp(z_exp)

The identity decoder alone gives the face without its expression. Two
outputs (``PointNetVaeConfig.residual`` picks the one ``neutralize`` gives;
both are recorded in the checkpoint's metrics, ``avd_direct_mm`` and
``avd_residual_mm``)::

    direct     mean + X_id(mu_id(x))            the paper's neutral face
    residual   x - X_exp(mu_exp(x))             the input minus its decoded expression (the default)

and two for expression transfer by latent swap (``transfer``)::

    residual   target + X_exp(mu_exp(source))                      (the default)
    direct     mean + X_id(mu_id(target)) + X_exp(mu_exp(source))  the paper's

Why the residual default: SynthFace's expressions are local (most vertices
do not move; the expressive input is 0.51 mm from its true neutral on
average), so a whole-face decoder with a few tenths of a millimetre of
error loses to doing nothing. The residual output is exact wherever the
decoded expression offset is zero and only pays the expression decoder's
error where the face moves.

Architecture (paper -> here):

- encoder: per-point MLP 3-64-64-64-128-1024 with batch norm -> here
  ``widths`` (64, 64, 128, 256), ReLU, no batch norm (the runtime encodes
  one face at a time), on a fixed subset of ``n_points`` template vertices
  (farthest-point sampled on the template once, stored in the checkpoint;
  the same subset in training and at inference, 0 = every vertex). The
  encoder is a function of the point *set*: any order of the subset gives
  the same latents. ``point_features="xyz"`` is the paper's input;
  ``"xyz_offset"`` adds each point's offset from the mean face (a
  per-point feature, as the paper's discriminator concatenates two meshes
  per point).
- decoders: ``z -> 256 -> 3N`` dense (ReLU) -> here ``z -> hidden -> K``
  coefficients of a fixed linear basis of ``K`` offsets (``K x 3N``,
  principal components of the training faces, see
  ``trainers.neutral.pointnet_vae``), which keeps the checkpoint under
  8 MB (a dense ``256 -> 15687`` layer alone is 16 MB per decoder);
  ``k_id = 0`` / ``k_exp = 0`` gives the paper's dense last layer.
- the expression decoder is anchored: ``X_exp(z) = g(z) - g(0)``, so the
  prior's mean is "no expression" and a neutral face's code is pulled
  there by the KL term (not in the paper; it makes the residual output of a
  neutral face exactly the face when its code is 0).

Meshes are ``float32 [B, N, 3]`` in metres throughout; ``B`` faces are
encoded and decoded in one forward.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.checkpoint import (
    CheckpointError, CheckpointMeta, building, check_index, check_topology, config_from_dict, load_checkpoint,
    tensor_of,
)
from models.neutral.base import Neutralizer, as_batch

FAMILY = "neutral_pointnet_vae"
#: the dtypes of its checkpoint: the point subset and batch-norm counters int64, the rest float32
DTYPES = {"points": torch.int64, "*.num_batches_tracked": torch.int64, "*": torch.float32}
#: the point features the encoder accepts and their channels per point
#: octaves of the sine/cosine encoding of "fourier_offset"
FOURIER_OCTAVES = 6
POINT_FEATURES = {"xyz": 3, "xyz_offset": 6, "fourier_offset": 3 * 2 * FOURIER_OCTAVES + 3}
#: how the per-point features become one vector
POOLINGS = ("max", "mean", "max_mean")
#: the outputs ``neutralize`` and ``transfer`` can give
ROUTES = ("residual", "direct")
#: meshes per forward inside ``neutralize`` / ``transfer`` / ``reconstruct`` (bounds memory)
INFER_CHUNK = 64


@dataclass(frozen=True)
class PointNetVaeConfig:
    """The method's architecture and mode (stored in checkpoints; rebuilds the model)."""

    n_vertices: int = 0                       #: vertices of the face topology (set by ``build_pointnet_vae``)
    neutral_gt: bool = False                  #: trained with the true neutrals ("pointnet_vae_gt") or without
    residual: bool = True                     #: ``neutralize``/``transfer`` give the residual route (else direct)
    n_points: int = 1024                      #: encoder's fixed vertex subset (0: every vertex)
    point_features: str = "xyz"               #: "xyz" (the paper) or "xyz_offset"
    widths: tuple[int, ...] = (64, 64, 128, 256)   #: the per-point MLP
    z_id: int = 32                            #: identity latent size
    z_exp: int = 32                           #: expression latent size
    hidden: tuple[int, ...] = (256,)          #: decoder hidden widths
    k_id: int = 48                            #: identity basis size (0: a dense last layer)
    k_exp: int = 64                           #: expression basis size (0: a dense last layer)
    batch_norm: bool = True                   #: batch norm in the per-point MLP (the paper's; eval mode at inference)
    pooling: str = "max"                      #: "max" (the paper) or "max_mean" (max and mean pools side by side)

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.point_features not in POINT_FEATURES:
            raise ValueError(f"point_features must be one of {tuple(POINT_FEATURES)}, got {self.point_features!r}")
        if min(self.z_id, self.z_exp) < 1 or not self.widths or not self.hidden:
            raise ValueError("latents need at least one dimension; widths and hidden at least one layer")
        if min(self.n_points, self.k_id, self.k_exp) < 0:
            raise ValueError("n_points, k_id and k_exp must be >= 0")

    @property
    def name(self) -> str:
        return "pointnet_vae_gt" if self.neutral_gt else "pointnet_vae"

    @property
    def encoder_points(self) -> int:
        """Points the encoder sees per face."""
        return self.n_points if 0 < self.n_points < self.n_vertices else self.n_vertices

    @staticmethod
    def from_dict(d: dict, path: str | Path = "checkpoint") -> PointNetVaeConfig:
        return config_from_dict(PointNetVaeConfig, d, path)


@dataclass(frozen=True)
class Gaussians:
    """Diagonal Gaussians of a batch: ``mu``, ``logvar`` ``[B, Z]``."""

    mu: torch.Tensor
    logvar: torch.Tensor

    def sample(self) -> torch.Tensor:
        """``z = mu + sigma * eps`` (reparameterised), ``[B, Z]``."""
        return self.mu + torch.exp(0.5 * self.logvar) * torch.randn_like(self.mu)

    def kl(self) -> torch.Tensor:
        """``KL(q || N(0, I))`` summed over dimensions, ``[B]``."""
        return 0.5 * (self.mu.pow(2) + self.logvar.exp() - 1.0 - self.logvar).sum(dim=1)


@dataclass(frozen=True)
class PointNetVaeOutput:
    """One deterministic forward (latent means); meshes and offsets ``[B, N, 3]`` in metres."""

    z_id: Gaussians
    z_exp: Gaussians
    id_offset: torch.Tensor        #: X_id(mu_id)
    exp_offset: torch.Tensor       #: X_exp(mu_exp)
    reconstruction: torch.Tensor   #: mean + X_id + X_exp
    direct: torch.Tensor           #: mean + X_id (the paper's neutral)
    residual: torch.Tensor         #: x - X_exp


# ---- pure functions ---------------------------------------------------------------------------

def farthest_points(vertices: np.ndarray, k: int, start: int = 0) -> np.ndarray:
    """``k`` well-spread vertex indices of ``vertices [N, 3]`` (greedy farthest-point order), ``int64 [k]``."""
    v = np.asarray(vertices, np.float64)
    k = min(int(k), len(v))
    chosen = np.empty(k, np.int64)
    chosen[0] = start
    dist = np.linalg.norm(v - v[start], axis=1)
    for i in range(1, k):
        chosen[i] = int(np.argmax(dist))
        dist = np.minimum(dist, np.linalg.norm(v - v[chosen[i]], axis=1))
    return np.sort(chosen)


def fourier_features(p: torch.Tensor, octaves: int) -> torch.Tensor:
    """``[..., 3] -> [..., 6 * octaves]``: ``sin`` and ``cos`` of ``2^k pi p``, ``k < octaves``."""
    freq = torch.pi * 2.0 ** torch.arange(octaves, dtype=p.dtype, device=p.device)
    angles = (p[..., None] * freq).flatten(-2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def mlp(widths: list[int], last_activation: bool = False) -> nn.Sequential:
    """Linear layers of ``widths`` with ReLU between (and after the last if ``last_activation``)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


# ---- networks -----------------------------------------------------------------------------------

class PointMLP(nn.Module):
    """The shared per-point MLP: ``[B, P, C] -> [B, P, widths[-1]]`` (Linear, batch norm, ReLU per layer)."""

    def __init__(self, channels: int, widths: tuple[int, ...], batch_norm: bool):
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in zip((channels, *widths[:-1]), widths):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b) if batch_norm else nn.Identity(), nn.ReLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        b, p, c = points.shape
        return self.layers(points.reshape(b * p, c)).reshape(b, p, -1)

    def folded(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer as ``(W^T [in, out], b [out])`` with its (eval-mode) batch norm folded in:
        ``relu(x @ W^T + b)`` per layer is the module's output, for inference."""
        out = []
        mods = list(self.layers)
        for linear, norm in zip(mods[0::3], mods[1::3]):
            w, b = linear.weight, linear.bias
            if isinstance(norm, nn.BatchNorm1d):
                s = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                w, b = w * s[:, None], (b - norm.running_mean) * s + norm.bias
            out.append((w.t().contiguous(), b))
        return out


class PointNetEncoder(nn.Module):
    """Points ``[B, P, C]`` -> identity and expression Gaussians; invariant to the order of the ``P`` points."""

    def __init__(self, channels: int, widths: tuple[int, ...], z_id: int, z_exp: int,
                 batch_norm: bool = True, pooling: str = "max"):
        super().__init__()
        self.point_mlp = PointMLP(channels, widths, batch_norm)
        self.pooling = pooling
        width = widths[-1] * (2 if pooling == "max_mean" else 1)
        self.feature_norm = nn.BatchNorm1d(width) if batch_norm else nn.Identity()
        self.id_head = nn.Linear(width, 2 * z_id)
        self.exp_head = nn.Linear(width, 2 * z_exp)

    def forward(self, points: torch.Tensor) -> tuple[Gaussians, Gaussians]:
        if self.training or torch.is_grad_enabled():
            f = self.point_mlp(points)
            pools = {"max": (f.amax(dim=1),), "mean": (f.mean(dim=1),), "max_mean": (f.amax(dim=1), f.mean(dim=1))}
            pooled = torch.cat(pools[self.pooling], dim=1)
        else:
            pooled = self._pooled_inference(points)
        return self._heads(self.feature_norm(pooled))

    def _pooled_inference(self, points: torch.Tensor) -> torch.Tensor:
        """The pooled feature ``[B, W]`` as ``forward`` computes it, in fewer passes over the
        ``B x P`` point rows: batch norms folded into the linear layers, ReLU in place, and
        for max pooling the last layer's bias and ReLU applied after the pool (both commute
        with a max over points), so the widest layer is one matrix product and one max."""
        b, p, c = points.shape
        h = points.reshape(b * p, c)
        layers = self.point_mlp.folded()
        for w, bias in layers[:-1]:
            h = torch.addmm(bias, h, w).relu_()
        w, bias = layers[-1]
        if self.pooling == "max":
            return (h @ w).reshape(b, p, -1).amax(dim=1).add_(bias).relu_()
        f = torch.addmm(bias, h, w).relu_().reshape(b, p, -1)
        return f.mean(dim=1) if self.pooling == "mean" else torch.cat([f.amax(dim=1), f.mean(dim=1)], dim=1)

    def _heads(self, feature: torch.Tensor) -> tuple[Gaussians, Gaussians]:
        mu_id, logvar_id = self.id_head(feature).chunk(2, dim=1)
        mu_exp, logvar_exp = self.exp_head(feature).chunk(2, dim=1)
        return Gaussians(mu_id, logvar_id), Gaussians(mu_exp, logvar_exp)


class OffsetDecoder(nn.Module):
    """Latents ``[B, Z]`` -> per-vertex offsets ``[B, N, 3]`` (metres).

    With ``k > 0`` the MLP gives ``k`` coefficients of the ``basis`` buffer
    (``[k, 3N]``, metres per unit coefficient); with ``k = 0`` a dense last
    layer gives the ``3N`` values (times the ``scale`` buffer). ``anchored``:
    the output at ``z = 0`` is subtracted, so ``decode(0) = 0``."""

    def __init__(self, z: int, hidden: tuple[int, ...], k: int, n_vertices: int, anchored: bool = False):
        super().__init__()
        self.n_vertices = n_vertices
        self.anchored = anchored
        out = k if k > 0 else 3 * n_vertices
        self.net = mlp([z, *hidden, out])
        self.register_buffer("basis", torch.zeros(k, 3 * n_vertices) if k > 0 else torch.zeros(0))
        self.register_buffer("scale", torch.ones(()))

    def coefficients(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, Z] -> [B, k]`` (or ``[B, 3N]`` without a basis), before the basis."""
        c = self.net(z)
        if self.anchored:
            c = c - self.net(torch.zeros_like(z[:1]))
        return c

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c = self.coefficients(z)
        flat = c @ self.basis if self.basis.numel() else c * self.scale
        return flat.reshape(len(z), self.n_vertices, 3)


class PointNetVaeNet(nn.Module):
    """Encoder and both decoders with the fixed tensors (mean face, point subset, input scales, bases).

    Stateless at inference: every input through the methods; built empty from
    a ``PointNetVaeConfig`` and filled by ``load_state_dict``."""

    def __init__(self, config: PointNetVaeConfig):
        super().__init__()
        if config.n_vertices < 1:
            raise ValueError("PointNetVaeConfig.n_vertices must be set (build_pointnet_vae does)")
        self.config = config
        n = config.n_vertices
        self.register_buffer("mean", torch.zeros(n, 3))
        self.register_buffer("points", torch.arange(config.encoder_points, dtype=torch.int64))
        self.register_buffer("center", torch.zeros(3))
        self.register_buffer("scale", torch.ones(()))           #: point coordinates are divided by this
        self.register_buffer("offset_scale", torch.ones(()))    #: offsets from the mean face by this
        self.encoder = PointNetEncoder(POINT_FEATURES[config.point_features], config.widths,
                                       config.z_id, config.z_exp, config.batch_norm, config.pooling)
        self.id_decoder = OffsetDecoder(config.z_id, config.hidden, config.k_id, n)
        self.exp_decoder = OffsetDecoder(config.z_exp, config.hidden, config.k_exp, n, anchored=True)

    def point_features(self, meshes: torch.Tensor) -> torch.Tensor:
        """The encoder's input: meshes ``[B, N, 3]`` -> points ``[B, P, C]`` (the fixed subset, normalised)."""
        x = meshes[:, self.points]
        p = (x - self.center) / self.scale
        kind = self.config.point_features
        feats = [fourier_features(p, FOURIER_OCTAVES) if kind == "fourier_offset" else p]
        if kind != "xyz":
            feats.append((x - self.mean[self.points]) / self.offset_scale)
        return torch.cat(feats, dim=2)

    def encode(self, meshes: torch.Tensor) -> tuple[Gaussians, Gaussians]:
        """Meshes ``[B, N, 3]`` -> (identity, expression) Gaussians."""
        return self.encoder(self.point_features(meshes))

    def forward(self, meshes: torch.Tensor) -> PointNetVaeOutput:
        """Meshes ``[B, N, 3]`` -> every output at the latent means."""
        g_id, g_exp = self.encode(meshes)
        x_id, x_exp = self.id_decoder(g_id.mu), self.exp_decoder(g_exp.mu)
        direct = self.mean + x_id
        return PointNetVaeOutput(g_id, g_exp, x_id, x_exp, direct + x_exp, direct, meshes - x_exp)


# ---- the method -------------------------------------------------------------------------------

class PointNetVae(Neutralizer):
    """The PointNet VAE neutralizer around a ``PointNetVaeNet`` (inference; CPU)."""

    def __init__(self, net: PointNetVaeNet, topology_id: str | None, data: dict | None = None,
                 metrics: dict | None = None):
        self.net = net.eval()
        self.topology_id = topology_id
        self.name = net.config.name
        self.data = dict(data or {})
        self.metrics = dict(metrics or {})

    @property
    def config(self) -> PointNetVaeConfig:
        return self.net.config

    def _chunks(self, meshes: np.ndarray) -> list[torch.Tensor]:
        a = torch.from_numpy(as_batch(meshes, self.config.n_vertices))
        return [a[i:i + INFER_CHUNK] for i in range(0, len(a), INFER_CHUNK)]

    @torch.no_grad()
    def outputs(self, meshes: np.ndarray) -> dict[str, np.ndarray]:
        """``{"direct", "residual", "reconstruction"}``, each ``float32 [B, N, 3]``, for meshes ``[B, N, 3]``."""
        parts = [self.net(c) for c in self._chunks(meshes)]
        return {k: torch.cat([getattr(p, k) for p in parts]).numpy() for k in ("direct", "residual", "reconstruction")}

    @torch.no_grad()
    def encode(self, meshes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Meshes ``[B, N, 3]`` -> latent means ``(z_id float32 [B, z_id], z_exp float32 [B, z_exp])``."""
        parts = [self.net.encode(c) for c in self._chunks(meshes)]
        return (torch.cat([p[0].mu for p in parts]).numpy(), torch.cat([p[1].mu for p in parts]).numpy())

    @torch.no_grad()
    def neutralize(self, meshes: np.ndarray, route: str | None = None) -> np.ndarray:
        """Expressive faces ``[B, N, 3]`` -> neutral faces ``float32 [B, N, 3]``: the residual
        route ``x - X_exp`` (default) or the direct ``mean + X_id``."""
        residual = self._route(route)
        out = []
        for c in self._chunks(meshes):
            g_id, g_exp = self.net.encode(c)
            out.append(c - self.net.exp_decoder(g_exp.mu) if residual
                       else self.net.mean + self.net.id_decoder(g_id.mu))
        return torch.cat(out).numpy()

    @torch.no_grad()
    def transfer(self, source: np.ndarray, target: np.ndarray, route: str | None = None) -> np.ndarray:
        """The expressions of ``source [B, N, 3]`` on the neutral faces ``target [B, N, 3]`` by latent
        swap: ``target + X_exp(source)`` (residual, default) or ``mean + X_id(target) + X_exp(source)``."""
        residual = self._route(route)
        src, tgt = self._chunks(source), self._chunks(target)
        if sum(map(len, src)) != sum(map(len, tgt)):
            raise ValueError(f"source and target must hold as many faces, got {len(source)} and {len(target)}")
        out = []
        for s, t in zip(src, tgt):
            x_exp = self.net.exp_decoder(self.net.encode(s)[1].mu)
            base = t if residual else self.net.mean + self.net.id_decoder(self.net.encode(t)[0].mu)
            out.append(base + x_exp)
        return torch.cat(out).numpy()

    @torch.no_grad()
    def reconstruct(self, meshes: np.ndarray) -> np.ndarray:
        """``mean + X_id + X_exp`` of meshes ``[B, N, 3]`` (for E_rec)."""
        return torch.cat([self.net(c).reconstruction for c in self._chunks(meshes)]).numpy()

    def _route(self, route: str | None) -> bool:
        """True for the residual route."""
        if route is None:
            return self.config.residual
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
        return route == "residual"

    def meta(self) -> CheckpointMeta:
        return CheckpointMeta(family=FAMILY, config=asdict(self.config), topology_id=self.topology_id,
                              data=self.data, metrics=self.metrics)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint stores (``save_checkpoint(path, model.state_dict(), model.meta())``)."""
        return self.net.state_dict()


def build_pointnet_vae(template, config: PointNetVaeConfig = PointNetVaeConfig()) -> PointNetVae:
    """A fresh (untrained) model for a ``FaceTemplate``: the mean face is the template and the
    encoder's point subset is farthest-point sampled on it (the trainer sets the rest)."""
    config = replace(config, n_vertices=int(template.n_vertices))
    net = PointNetVaeNet(config)
    vertices = np.asarray(template.vertices, np.float32)
    with torch.no_grad():
        net.mean.copy_(torch.from_numpy(vertices))
        net.points.copy_(torch.from_numpy(farthest_points(vertices, config.encoder_points)))
        net.center.copy_(torch.from_numpy(vertices.mean(axis=0)))
    return PointNetVae(net, template.topology_id)


def check_tables(path: str | Path, config: PointNetVaeConfig, state: dict[str, torch.Tensor]) -> None:
    """Refuse a checkpoint whose encoder point subset does not fit the face (``CheckpointError``
    naming the file, the tensor and the bad range): ``points [encoder_points]`` gathers from
    the ``n_vertices`` rows of a mesh and of ``mean [n_vertices, 3]``."""
    n = config.n_vertices
    if n < 1:
        raise CheckpointError(f"{path}: config n_vertices must be positive, got {n}")
    tensor_of(path, state, "mean", (n, 3))
    check_index(path, "points", tensor_of(path, state, "points", (config.encoder_points,)), n,
                f"the face's {n} vertices")


def load_pointnet_vae(path: str | Path, topology_id: str | None = None) -> PointNetVae:
    """Rebuild the method from its checkpoint alone; refuse (``CheckpointError`` naming the file)
    a checkpoint for another topology, or one whose config or point subset does not fit."""
    meta, state = load_checkpoint(path, family=FAMILY, dtypes=DTYPES)
    if topology_id is not None:
        check_topology(meta, topology_id, path)
    config = PointNetVaeConfig.from_dict(meta.config, path)
    check_tables(path, config, state)
    with building(path, "PointNet VAE"):
        net = PointNetVaeNet(config)
        net.load_state_dict(state)
    return PointNetVae(net, meta.topology_id, meta.data, meta.metrics)
