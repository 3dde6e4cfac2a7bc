"""The Neural3DMM-style baseline of the S2D paper's Table 1.

A spiral mesh autoencoder (Bouritsas et al., ICCV 2019) whose encoder reads
the neutral mesh into a latent code; the 204 numbers of the normalised
landmark motion are concatenated to that code and a spiral decoder (the
same as S2D-Dec's) outputs the per-vertex displacement. It must encode the
identity to place the motion, which is why it degrades on unseen identities.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from models.checkpoint import CheckpointMeta
from models.layers import Downsample, SpiralConv, SpiralTopology, chunked, with_dummy
from models.s2d import (
    DECODE_CHUNK,
    N_LANDMARKS,
    S2DOutput,
    SpiralDecoder,
    landmark_scale,
)

FAMILY = "neural3dmm"


@dataclass(frozen=True)
class Neural3DMMConfig:
    sizes: tuple[int, ...]
    topology_id: str
    latent: int = 16
    spiral_lengths: tuple[int, ...] = (10, 10, 7, 7, 7)
    spiral_dilations: tuple[int, ...] = (2, 2, 1, 1, 1)
    enc_filters: tuple[int, ...] = (3, 16, 32, 64, 128)
    dec_filters: tuple[int, ...] = (128, 64, 32, 32, 16, 3)
    scale_output: bool = True


class Neural3DMMLandmarks(nn.Module):
    """Encoder(neutral) ++ landmark motion -> spiral decoder -> displacement."""

    def __init__(self, config: Neural3DMMConfig, topology: SpiralTopology | None = None):
        super().__init__()
        self.config = config
        topo = topology or SpiralTopology.empty(config.sizes, config.spiral_lengths)
        levels = len(config.sizes) - 1
        ef = config.enc_filters
        self.enc_convs = nn.ModuleList(SpiralConv(ef[i], ef[i + 1], topo.spirals[i]) for i in range(levels))
        self.downs = nn.ModuleList(Downsample(topo.keep[i]) for i in range(levels))
        self.n_coarse = config.sizes[-1]
        self.fc_enc = nn.Linear((self.n_coarse + 1) * ef[-1], config.latent)
        self.fc_dec = nn.Linear(config.latent + N_LANDMARKS * 3, (self.n_coarse + 1) * config.dec_filters[0])
        self.decoder = SpiralDecoder(topo, config.dec_filters)
        self.chunk = DECODE_CHUNK
        self.register_buffer("input_scale", torch.ones(()))
        self.register_buffer("output_scale", torch.ones(()))
        self.register_buffer("mesh_mean", torch.zeros(config.sizes[0], 3))
        self.register_buffer("mesh_scale", torch.ones(()))

    @torch.no_grad()
    def set_scales(self, displacement: torch.Tensor, target: torch.Tensor, neutral: torch.Tensor) -> None:
        """As ``S2DDecoder.set_scales``, plus the neutral meshes' mean and scale for the encoder."""
        self.input_scale.fill_(1.0 / float(displacement.std().clamp_min(1e-12)))
        self.output_scale.fill_(float(target.std().clamp_min(1e-12)))
        self.mesh_mean.copy_(neutral.mean(0))
        self.mesh_scale.fill_(float((neutral - neutral.mean(0)).std().clamp_min(1e-12)))

    def encode(self, neutral: torch.Tensor) -> torch.Tensor:
        """``[B, N, 3]`` -> latent ``[B, latent]``."""
        x = with_dummy((neutral - self.mesh_mean) / self.mesh_scale)
        for conv, down in zip(self.enc_convs, self.downs):
            x = down(conv(x))
        return self.fc_enc(x.reshape(x.shape[0], -1))

    def forward(self, neutral: torch.Tensor, displacement: torch.Tensor,
                neutral_landmarks: torch.Tensor | None = None) -> S2DOutput:
        b = neutral.shape[0]
        z = torch.cat([chunked(self.encode, self.chunk, neutral), displacement.reshape(b, -1) * self.input_scale],
                      dim=1)
        x = self.fc_dec(z).reshape(b, self.n_coarse + 1, -1)
        d = chunked(self.decoder, self.chunk, x) * self.output_scale
        if self.config.scale_output:
            d = d * landmark_scale(neutral_landmarks)[:, None, None]
        return S2DOutput(vertices=neutral + d, displacement=d)

    def checkpoint_meta(self, data: dict | None = None, metrics: dict | None = None) -> CheckpointMeta:
        return CheckpointMeta(family=FAMILY, config=asdict(self.config), topology_id=self.config.topology_id,
                              data=data or {}, metrics=metrics or {})
