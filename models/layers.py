"""Mesh layers shared by the spiral networks (S2D-Dec, the Neural3DMM baseline).

Features are ``x: float [B, N + 1, C]``: one row per vertex of a level plus a
dummy vertex (the last row, always zero) that spirals running off a border
point at. Gathers are ``index_select`` on the flattened ``[B * (N + 1), C]``
rows (several times faster on a CPU than advanced indexing of the vertex
axis). Measured here: the gathers are memory-bound, so a small batch keeps
the source in cache; ``chunked`` runs a module over a big batch a few meshes
at a time for that reason (see ``models.s2d``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _batched_index(index: torch.Tensor, batch: int, rows: int) -> torch.Tensor:
    """``index`` (into one mesh's ``rows``) repeated for each mesh of a flattened batch."""
    offsets = torch.arange(batch, device=index.device)[:, None] * rows
    return (offsets + index.reshape(1, -1)).reshape(-1)


def gather_rows(owner: nn.Module, key: str, flat: torch.Tensor, index: torch.Tensor, batch: int,
                rows: int) -> torch.Tensor:
    """Rows ``index`` of each of ``batch`` meshes stacked in ``flat`` (``[batch * rows, C]``).

    The batched index is cached on ``owner`` per batch size and rebuilt when
    ``index`` changes (``load_state_dict`` writes buffers in place, which
    bumps their version)."""
    cache = owner.__dict__.setdefault("_gather_cache", {})
    tag = (key, batch, index._version, index.device, index.data_ptr())
    if tag not in cache:
        for old in [t for t in cache if t[0] == key and t[1] == batch]:
            del cache[old]
        cache[tag] = _batched_index(index, batch, rows)
    return flat.index_select(0, cache[tag])


class SpiralConv(nn.Module):
    """Spiral convolution: gather each vertex's spiral, one linear map.

    ``spirals``: ``int64 [N + 1, L]`` (the dummy's own row included).
    ``x``: ``[B, N + 1, C_in] -> [B, N + 1, C_out]``.
    """

    def __init__(self, in_channels: int, out_channels: int, spirals: torch.Tensor, activation: bool = True):
        super().__init__()
        self.register_buffer("spirals", spirals.long(), persistent=True)
        length = spirals.shape[1]
        self.linear = nn.Linear(in_channels * length, out_channels)
        self.activation = nn.ELU() if activation else nn.Identity()
        mask = torch.ones(spirals.shape[0], 1)
        mask[-1] = 0.0
        self.register_buffer("dummy_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        length = self.spirals.shape[1]
        out = self.linear.out_features
        if out < c:
            # transform first, then gather the (narrower) results: same sum,
            # fewer bytes moved, which is what the CPU is short of
            w = self.linear.weight.reshape(out, length, c).permute(2, 1, 0).reshape(c, length * out)
            xw = (x @ w).reshape(b * n * length, out)
            y = gather_rows(self, "rows", xw, self._rows(), b, n * length).reshape(b, n, length, out).sum(2)
            y = y + self.linear.bias
        else:
            g = gather_rows(self, "spirals", x.reshape(b * n, c), self.spirals, b, n).reshape(b, n, -1)
            y = self.linear(g)
        return self.activation(y) * self.dummy_mask

    def _rows(self) -> torch.Tensor:
        """Row of ``(vertex spirals[n, l], position l)`` in the transformed features."""
        length = self.spirals.shape[1]
        cached = self.__dict__.get("_rows_cache")
        tag = (self.spirals._version, self.spirals.data_ptr())
        if cached is None or cached[0] != tag:
            rows = (self.spirals * length + torch.arange(length, device=self.spirals.device)).reshape(-1)
            cached = (tag, rows)
            self.__dict__["_rows_cache"] = cached
        return cached[1]


class Upsample(nn.Module):
    """Coarse -> fine by barycentric gather: ``[B, Nc + 1, C] -> [B, Nf + 1, C]``.

    ``idx``: ``int64 [Nf, 3]`` coarse vertices, ``weights``: ``float [Nf, 3]``.
    """

    def __init__(self, idx: torch.Tensor, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("idx", idx.long())
        self.register_buffer("weights", weights.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        nf = self.idx.shape[0]
        g = gather_rows(self, "idx", x.reshape(b * n, c), self.idx, b, n).reshape(b, nf, 3, c)
        return with_dummy((g * self.weights[None, :, :, None]).sum(2))


class Downsample(nn.Module):
    """Fine -> coarse by selection: ``[B, Nf + 1, C] -> [B, Nc + 1, C]``."""

    def __init__(self, keep: torch.Tensor):
        super().__init__()
        self.register_buffer("keep", keep.long())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return with_dummy(gather_rows(self, "keep", x.reshape(b * n, c), self.keep, b, n).reshape(b, -1, c))


def with_dummy(x: torch.Tensor) -> torch.Tensor:
    """``[B, N, C]`` -> ``[B, N + 1, C]`` with a zero dummy row."""
    return torch.cat([x, x.new_zeros(x.shape[0], 1, x.shape[2])], dim=1)


def chunked(fn: Callable[..., torch.Tensor], chunk: int, *tensors: torch.Tensor) -> torch.Tensor:
    """``fn`` over the batch ``chunk`` meshes at a time, results concatenated."""
    b = tensors[0].shape[0]
    if b <= chunk:
        return fn(*tensors)
    return torch.cat([fn(*(t[i:i + chunk] for t in tensors)) for i in range(0, b, chunk)])


class SpiralTopology:
    """Per-level spirals and sampling maps of a mesh hierarchy, as tensors.

    ``sizes[i]``: vertices of level ``i`` (level 0 is the template).
    ``spirals[i]``: ``int64 [sizes[i] + 1, lengths[i]]`` (dummy row last, all dummy).
    ``up_idx[i]``, ``up_w[i]``: level ``i + 1`` -> level ``i`` (``[sizes[i], 3]``).
    ``keep[i]``: level ``i`` -> level ``i + 1`` (``[sizes[i + 1]]``).
    """

    def __init__(self, sizes, spirals, up_idx, up_w, keep):
        self.sizes = list(sizes)
        self.spirals, self.up_idx, self.up_w, self.keep = spirals, up_idx, up_w, keep

    @staticmethod
    def from_hierarchy(hierarchy, lengths, dilations, up=None) -> SpiralTopology:
        """Build from a ``models.geometry.sampling.MeshHierarchy``."""
        import numpy as np

        from models.geometry.spirals import spirals as make_spirals

        up_dir = np.array([0.0, 1.0, 0.0]) if up is None else np.asarray(up, np.float64)
        sp = []
        for i, n in enumerate(hierarchy.sizes):
            s = make_spirals(hierarchy.vertices[i], hierarchy.faces(i), lengths[i], dilations[i], up_dir)
            s = np.concatenate([s, np.full((1, lengths[i]), n, dtype=np.int64)])
            sp.append(torch.from_numpy(s))
        lv = hierarchy.levels
        return SpiralTopology(
            hierarchy.sizes, sp,
            [torch.from_numpy(x.up_idx.astype(np.int64)) for x in lv],
            [torch.from_numpy(x.up_w.astype(np.float32)) for x in lv],
            [torch.from_numpy(x.keep.astype(np.int64)) for x in lv])

    @staticmethod
    def empty(sizes, lengths) -> SpiralTopology:
        """Right-shaped empty tensors, to be filled by ``load_state_dict``."""
        sp = [torch.zeros(n + 1, length, dtype=torch.long) for n, length in zip(sizes, lengths)]
        up_idx = [torch.zeros(sizes[i], 3, dtype=torch.long) for i in range(len(sizes) - 1)]
        up_w = [torch.zeros(sizes[i], 3) for i in range(len(sizes) - 1)]
        keep = [torch.zeros(sizes[i + 1], dtype=torch.long) for i in range(len(sizes) - 1)]
        return SpiralTopology(sizes, sp, up_idx, up_w, keep)
