"""Motion3DGAN's model and runtime API: samples on the sphere, lengths, loading,
applying a motion to an identity, retiming and blending."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models import srvf
from models.checkpoint import CheckpointError, CheckpointMeta, save_checkpoint
from models.face import synthface_template
from models.motion3dgan import (
    ANCHOR_LANDMARKS,
    FAMILY,
    Motion,
    Motion3DGAN,
    Motion3DGANConfig,
    apply_motion,
    at_progress,
    blend,
    count_parameters,
    envelope,
    load_motion3dgan,
    retime,
    sample,
    to_metric,
)

LABELS = ("mouth_open", "eyebrow", "high_smile")


def _model(seed: int = 0) -> Motion3DGAN:
    torch.manual_seed(seed)
    model = Motion3DGAN(Motion3DGANConfig(labels=LABELS))
    g = torch.Generator().manual_seed(seed)
    model.reference.copy_(srvf.normalise(torch.randn(30, 204, generator=g)))
    model.log_length_mean.copy_(torch.log(torch.tensor([0.1, 0.02, 0.04])))
    model.log_length_std.copy_(torch.tensor([0.1, 0.2, 0.15]))
    model.length_min.copy_(torch.tensor([0.08, 0.01, 0.03]))
    model.length_max.copy_(torch.tensor([0.12, 0.03, 0.05]))
    return model.eval()


@pytest.fixture(scope="module")
def model() -> Motion3DGAN:
    return _model()


@pytest.fixture(scope="module")
def neutral() -> torch.Tensor:
    t = synthface_template()
    return torch.as_tensor(t.landmark_points(t.vertices), dtype=torch.float64)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(LABELS), st.integers(1, 9), st.floats(0.1, 100.0))
def test_samples_always_lie_on_the_unit_sphere(seed, label, k, gain):
    """Whatever the noise and however large the generator's raw output, exp_p lands on the sphere."""
    m = _model(seed % 7)
    with torch.no_grad():
        m.generator.out.weight.mul_(gain)
    motion = sample(m, label, k, seed=seed)
    assert motion.q.shape == (k, 30, 204) and motion.length.shape == (k,)
    assert torch.allclose(srvf.inner(motion.q, motion.q), torch.ones(k), atol=1e-5)
    assert torch.allclose(srvf.inner(motion.tangent, m.reference[None]), torch.zeros(k), atol=1e-4)
    assert bool((srvf.inner(motion.tangent, motion.tangent).sqrt() < torch.pi).all())   # never wraps around
    index = LABELS.index(label)
    assert bool(((motion.length >= m.length_min[index]) & (motion.length <= m.length_max[index])).all())


def test_sampling_is_seeded_and_labels_are_checked(model):
    a, b = sample(model, "eyebrow", 3, seed=5), sample(model, 1, 3, seed=5)
    assert torch.equal(a.q, b.q) and torch.equal(a.label, torch.full((3,), 1))
    assert not torch.equal(sample(model, "eyebrow", 3, seed=6).q, a.q)
    with pytest.raises(ValueError, match="unknown expression label 'yawn'.*mouth_open"):
        sample(model, "yawn")
    with pytest.raises(ValueError, match="out of range"):
        sample(model, 7)
    with pytest.raises(ValueError, match="k must be"):
        sample(model, "eyebrow", 0)


def test_generator_is_far_smaller_than_the_official(model):
    # the official TensorFlow generator: about 80 M parameters (its first layer alone is 200 x 365,568)
    assert count_parameters(model.generator) < 1_000_000


def test_checkpoint_round_trip_and_bad_files(model, tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model.state_dict(), CheckpointMeta(FAMILY, model.cfg.to_dict(), None))
    loaded = load_motion3dgan(path)
    assert loaded.cfg == model.cfg
    assert torch.equal(sample(loaded, "high_smile", 4, seed=1).q, sample(model, "high_smile", 4, seed=1).q)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01 not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_motion3dgan(bad)
    with pytest.raises(CheckpointError, match="not found: .*missing.safetensors"):
        load_motion3dgan(tmp_path / "missing.safetensors")
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, model.state_dict(), CheckpointMeta("s2d", {}, "abc"))
    with pytest.raises(CheckpointError, match="'s2d' checkpoint, expected 'motion3dgan'"):
        load_motion3dgan(other)
    wrong = tmp_path / "wrong.safetensors"
    save_checkpoint(wrong, {"reference": model.reference}, CheckpointMeta(FAMILY, model.cfg.to_dict(), None))
    with pytest.raises(CheckpointError, match="wrong.safetensors: does not match"):
        load_motion3dgan(wrong)


def _jaw_drop(neutral: torch.Tensor, frames: int = 20, mm: float = 8.0) -> torch.Tensor:
    """A metric trajectory: the chin and lower lip go down, the anchors stay."""
    traj = neutral[None].repeat(frames, 1, 1)
    moving = list(range(5, 12)) + list(range(55, 60)) + [65, 66, 67]
    traj[:, moving, 1] -= torch.linspace(0, mm / 1000, frames, dtype=neutral.dtype)[:, None]
    return traj


def test_apply_motion_recovers_a_metric_trajectory(neutral):
    traj = _jaw_drop(neutral)
    curve = srvf.landmark_curve(traj, 30)
    enc = srvf.srvf(curve)
    motion = Motion(q=enc.q[None], length=enc.length[None], label=torch.zeros(1, dtype=torch.int64))
    out = apply_motion(motion, neutral)[0]
    assert out.shape == (31, 68, 3)
    assert torch.allclose(out[0], neutral, atol=1e-12)
    assert torch.allclose(out[-1], traj[-1], atol=1e-9)                 # the apex, in metres
    assert torch.allclose(out[:, list(ANCHOR_LANDMARKS)], neutral[list(ANCHOR_LANDMARKS)].expand(31, -1, -1), atol=1e-9)
    drop = neutral[8, 1] - out[:, 8, 1]                                  # chin goes down steadily to 8 mm
    assert bool((drop[1:] >= drop[:-1] - 1e-12).all()) and float(drop[-1]) == pytest.approx(0.008, rel=1e-6)


def test_apply_motion_follows_the_identity_it_is_given(model, neutral):
    motion = sample(model, "mouth_open", 2, seed=3)
    motion = Motion(motion.q.double(), motion.length.double(), motion.label)
    base = apply_motion(motion, neutral)
    shift = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    assert torch.allclose(apply_motion(motion, neutral + shift), base + shift, atol=1e-12)
    assert torch.allclose(apply_motion(motion, 1.5 * neutral), 1.5 * base, atol=1e-12)


def test_to_metric_undoes_per_frame_normalisation_when_anchors_stay(neutral):
    traj = _jaw_drop(neutral, frames=5)
    n = srvf.normalise_landmarks(traj)
    assert torch.allclose(to_metric(n.points, neutral), traj, atol=1e-12)
    # mapping back with the neutral's own centre and scale instead would move the anchors
    naive = n.points * n.scale[0] + n.centre[0]
    assert float((naive[-1, list(ANCHOR_LANDMARKS)] - neutral[list(ANCHOR_LANDMARKS)]).abs().max()) > 1e-5


def test_envelope_shapes():
    t = torch.tensor([-1.0, 0.0, 0.25, 0.5, 1.0, 1.5, 1.75, 2.0, 3.0])
    lin = envelope(t, onset_s=0.5, hold_s=1.0, offset_s=0.5, ease="linear")
    assert torch.allclose(lin, torch.tensor([0, 0, 0.5, 1, 1, 1, 0.5, 0, 0], dtype=torch.float64))
    cos = envelope(t, onset_s=0.5, hold_s=1.0, offset_s=0.5)
    assert torch.allclose(cos, torch.tensor([0, 0, 0.5, 1, 1, 1, 0.5, 0, 0], dtype=torch.float64))
    smooth = envelope(torch.tensor([0.125]), onset_s=0.5, ease="smoothstep")
    assert float(smooth) == pytest.approx(3 * 0.25**2 - 2 * 0.25**3)
    stay = envelope(torch.tensor([0.0, 0.5, 10.0]), onset_s=0.5, hold_s=0.0, offset_s=0.0)
    assert torch.allclose(stay, torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown easing 'bounce'"):
        envelope(t, 0.5, ease="bounce")


def test_retime_to_any_rate_and_duration(model, neutral):
    frames = apply_motion(sample(model, "high_smile", 1, seed=0), neutral.float())[0]
    clip60 = retime(frames, fps=60, onset_s=0.5, hold_s=1.0, offset_s=0.5)
    assert clip60.shape == (121, 68, 3)
    assert torch.allclose(clip60[0], frames[0]) and torch.allclose(clip60[-1], frames[0], atol=1e-7)
    assert torch.allclose(clip60[30:91], frames[-1].expand(61, -1, -1))   # the apex is held for a second
    clip30 = retime(frames, fps=30, onset_s=0.5, hold_s=1.0, offset_s=0.5)
    assert clip30.shape == (61, 68, 3) and torch.allclose(clip30, clip60[::2], atol=1e-6)
    held = retime(frames, fps=24, onset_s=1.0, offset_s=0.0)
    assert held.shape == (25, 68, 3) and torch.allclose(held[-1], frames[-1])
    with pytest.raises(ValueError, match="fps"):
        retime(frames, fps=0, onset_s=1.0)


def test_at_progress_interpolates_keyframes():
    key = torch.arange(4, dtype=torch.float64)[:, None, None].expand(4, 2, 3)   # keyframe t holds value t
    out = at_progress(key, torch.tensor([0.0, 0.5, 1.0, 1 / 6]))
    assert torch.allclose(out[:, 0, 0], torch.tensor([0.0, 1.5, 3.0, 0.5], dtype=torch.float64))


def test_blend_is_the_geodesic_between_motions(model):
    a, b = sample(model, "mouth_open", 2, seed=0), sample(model, "eyebrow", 2, seed=1)
    assert torch.allclose(blend(a, b, 0.0).q, a.q, atol=1e-6) and torch.allclose(blend(a, b, 1.0).q, b.q, atol=1e-5)
    mid = blend(a, b, 0.5)
    assert torch.allclose(srvf.inner(mid.q, mid.q), torch.ones(2), atol=1e-5)
    d = srvf.geodesic_distance(a.q, b.q)
    assert torch.allclose(srvf.geodesic_distance(a.q, mid.q), d / 2, atol=1e-4)
    assert torch.allclose(mid.length, (a.length + b.length) / 2)
    assert torch.equal(blend(a, b, 0.25).label, a.label) and torch.equal(blend(a, b, 0.75).label, b.label)
