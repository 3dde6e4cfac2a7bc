"""S2D-Dec: sparse landmark motion to dense mesh motion (Otberdout et al., CVPR 2022).

Input: the motion of the 68 landmarks from a neutral face to a target
expression, each landmark set centred and divided by its Frobenius norm
(as the official code does), ``float [B, 68, 3]``. A linear layer maps the
204 numbers to 128 features on the coarsest level of a mesh hierarchy; four
up-sampling blocks with spiral convolutions (128 -> 64 -> 32 -> 32 -> 16 ->
3, ELU, the last linear) produce a per-vertex displacement that is added to
the neutral mesh.

One deviation from the official code: the output displacement is
multiplied by the Frobenius norm of the neutral's centred landmarks
(``scale_output``), so the decoder works in the same scale-free units as its
input and a larger face gets proportionally larger motion; the official
decoder outputs metres directly. ``scale_output=False`` gives the official
behaviour.

Up-sampling is a gather of three coarse vertices with barycentric weights
(``models.layers.Upsample``), not the dense ``U`` matrices of the official
code; ``dense_reference=True`` builds those dense matrices instead, for the
benchmark that shows what the sparse design buys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.checkpoint import (
    CheckpointError, CheckpointMeta, building, check_index, check_topology, config_from_dict, load_checkpoint,
    tensor_of,
)
from models.layers import SpiralConv, SpiralTopology, Upsample, chunked
from models.srvf import normalise_landmarks

FAMILY = "s2d"
N_LANDMARKS = 68
#: the dtypes an S2D-Dec checkpoint stores (first matching name pattern): index tables int64, the rest float32
DTYPES = {"*.spirals": torch.int64, "*.idx": torch.int64, "*": torch.float32}
#: meshes per internal chunk of a forward (measured best on a 2-core CPU)
DECODE_CHUNK = 2


@dataclass(frozen=True)
class S2DConfig:
    """Everything needed to rebuild the decoder (stored in checkpoints)."""

    sizes: tuple[int, ...]                          #: vertices per level, template first
    topology_id: str
    spiral_lengths: tuple[int, ...] = (10, 10, 7, 7, 7)
    spiral_dilations: tuple[int, ...] = (2, 2, 1, 1, 1)
    filters: tuple[int, ...] = (128, 64, 32, 32, 16, 3)
    scale_output: bool = True

    @staticmethod
    def from_dict(d: dict, path: str | Path = "checkpoint") -> S2DConfig:
        return config_from_dict(S2DConfig, d, path)


@dataclass(frozen=True)
class S2DOutput:
    """``vertices`` and ``displacement``: ``float [B, N, 3]`` (metres)."""

    vertices: torch.Tensor
    displacement: torch.Tensor


def normalize_landmarks(landmarks: torch.Tensor) -> torch.Tensor:
    """Centre each landmark set and divide by its Frobenius norm: ``[..., 68, 3]``
    (the official code's ``process_landmarks``; ``models.srvf`` does the same
    for Motion3DGAN's curves)."""
    return normalise_landmarks(landmarks).points


def landmark_displacement(target: torch.Tensor, neutral: torch.Tensor) -> torch.Tensor:
    """S2D-Dec's input: ``normalize(target) - normalize(neutral)``, ``[..., 68, 3]``."""
    return normalize_landmarks(target) - normalize_landmarks(neutral)


def landmark_scale(neutral_landmarks: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of the centred neutral landmarks ``[..., 68, 3] -> [...]``."""
    return normalise_landmarks(neutral_landmarks).scale


class SpiralDecoder(nn.Module):
    """Features on the coarsest level -> per-vertex values on level 0.

    Shared by S2D-Dec and the Neural3DMM-style baseline.
    """

    def __init__(self, topo: SpiralTopology, filters: tuple[int, ...], dense_reference: bool = False):
        super().__init__()
        levels = len(topo.sizes) - 1
        if len(filters) != levels + 2:
            raise ValueError(f"{levels} up-sampling blocks need {levels + 2} filter sizes, got {filters}")
        self.sizes = topo.sizes
        self.ups = nn.ModuleList()
        self.convs = nn.ModuleList()
        for block in range(levels):
            level = levels - 1 - block                     # 3, 2, 1, 0
            self.ups.append(_DenseUpsample(topo.up_idx[level], topo.up_w[level], topo.sizes[level + 1])
                            if dense_reference else Upsample(topo.up_idx[level], topo.up_w[level]))
            self.convs.append(SpiralConv(filters[block], filters[block + 1], topo.spirals[level]))
        self.out = SpiralConv(filters[-2], filters[-1], topo.spirals[0], activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N_coarsest + 1, filters[0]] -> [B, N_0, filters[-1]]``."""
        for up, conv in zip(self.ups, self.convs):
            x = conv(up(x))
        return self.out(x)[:, :-1]


class _DenseUpsample(nn.Module):
    """The official code's dense ``U`` matrix (benchmark reference only)."""

    def __init__(self, idx: torch.Tensor, weights: torch.Tensor, n_coarse: int):
        super().__init__()
        n_fine = idx.shape[0]
        u = torch.zeros(n_fine + 1, n_coarse + 1)
        u.index_put_((torch.arange(n_fine)[:, None].expand(-1, 3), idx), weights, accumulate=True)
        u[-1, -1] = 1.0
        self.register_buffer("u", u)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.u, x)


class S2DDecoder(nn.Module):
    """S2D-Dec. Stateless at inference: all inputs through ``forward``."""

    def __init__(self, config: S2DConfig, topology: SpiralTopology | None = None, dense_reference: bool = False):
        super().__init__()
        self.config = config
        topo = topology or SpiralTopology.empty(config.sizes, config.spiral_lengths)
        if list(topo.sizes) != list(config.sizes):
            raise ValueError(f"topology sizes {topo.sizes} differ from config sizes {config.sizes}")
        f = config.filters
        self.n_coarse = config.sizes[-1]
        # fixed scales that bring the (tiny) normalised landmark motion and the
        # decoder output to unit size; set from the training data, saved with
        # the weights (see ``set_scales``)
        self.register_buffer("input_scale", torch.ones(()))
        self.register_buffer("output_scale", torch.ones(()))
        self.fc = nn.Linear(N_LANDMARKS * 3, (self.n_coarse + 1) * f[0])
        self.decoder = SpiralDecoder(topo, f, dense_reference)
        #: meshes decoded at a time inside one forward: the spiral gathers are
        #: memory-bound and a couple of meshes keep their source in cache
        #: (``facecast bench s2d`` measures batch 1/16/64 with it)
        self.chunk = DECODE_CHUNK

    def forward(self, neutral: torch.Tensor, displacement: torch.Tensor,
                neutral_landmarks: torch.Tensor | None = None) -> S2DOutput:
        """Decode a batch in one forward.

        Args:
            neutral: ``[B, N, 3]`` neutral meshes (metres).
            displacement: ``[B, 68, 3]`` normalised landmark motion
                (``landmark_displacement(target, neutral_landmarks)``).
            neutral_landmarks: ``[B, 68, 3]`` the neutrals' landmarks; needed
                when ``config.scale_output`` (the output scale).

        Returns:
            ``S2DOutput`` with the expressive meshes and their displacement.
        """
        b = displacement.shape[0]
        x = self.fc(displacement.reshape(b, -1) * self.input_scale).reshape(b, self.n_coarse + 1, -1)
        d = chunked(self.decoder, self.chunk, x) * self.output_scale
        if self.config.scale_output:
            if neutral_landmarks is None:
                raise ValueError("this S2D-Dec scales its output: pass neutral_landmarks")
            d = d * landmark_scale(neutral_landmarks)[:, None, None]
        return S2DOutput(vertices=neutral + d, displacement=d)

    @torch.no_grad()
    def set_scales(self, displacement: torch.Tensor, target: torch.Tensor) -> None:
        """Fix the input and output scales from training examples: ``displacement``
        the normalised landmark motions ``[M, 68, 3]``, ``target`` what the decoder
        must output for them ``[M, N, 3]`` (in the decoder's units)."""
        self.input_scale.fill_(1.0 / float(displacement.std().clamp_min(1e-12)))
        self.output_scale.fill_(float(target.std().clamp_min(1e-12)))

    # ---- runtime-facing helpers -------------------------------------------
    @torch.no_grad()
    def decode(self, neutral: np.ndarray, neutral_landmarks: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
        """A batch of (neutral mesh, landmark motion) pairs -> meshes, one forward.

        Args:
            neutral: ``float [B, N, 3]`` neutral meshes.
            neutral_landmarks: ``float [B, 68, 3]`` their landmarks.
            target_landmarks: ``float [B, 68, 3]`` the landmarks to reach.

        Returns:
            ``float32 [B, N, 3]`` meshes.
        """
        n = torch.tensor(np.asarray(neutral, np.float32))      # copies: inputs may be read-only memmaps
        nl = torch.tensor(np.asarray(neutral_landmarks, np.float32))
        tl = torch.tensor(np.asarray(target_landmarks, np.float32))
        return self(n, landmark_displacement(tl, nl), nl).vertices.numpy()

    def checkpoint_meta(self, data: dict | None = None, metrics: dict | None = None) -> CheckpointMeta:
        return CheckpointMeta(family=FAMILY, config=asdict(self.config), topology_id=self.config.topology_id,
                              data=data or {}, metrics=metrics or {})


def build_s2d(template, cache_dir: str | Path, **config) -> S2DDecoder:
    """A fresh decoder for a ``FaceTemplate`` (hierarchy cached by topology id)."""
    from models.geometry.sampling import cached_hierarchy

    h = cached_hierarchy(template.vertices, template.faces, template.topology_id, cache_dir)
    cfg = S2DConfig(sizes=tuple(h.sizes), topology_id=template.topology_id, **config)
    up = template.frame.rotation[:, 1]                  # the face's own "up"
    topo = SpiralTopology.from_hierarchy(h, cfg.spiral_lengths, cfg.spiral_dilations, up=up)
    return S2DDecoder(cfg, topo)


def check_tables(path: str | Path, config: S2DConfig, state: dict[str, torch.Tensor]) -> None:
    """Refuse a checkpoint whose index tables do not fit ``config``'s mesh levels
    (``CheckpointError`` naming the file, the tensor and the bad range).

    Level ``l`` has ``sizes[l]`` vertices plus a dummy row. ``decoder.convs.{b}.spirals``
    (level ``l = levels - 1 - b``) and ``decoder.out.spirals`` (level 0) gather from level
    ``l``: ``[sizes[l] + 1, spiral_lengths[l]]``, entries in ``[0, sizes[l]]`` (the dummy
    included). ``decoder.ups.{b}.idx`` (with its ``weights``) up-samples level ``l + 1`` to
    ``l``: ``[sizes[l], 3]``, entries in ``[0, sizes[l + 1])`` (coarse vertices only)."""
    sizes, lengths = config.sizes, config.spiral_lengths
    levels = len(sizes) - 1
    if levels < 1 or min(sizes) < 1 or len(lengths) < len(sizes) or min(lengths) < 1:
        raise CheckpointError(f"{path}: config sizes {list(sizes)} with spiral lengths {list(lengths)} "
                              "are not a mesh hierarchy (two levels or more, a spiral length per level)")
    spirals = {f"decoder.convs.{b}.spirals": levels - 1 - b for b in range(levels)}
    spirals["decoder.out.spirals"] = 0
    for name, level in spirals.items():
        table = tensor_of(path, state, name, (sizes[level] + 1, lengths[level]))
        check_index(path, name, table, sizes[level] + 1, f"mesh level {level} ({sizes[level]} vertices + dummy)")
    for b in range(levels):
        level = levels - 1 - b
        idx = tensor_of(path, state, f"decoder.ups.{b}.idx", (sizes[level], 3))
        tensor_of(path, state, f"decoder.ups.{b}.weights", (sizes[level], 3))
        check_index(path, f"decoder.ups.{b}.idx", idx, sizes[level + 1],
                    f"mesh level {level + 1} ({sizes[level + 1]} vertices)")


def load_s2d(path: str | Path, topology_id: str | None = None) -> tuple[S2DDecoder, CheckpointMeta]:
    """Rebuild a decoder from its checkpoint alone; refuse another topology, and a file whose
    config or tables do not fit the decoder (``check_tables``), with a ``CheckpointError``."""
    meta, state = load_checkpoint(path, family=FAMILY, dtypes=DTYPES)
    if topology_id is not None:
        check_topology(meta, topology_id, path)
    cfg = S2DConfig.from_dict(meta.config, path)
    if cfg.topology_id != meta.topology_id:
        raise CheckpointError(f"{path}: its config is for topology {cfg.topology_id}, "
                              f"its metadata says {meta.topology_id}")
    check_tables(path, cfg, state)
    with building(path, "S2D-Dec"):
        model = S2DDecoder(cfg)
        model.load_state_dict(state)
    model.eval()
    return model, meta
