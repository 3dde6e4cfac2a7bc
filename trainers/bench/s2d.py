"""``facecast bench s2d``: S2D-Dec decode latency and throughput, and the same
figures for a straight re-implementation with the official code's dense
up-sampling matrices, measured in the same run.

JSON: ``{"params", "macs", "ms_batch1", "meshes_per_s": {"1", "16", "64"},
"dense_reference": {same keys}, "threads", "machine"}``; ``macs`` counts the
multiply-adds of one mesh (linear layers, spiral convolutions, up-sampling).
"""

from __future__ import annotations

import argparse
import time

import torch

from trainers.bench import emit, machine

BATCHES = (1, 16, 64)


def count_macs(model: torch.nn.Module) -> int:
    """Multiply-adds of one decoded mesh."""
    from models.layers import SpiralConv, Upsample
    from models.s2d import _DenseUpsample

    macs = 0
    for m in model.modules():
        if isinstance(m, SpiralConv):
            macs += m.spirals.shape[0] * m.linear.in_features * m.linear.out_features
        elif isinstance(m, torch.nn.Linear) and not any(m is c.linear for c in model.modules()
                                                         if isinstance(c, SpiralConv)):
            macs += m.in_features * m.out_features
    # up-sampling: the channel count of each block's input
    convs = [m for m in model.modules() if isinstance(m, SpiralConv)]
    ups = [m for m in model.modules() if isinstance(m, (Upsample, _DenseUpsample))]
    for up, conv in zip(ups, convs):
        channels = conv.linear.in_features // conv.spirals.shape[1]
        if isinstance(up, Upsample):
            macs += up.idx.numel() * channels
        else:
            macs += up.u.shape[0] * up.u.shape[1] * channels
    return int(macs)


def measure(model: torch.nn.Module, template, repeats: int = 5) -> dict:
    model.eval()
    v = torch.from_numpy(template.vertices)[None]
    lm = torch.from_numpy(template.landmark_points())[None]
    out = {"params": sum(p.numel() for p in model.parameters()), "macs": count_macs(model), "meshes_per_s": {}}
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for b in BATCHES:
            n, nl = v.expand(b, -1, -1).contiguous(), lm.expand(b, -1, -1).contiguous()
            d = torch.randn(b, 68, 3, generator=gen) * 0.002
            model(n, d, nl)
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                model(n, d, nl)
                best = min(best, time.perf_counter() - t)
            out["meshes_per_s"][str(b)] = round(b / best, 1)
            if b == 1:
                out["ms_batch1"] = round(best * 1000, 3)
    return out


def run(args: argparse.Namespace) -> int:
    from models.face import synthface_template
    from models.paths import data_dir
    from models.s2d import S2DDecoder, build_s2d, load_s2d
    from trainers.s2d.cli import shipped_checkpoint

    torch.set_num_threads(args.threads)
    template = synthface_template()
    path = shipped_checkpoint()
    if path.is_file():
        model, _ = load_s2d(path, template.topology_id)
        source = str(path)
    else:
        model = build_s2d(template, data_dir() / "cache")
        source = "untrained (no shipped checkpoint): the same architecture and cost"
    dense = S2DDecoder(model.config, _topology_of(model), dense_reference=True)
    dense.load_state_dict(_dense_state(model, dense))
    result = measure(model, template)
    result["dense_reference"] = measure(dense, template)
    result.update({"vertices": template.n_vertices, "model": source, "threads": args.threads,
                   "machine": machine()})
    emit(result, args.json)
    return 0


def _topology_of(model):
    from models.layers import SpiralTopology

    topo = SpiralTopology.empty(model.config.sizes, model.config.spiral_lengths)
    return topo


def _dense_state(model, dense) -> dict:
    """The sparse model's weights, with dense ``U`` matrices built from its gathers."""
    from models.s2d import _DenseUpsample

    state = {k: v for k, v in model.state_dict().items() if ".ups." not in k}
    for i, (up, dup) in enumerate(zip(model.decoder.ups, dense.decoder.ups)):
        ref = _DenseUpsample(up.idx, up.weights, dup.u.shape[1] - 1)
        state[f"decoder.ups.{i}.u"] = ref.u
    return state


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("s2d", help="S2D-Dec decode speed, sparse vs dense up-sampling")
    p.add_argument("--json", help="also write the JSON here")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.set_defaults(func=run)
