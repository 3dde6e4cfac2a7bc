"""Square-root velocity functions (SRVF) of landmark curves, on the unit sphere.

A landmark motion is a curve ``a(s)``, ``s`` in ``[0, 1]``, in ``R^K`` (``K =
68 * 3`` for iBUG-68 landmarks, each frame flattened x, y, z per landmark).
Resampled at ``T + 1`` points equally spaced in arc length (a start and
``T`` steps; Motion3DGAN's ``T = 30``) it is a tensor ``[..., T + 1, K]``,
sample ``t`` at ``s = t / T``, and the polyline through them.

Its SRVF is ``q(s) = a'(s) / sqrt(|a'(s)|)`` (0 where ``a' = 0``), constant
on each step of the polyline, so ``q`` is ``[..., T, K]``. Since
``|q|^2 = |a'|``, the squared L2 norm of ``q`` is the curve's length, so
dividing ``q`` by the square root of the length puts it on the unit sphere
of ``L2([0, 1], R^K)``. The inner product ``<q1, q2> = sum(q1 * q2) / T``
(over steps and coordinates, Motion3DGAN's) is then the exact integral over
``[0, 1]``, and encoding and decoding are exact inverses. The length
is returned beside ``q`` and is needed to decode: ``a(s) = a(0) + length *
integral_0^s |q| q``, from any starting configuration ``a(0)``.

On the sphere: ``exp_map``/``log_map`` at a reference point, the geodesic
distance (the arc ``atan2(|u|, <p, q>)``, exact near 0 and pi), geodesic
interpolation ``psi(tau) = exp_p(tau log_p(q))`` and the Karcher mean.

Landmark frames are normalised before they form a curve (as Motion3DGAN's
``process_landmarks``): centred on their mean and divided by their Frobenius
norm, per frame (``normalise_landmarks``).

Every function is pure and works on ``torch`` tensors (any float dtype;
leading batch dimensions ``...`` broadcast).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: default number of steps of a resampled curve (Motion3DGAN's 30 frames after the start)
FRAMES = 30

#: a velocity below this norm counts as zero: its SRVF is 0 there
EPS_SPEED = 1e-12

#: a tangent vector below this norm counts as zero in exp/log (series used instead)
EPS_TANGENT = 1e-7

#: the longest tangent vector ``into_ball`` returns: 0.05 rad short of the antipode, where log is undefined
MAX_GEODESIC = math.pi - 0.05

#: a curve shorter than this (normalised units) has no arc-length parametrisation
EPS_CURVE = 1e-12


@dataclass
class NormalisedLandmarks:
    """Landmarks centred and scaled to unit Frobenius norm, per frame."""

    points: torch.Tensor   #: [..., P, 3] centred, unit Frobenius norm
    centre: torch.Tensor   #: [..., 3] the mean of each frame's landmarks
    scale: torch.Tensor    #: [...] each frame's centred Frobenius norm


@dataclass
class Srvf:
    """A curve's SRVF on the unit sphere and its length (the scale to decode)."""

    q: torch.Tensor        #: [..., T, K] unit norm under <., .> = sum / T
    length: torch.Tensor   #: [...] the curve's length (0 for a constant curve, then q = 0)


@dataclass
class KarcherMean:
    """The intrinsic mean on the sphere and how its descent ended."""

    mean: torch.Tensor     #: [T, K] on the unit sphere
    iterations: int        #: gradient steps taken
    residual: float        #: norm of the mean tangent vector at the end (0 at the exact mean)
    variance: float        #: mean squared geodesic distance of the samples to the mean


def _norm(x: torch.Tensor) -> torch.Tensor:
    """``[..., T, K] -> [...]``: the norm under the sphere's inner product."""
    return torch.sqrt(torch.clamp_min(inner(x, x), 0.0))


def normalise_landmarks(points: torch.Tensor) -> NormalisedLandmarks:
    """Centre each frame's landmarks and scale them to unit Frobenius norm.

    Args:
        points: ``[..., P, 3]`` landmarks (any unit).

    Returns:
        ``points [..., P, 3]`` with zero mean and unit Frobenius norm, and the
        ``centre [..., 3]`` and ``scale [...]`` that undo it
        (``points * scale + centre``).
    """
    centre = points.mean(dim=-2)
    centred = points - centre[..., None, :]
    scale = torch.linalg.vector_norm(centred, dim=(-2, -1))
    return NormalisedLandmarks(centred / torch.clamp_min(scale, EPS_CURVE)[..., None, None], centre, scale)


def resample_arclength(curve: torch.Tensor, steps: int = FRAMES) -> torch.Tensor:
    """Resample a polyline to ``steps`` equal arc-length steps (``steps + 1`` samples).

    Args:
        curve: ``[..., L, K]`` the curve at ``L >= 2`` samples.
        steps: number of output steps (``>= 1``).

    Returns:
        ``[..., steps + 1, K]``: the first and last samples are the curve's
        ends; the others are linear interpolations along the polyline at equal
        arc-length steps. Repeated samples (zero-length segments) are passed
        over. A curve of zero length is resampled uniformly in time instead.
    """
    n = curve.shape[-2]
    if n < 2 or steps < 1:
        raise ValueError(f"arc-length resampling needs >= 2 samples and >= 1 step, got {n} samples, {steps} steps")
    seg = torch.linalg.vector_norm(curve[..., 1:, :] - curve[..., :-1, :], dim=-1)   # [..., L-1]
    cum = torch.cat([torch.zeros_like(seg[..., :1]), torch.cumsum(seg, dim=-1)], dim=-1)  # [..., L]
    total = cum[..., -1:]
    uniform = torch.linspace(0.0, 1.0, n, dtype=curve.dtype, device=curve.device).expand_as(cum)
    cum = torch.where(total <= EPS_CURVE, uniform, cum / torch.clamp_min(total, EPS_CURVE)).contiguous()
    target = torch.linspace(0.0, 1.0, steps + 1, dtype=curve.dtype, device=curve.device)
    target = target.expand(*cum.shape[:-1], steps + 1).contiguous()
    idx = (torch.searchsorted(cum, target, right=True) - 1).clamp(0, n - 2)
    lo = torch.gather(cum, -1, idx)
    hi = torch.gather(cum, -1, idx + 1)
    w = ((target - lo) / torch.clamp_min(hi - lo, EPS_CURVE)).clamp(0.0, 1.0)
    k = curve.shape[-1]
    a = torch.gather(curve, -2, idx[..., None].expand(*idx.shape, k))
    b = torch.gather(curve, -2, (idx + 1)[..., None].expand(*idx.shape, k))
    return a + w[..., None] * (b - a)


def landmark_curve(points: torch.Tensor, steps: int = FRAMES) -> torch.Tensor:
    """A landmark sequence as a curve: normalised per frame, flattened, resampled.

    Args:
        points: ``[..., L, P, 3]`` ``L >= 2`` frames of ``P`` landmarks (any unit).
        steps: arc-length steps of the result.

    Returns:
        ``[..., steps + 1, P * 3]``: each frame centred and scaled to unit
        Frobenius norm (``normalise_landmarks``), flattened (x, y, z of
        landmark 0, then landmark 1, ...) and resampled to equal arc-length steps.
    """
    frames = normalise_landmarks(points).points
    return resample_arclength(frames.reshape(*frames.shape[:-2], -1), steps)


def velocity(curve: torch.Tensor) -> torch.Tensor:
    """``[..., T + 1, K] -> [..., T, K]``: ``a'(s)`` on each of the ``T`` steps.

    The curve is the polyline through its samples at ``s = t / T``; its
    velocity is constant on each step: ``(a[t + 1] - a[t]) * T``.
    """
    steps = curve.shape[-2] - 1
    if steps < 1:
        raise ValueError(f"a curve needs >= 2 samples for its velocity, got {curve.shape[-2]}")
    return (curve[..., 1:, :] - curve[..., :-1, :]) * steps


def srvf(curve: torch.Tensor) -> Srvf:
    """The SRVF of a polyline, scaled to the unit sphere, and the curve's length.

    Args:
        curve: ``[..., T + 1, K]`` samples of ``a(s)`` at ``s = t / T``: a
            start and ``T`` steps (Motion3DGAN's ``T = 30``: ``FRAMES + 1`` samples).

    Returns:
        ``q [..., T, K]``, the SRVF on each step, with ``<q, q> = 1`` (``q = 0``
        for a constant curve), and ``length [...] = sum_t |a[t + 1] - a[t]|``,
        the polyline's length: the square of the unscaled SRVF's norm, the
        scale that ``curve_from_srvf`` needs. The pair is exact: decoding it
        gives the curve back up to rounding.
    """
    v = velocity(curve)
    speed = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    q = torch.where(speed > EPS_SPEED, v / torch.sqrt(torch.clamp_min(speed, EPS_SPEED)), torch.zeros_like(v))
    length = speed[..., 0].mean(dim=-1)
    q = q / torch.sqrt(torch.clamp_min(length, EPS_CURVE))[..., None, None]
    return Srvf(q, length)


def curve_from_srvf(q: torch.Tensor, length: torch.Tensor | float, start: torch.Tensor) -> torch.Tensor:
    """The inverse of ``srvf``: ``a(s) = a(0) + length * integral_0^s |q| q``.

    Args:
        q: ``[..., T, K]`` an SRVF (unit norm), constant on each of ``T`` steps.
        length: ``[...]`` (or a float) the curve's length.
        start: ``[..., K]`` the starting configuration ``a(0)``: any identity.

    Returns:
        ``[..., T + 1, K]`` the curve from ``start``; with ``length = 1`` it is
        the curve scaled to unit length about its start.
    """
    steps = q.shape[-2]
    v = torch.linalg.vector_norm(q, dim=-1, keepdim=True) * q / steps
    path = torch.cat([torch.zeros_like(v[..., :1, :]), torch.cumsum(v, dim=-2)], dim=-2)
    length = torch.as_tensor(length, dtype=q.dtype, device=q.device)
    return start[..., None, :] + length[..., None, None] * path


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[..., T, K] x [..., T, K] -> [...]``: ``sum(a * b) / T``."""
    return (a * b).sum(dim=(-2, -1)) / a.shape[-2]


def normalise(q: torch.Tensor) -> torch.Tensor:
    """``[..., T, K] -> [..., T, K]``: ``q / |q|``, onto the unit sphere."""
    return q / torch.clamp_min(_norm(q), EPS_TANGENT)[..., None, None]


def project_tangent(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``v - <v, p> p``: the part of ``v [..., T, K]`` tangent to the sphere at ``p [..., T, K]``."""
    return v - inner(v, p)[..., None, None] * p


def into_ball(v: torch.Tensor, radius: float = MAX_GEODESIC) -> torch.Tensor:
    """``[..., T, K] -> [..., T, K]``: ``v`` scaled to norm ``radius tanh(|v| / radius)``.

    A smooth, one-to-one map of the tangent space onto the open ball of
    ``radius``, close to the identity for short vectors. Inside the unit
    sphere's injectivity radius pi, ``log_p(exp_p(v))`` is ``v`` again for
    every ``v`` it returns (the default keeps 0.05 rad from the antipode).
    """
    nv = _norm(v)
    small = nv < EPS_TANGENT
    safe = torch.where(small, torch.ones_like(nv), nv)
    factor = torch.where(small, torch.ones_like(nv), radius * torch.tanh(safe / radius) / safe)
    return factor[..., None, None] * v


def exp_map(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The exponential map at ``p``: ``cos|v| p + sin|v| v / |v|``.

    Args:
        p: ``[..., T, K]`` a point on the unit sphere.
        v: ``[..., T, K]`` a tangent vector at ``p`` (``<p, v> = 0``; see
            ``project_tangent``).

    Returns:
        ``[..., T, K]`` on the unit sphere, ``|v|`` along the great circle
        from ``p`` in the direction of ``v``. Differentiable at ``v = 0``.
    """
    nv = _norm(v)
    small = nv < EPS_TANGENT
    safe = torch.where(small, torch.ones_like(nv), nv)
    sinc = torch.where(small, 1.0 - nv * nv / 6.0, torch.sin(safe) / safe)
    return torch.cos(nv)[..., None, None] * p + sinc[..., None, None] * v


def log_map(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The logarithm map at ``p``: the tangent vector at ``p`` that ``exp_map`` sends to ``q``.

    Args:
        p: ``[..., T, K]`` a point on the unit sphere.
        q: ``[..., T, K]`` a point on the unit sphere (not ``-p``, where the
            map is undefined).

    Returns:
        ``[..., T, K]``: ``theta u / |u|`` with ``u = q - <p, q> p`` and
        ``theta = atan2(|u|, <p, q>)`` the geodesic distance; ``0`` at ``q = p``.
    """
    c = inner(p, q)
    u = q - c[..., None, None] * p
    nu = _norm(u)
    theta = torch.atan2(nu, c)
    small = nu < EPS_TANGENT
    ratio = torch.where(small, torch.ones_like(nu), theta / torch.where(small, torch.ones_like(nu), nu))
    return ratio[..., None, None] * u


def geodesic_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[..., T, K] x [..., T, K] -> [...]``: the arc length between two points of the unit sphere."""
    c = inner(a, b)
    u = b - c[..., None, None] * a
    return torch.atan2(_norm(u), c)


def geodesic(a: torch.Tensor, b: torch.Tensor, tau: torch.Tensor | float) -> torch.Tensor:
    """``psi(tau) = exp_a(tau log_a(b))``: the point ``tau`` of the way from ``a`` to ``b``.

    Args:
        a, b: ``[..., T, K]`` points on the unit sphere.
        tau: ``[...]`` (or a float) in ``[0, 1]`` for the arc between them.

    Returns:
        ``[..., T, K]``: ``a`` at 0, ``b`` at 1, the midpoint of the great
        circle arc at 0.5.
    """
    tau = torch.as_tensor(tau, dtype=a.dtype, device=a.device)
    return exp_map(a, tau[..., None, None] * log_map(a, b))


def pairwise_distances(q: torch.Tensor) -> torch.Tensor:
    """``[N, T, K] -> [N, N]``: the geodesic distance between every pair."""
    flat = q.reshape(q.shape[0], -1)
    c = (flat @ flat.T) / q.shape[-2]
    return torch.arccos(c.clamp(-1.0, 1.0)).fill_diagonal_(0.0)


def karcher_mean(q: torch.Tensor, iterations: int = 100, step: float = 1.0, tol: float = 1e-6) -> KarcherMean:
    """The Karcher (intrinsic) mean of points on the sphere, by gradient descent.

    Starts at the normalised extrinsic mean and moves ``step`` times the mean
    of the log maps, until its norm is below ``tol``.

    Args:
        q: ``[N, T, K]`` points on the unit sphere (all within a half-sphere).
        iterations: at most this many steps.
        step: the step size (1 is Newton's step for concentrated data).
        tol: stop when the mean tangent vector is shorter.

    Returns:
        The mean ``[T, K]``, the steps taken, the final residual and the
        samples' mean squared geodesic distance to the mean.
    """
    mu = normalise(q.mean(dim=0))
    taken = 0
    while True:
        v = log_map(mu[None], q).mean(dim=0)
        residual = float(_norm(v))
        if residual < tol or taken == iterations:
            break
        mu = normalise(exp_map(mu, step * v))
        taken += 1
    variance = float((geodesic_distance(mu[None], q) ** 2).mean())
    return KarcherMean(mu, taken, residual, variance)
