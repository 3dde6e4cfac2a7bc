"""SRVF toolkit: encoding, the sphere's maps, geodesics and the Karcher mean,
checked against analytic truth and, with hypothesis, on arbitrary curves and points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from models import srvf

DT = torch.float64
TOL = 1e-9


def _tensor(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


curves = st.builds(lambda seed, steps, k, scale: _tensor(seed, steps + 1, k).cumsum(0) * scale,
                   st.integers(0, 2**31 - 1), st.integers(2, 40), st.integers(1, 24),
                   st.floats(1e-3, 1e3))
points = st.builds(lambda seed, steps, k: srvf.normalise(_tensor(seed, steps, k)),
                   st.integers(0, 2**31 - 1), st.integers(2, 30), st.integers(1, 24))


@settings(max_examples=60, deadline=None)
@given(curves)
def test_encode_decode_round_trip_up_to_the_known_scale(curve):
    enc = srvf.srvf(curve)
    assert enc.q.shape == (curve.shape[0] - 1, curve.shape[1])
    assert float(srvf.inner(enc.q, enc.q)) == pytest.approx(1.0, abs=TOL)
    size = float(curve.abs().max())
    back = srvf.curve_from_srvf(enc.q, enc.length, curve[0])
    assert torch.allclose(back, curve, atol=1e-10 * size)
    unit = srvf.curve_from_srvf(enc.q, 1.0, curve[0])                   # decoded at unit length
    assert torch.allclose(curve[0] + (unit - curve[0]) * enc.length, curve, atol=1e-10 * size)


@settings(max_examples=40, deadline=None)
@given(curves, st.integers(0, 2**31 - 1))
def test_decoding_applies_to_any_start(curve, seed):
    """The same motion from another starting configuration moves by the same displacements."""
    enc = srvf.srvf(curve)
    start = _tensor(seed, curve.shape[1])
    moved = srvf.curve_from_srvf(enc.q, enc.length, start)
    assert torch.allclose(moved - start, curve - curve[0], atol=1e-10 * float(curve.abs().max()))


def test_straight_line_has_its_length_and_a_constant_srvf():
    direction = torch.tensor([3.0, 4.0, 0.0], dtype=DT) / 5.0
    s = torch.linspace(0, 1, 31, dtype=DT)[:, None]
    enc = srvf.srvf(2.5 * s * direction)
    assert float(enc.length) == pytest.approx(2.5, rel=1e-12)
    assert torch.allclose(enc.q, direction.expand(30, 3))               # |q| = 1 everywhere on a unit-speed line


def test_constant_curve_has_zero_srvf_and_length():
    enc = srvf.srvf(torch.ones(11, 4, dtype=DT))
    assert float(enc.length) == 0.0 and torch.count_nonzero(enc.q) == 0


def test_arclength_resampling_spaces_points_evenly_along_a_polyline():
    # a right angle walked at uneven speed: 1 unit along x (3 samples), 3 units along y (2 samples)
    poly = torch.tensor([[0, 0], [0.2, 0], [1, 0], [1, 3]], dtype=DT)
    out = srvf.resample_arclength(poly, steps=8)                        # 4 / 8 = 0.5 per step
    assert out.shape == (9, 2)
    assert torch.allclose(out[0], poly[0]) and torch.allclose(out[-1], poly[-1])
    seg = torch.linalg.vector_norm(out[1:] - out[:-1], dim=-1)
    assert torch.allclose(seg[:2], torch.full((2,), 0.5, dtype=DT))     # straight parts: exact spacing
    assert torch.allclose(out[2], torch.tensor([1.0, 0.0], dtype=DT))   # the corner is a sample
    assert torch.allclose(seg[2:], torch.full((6,), 0.5, dtype=DT))


@settings(max_examples=40, deadline=None)
@given(curves, st.integers(1, 40))
def test_arclength_resampling_keeps_ends_and_length(curve, steps):
    out = srvf.resample_arclength(curve, steps)
    assert out.shape == (steps + 1, curve.shape[1])
    assert torch.allclose(out[0], curve[0]) and torch.allclose(out[-1], curve[-1])
    inside = float(torch.linalg.vector_norm(out[1:] - out[:-1], dim=-1).sum())
    total = float(torch.linalg.vector_norm(curve[1:] - curve[:-1], dim=-1).sum())
    assert inside <= total * (1 + 1e-9)                                 # chords never exceed the polyline


def test_resampling_passes_over_repeated_samples_and_handles_a_still_curve():
    poly = torch.tensor([[0.0], [0.0], [0.0], [2.0], [2.0]], dtype=DT)
    assert torch.allclose(srvf.resample_arclength(poly, 4)[:, 0], torch.tensor([0, 0.5, 1, 1.5, 2], dtype=DT))
    still = torch.zeros(5, 3, dtype=DT)
    assert torch.equal(srvf.resample_arclength(still, 3), torch.zeros(4, 3, dtype=DT))
    with pytest.raises(ValueError, match="2 samples"):
        srvf.resample_arclength(poly[:1], 3)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 10), st.floats(1e-3, 1e3))
def test_normalised_landmarks_are_centred_unit_and_invertible(seed, frames, scale):
    pts = _tensor(seed, frames, 68, 3) * scale + 5.0
    n = srvf.normalise_landmarks(pts)
    assert torch.allclose(n.points.mean(dim=-2), torch.zeros(frames, 3, dtype=DT), atol=1e-12)
    assert torch.allclose(torch.linalg.vector_norm(n.points, dim=(-2, -1)), torch.ones(frames, dtype=DT))
    assert torch.allclose(n.points * n.scale[:, None, None] + n.centre[:, None, :], pts)


@settings(max_examples=80, deadline=None)
@given(points, st.integers(0, 2**31 - 1))
def test_exp_of_log_is_identity(p, seed):
    q = srvf.normalise(_tensor(seed, *p.shape))
    assume(float(srvf.inner(p, q)) > -0.99)                             # log is undefined at the antipode
    v = srvf.log_map(p, q)
    assert abs(float(srvf.inner(p, v))) < 1e-9                          # tangent at p
    assert torch.allclose(srvf.exp_map(p, v), q, atol=1e-8)
    assert float(srvf.inner(v, v)) ** 0.5 == pytest.approx(float(srvf.geodesic_distance(p, q)), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(points, st.integers(0, 2**31 - 1), st.floats(0.0, 3.0))
def test_log_of_exp_is_identity_inside_the_injectivity_radius(p, seed, size):
    v = srvf.project_tangent(p, _tensor(seed, *p.shape))
    assume(float(srvf.inner(v, v)) > 1e-12)                             # a random direction that is not along p
    v = v / float(srvf.inner(v, v)) ** 0.5 * size
    q = srvf.exp_map(p, v)
    assert float(srvf.inner(q, q)) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(srvf.log_map(p, q), v, atol=1e-7)


@settings(max_examples=60, deadline=None)
@given(points, st.integers(0, 2**31 - 1), st.floats(1e-6, 1e4))
def test_into_ball_stays_inside_the_injectivity_radius(p, seed, size):
    v = srvf.project_tangent(p, _tensor(seed, *p.shape))
    assume(float(srvf.inner(v, v)) > 1e-12)
    v = v / float(srvf.inner(v, v)) ** 0.5 * size
    w = srvf.into_ball(v)
    n = float(srvf.inner(w, w)) ** 0.5
    assert n <= srvf.MAX_GEODESIC * (1 + 1e-12) < math.pi
    assert n == pytest.approx(srvf.MAX_GEODESIC * math.tanh(size / srvf.MAX_GEODESIC), rel=1e-9)
    assert float(srvf.inner(w, v)) > 0                                   # same direction
    assert torch.allclose(srvf.log_map(p, srvf.exp_map(p, w)), w, atol=1e-6)


def test_into_ball_is_the_identity_near_zero():
    v = 1e-4 * srvf.normalise(_tensor(2, 30, 6))
    assert torch.allclose(srvf.into_ball(v), v, rtol=1e-8)
    assert torch.equal(srvf.into_ball(torch.zeros(3, 30, 6, dtype=DT)), torch.zeros(3, 30, 6, dtype=DT))


def test_exp_and_log_at_zero():
    p = srvf.normalise(_tensor(0, 30, 6))
    assert torch.equal(srvf.exp_map(p, torch.zeros_like(p)), p)
    v0 = srvf.log_map(p, p.clone())
    assert float(srvf.inner(v0, v0)) < 1e-20
    v = (1e-9 * srvf.project_tangent(p, _tensor(1, 30, 6))).requires_grad_(True)
    srvf.exp_map(p, v).sum().backward()                                 # differentiable at 0
    assert torch.isfinite(v.grad).all()


@settings(max_examples=60, deadline=None)
@given(points, st.integers(0, 2**31 - 1))
def test_geodesic_endpoints_and_midpoint(a, seed):
    b = srvf.normalise(_tensor(seed, *a.shape))
    assume(float(srvf.inner(a, b)) > -0.99)
    d = float(srvf.geodesic_distance(a, b))
    assert torch.allclose(srvf.geodesic(a, b, 0.0), a, atol=1e-12)
    assert torch.allclose(srvf.geodesic(a, b, 1.0), b, atol=1e-8)
    mid = srvf.geodesic(a, b, 0.5)
    assert float(srvf.inner(mid, mid)) == pytest.approx(1.0, abs=1e-12)
    assert float(srvf.geodesic_distance(a, mid)) == pytest.approx(d / 2, abs=1e-8)
    assert float(srvf.geodesic_distance(mid, b)) == pytest.approx(d / 2, abs=1e-8)
    # on the great circle: the slerp formula
    if d > 1e-3:
        slerp = (math.sin(d / 2) * a + math.sin(d / 2) * b) / math.sin(d)
        assert torch.allclose(mid, slerp, atol=1e-8)


def test_distance_of_orthogonal_and_antipodal_points():
    a = torch.zeros(4, 2, dtype=DT)
    a[:, 0] = 1.0
    b = torch.zeros(4, 2, dtype=DT)
    b[:, 1] = 1.0
    assert float(srvf.geodesic_distance(a, b)) == pytest.approx(math.pi / 2)
    assert float(srvf.geodesic_distance(a, -a)) == pytest.approx(math.pi)
    assert float(srvf.geodesic_distance(a, a)) == 0.0


def test_pairwise_distances_match_geodesic_distance():
    q = srvf.normalise(_tensor(3, 7, 10, 4))
    d = srvf.pairwise_distances(q)
    assert torch.allclose(d, d.T) and torch.count_nonzero(torch.diagonal(d)) == 0
    i, j = 2, 5
    assert float(d[i, j]) == pytest.approx(float(srvf.geodesic_distance(q[i], q[j])), abs=1e-7)


def test_karcher_mean_of_symmetric_points_is_their_centre():
    """Pairs exp_p(v), exp_p(-v) around p have p as their intrinsic mean (but not as their extrinsic mean's start)."""
    p = srvf.normalise(_tensor(10, 30, 12))
    vs = [srvf.project_tangent(p, _tensor(20 + i, 30, 12)) for i in range(4)]
    vs = [v / float(srvf.inner(v, v)) ** 0.5 * (0.3 + 0.3 * i) for i, v in enumerate(vs)]
    q = torch.stack([srvf.exp_map(p, s * v) for v in vs for s in (1, -1)])
    km = srvf.karcher_mean(q, tol=1e-12)
    assert float(srvf.geodesic_distance(km.mean, p)) < 1e-8
    assert km.residual < 1e-12
    expected = np.mean([(0.3 + 0.3 * i) ** 2 for i in range(4)])
    assert km.variance == pytest.approx(expected, rel=1e-8)


def test_karcher_mean_of_one_point_and_of_a_spread_set():
    q = srvf.normalise(_tensor(4, 30, 9))
    assert float(srvf.geodesic_distance(srvf.karcher_mean(q[None]).mean, q)) < 1e-9
    spread = srvf.normalise(_tensor(5, 40, 30, 9).abs())                # all in one orthant
    km = srvf.karcher_mean(spread, tol=1e-10)
    grad = srvf.log_map(km.mean[None], spread).mean(dim=0)
    assert float(srvf.inner(grad, grad)) ** 0.5 < 1e-9                 # stationary: the mean of the logs is 0
    # the intrinsic mean beats every sample as a centre
    cost = lambda c: float((srvf.geodesic_distance(c[None], spread) ** 2).mean())
    assert all(cost(km.mean) <= cost(s) for s in spread)


def test_landmark_curve_normalises_flattens_and_resamples():
    base = _tensor(7, 68, 3)
    frames = torch.stack([base * (1 + 0.1 * t) + t for t in range(12)])   # only scale and translation change
    curve = srvf.landmark_curve(frames, steps=30)
    assert curve.shape == (31, 204)
    assert torch.allclose(curve, curve[:1].expand(31, -1), atol=1e-12)   # normalised: it does not move at all
