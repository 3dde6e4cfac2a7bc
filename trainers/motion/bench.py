"""``facecast bench motion``: what Motion3DGAN's runtime API costs on this machine.

Figures (milliseconds, best of several runs):
- ``sample_ms``: ``sample(model, label, k)`` for k in 1, 16, 64;
- ``apply_ms``: ``apply_motion`` of 16 motions onto SynthFace's template landmarks;
- ``retime_ms``: one motion to a 2.5 s neutral -> apex -> hold -> neutral clip at 60 fps;
- ``blend_ms``: geodesic interpolation of 16 motion pairs;
- ``clip_ms``: the whole path for one clip (sample, apply, retime).
"""

from __future__ import annotations

import time

import torch

from models.face import synthface_template
from models.motion3dgan import (
    apply_motion,
    blend,
    count_parameters,
    load_motion3dgan,
    retime,
    sample,
)
from trainers.bench import best_of, emit, machine

REPEATS = 5


def run_bench(checkpoint: str, json_path: str | None) -> dict:
    start = time.perf_counter()
    model = load_motion3dgan(checkpoint)
    label = model.cfg.labels[0]
    with torch.no_grad():
        template = synthface_template()
        neutral = torch.as_tensor(template.landmark_points(template.vertices), dtype=torch.float32)
        sample_ms = {str(k): 1e3 * best_of(lambda k=k: sample(model, label, k, seed=0), REPEATS) for k in (1, 16, 64)}
        motions = sample(model, label, 16, seed=0)
        other = sample(model, model.cfg.labels[-1], 16, seed=1)
        frames = apply_motion(motions, neutral)
        result = {
            "checkpoint": str(checkpoint),
            "generator_parameters": count_parameters(model.generator),
            "sample_ms": sample_ms,
            "apply_ms": 1e3 * best_of(lambda: apply_motion(motions, neutral), REPEATS),
            "retime_ms": 1e3 * best_of(lambda: retime(frames[0], fps=60, onset_s=0.5, hold_s=1.2, offset_s=0.8),
                                       REPEATS),
            "blend_ms": 1e3 * best_of(lambda: blend(motions, other, 0.5), REPEATS),
            "clip_ms": 1e3 * best_of(lambda: retime(apply_motion(sample(model, label, 1), neutral)[0], fps=60,
                                                     onset_s=0.5, hold_s=1.2, offset_s=0.8), REPEATS),
            "clip_frames": int(retime(frames[0], fps=60, onset_s=0.5, hold_s=1.2, offset_s=0.8).shape[0]),
            "threads": torch.get_num_threads(),
            "machine": machine(),
        }
    result["seconds"] = time.perf_counter() - start
    emit(result, json_path)
    return result
