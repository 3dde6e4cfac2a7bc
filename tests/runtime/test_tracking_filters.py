"""The One Euro filter against its analytic behaviour: a constant passes through, a
still signal loses its noise as a first-order low-pass predicts, a ramp settles at
the lag ``v / (2 pi cutoff)`` (with the speed term, far less), bad time steps stay
finite and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.tracking.filters import MAX_ABS, MEDIAPIPE_FACE, OneEuroFilter, OneEuroSettings

DT = 1 / 30


def run(f: OneEuroFilter, xs: np.ndarray, dt: float = DT) -> np.ndarray:
    return np.stack([f(x, i * dt) for i, x in enumerate(xs)])


def test_a_constant_passes_through_unchanged():
    xs = np.tile([1.5, -2.0, 0.0, 1e-9], (50, 1))
    out = run(OneEuroFilter(beta=1.0), xs)
    np.testing.assert_array_equal(out, xs)
    assert out.dtype == np.float64


def test_a_still_signal_loses_its_noise_as_a_first_order_low_pass_predicts():
    rng = np.random.default_rng(0)
    xs = 3.0 + rng.normal(0, 0.1, (3000, 4))
    out = run(OneEuroFilter(min_cutoff=1.0, beta=0.0), xs)[30:]
    alpha = 1 / (1 + 1 / (2 * np.pi * 1.0 * DT))
    predicted = np.sqrt(alpha / (2 - alpha))                   # std ratio of x_hat += alpha (x - x_hat)
    ratio = out.std(axis=0) / xs[30:].std(axis=0)
    np.testing.assert_allclose(ratio, predicted, rtol=0.1)
    assert ratio.max() < 1 / 3                                 # about 3x less jitter at 1 Hz, 30 fps
    assert abs(out.mean() - 3.0) < 0.01                        # and no bias


def test_speed_raises_the_cutoff_so_a_fast_ramp_lags_far_less():
    v, min_cutoff = 10.0, 0.5                                  # 10 units per second
    t = np.arange(150) * DT
    xs = (v * t)[:, None]
    lags = {}
    for beta in (0.0, 1.0):
        out = run(OneEuroFilter(min_cutoff=min_cutoff, beta=beta), xs)
        lags[beta] = float((xs - out)[-30:].mean())
        expected = v / (2 * np.pi * (min_cutoff + beta * v))   # a ramp's steady-state lag
        assert lags[beta] == pytest.approx(expected, rel=0.02)
    assert lags[1.0] < 0.05 * lags[0.0]                        # 0.15 vs 3.2 units behind


def test_per_dimension_settings_and_reset():
    f = OneEuroFilter(min_cutoff=[0.1, 100.0])
    f(np.zeros(2), 0.0)
    y = f(np.ones(2), DT)
    assert y[0] < 0.1 and y[1] > 0.9                          # a low cutoff holds back, a high one follows
    f.reset()
    np.testing.assert_array_equal(f(np.full(2, 7.0), 1.0), [7.0, 7.0])
    with pytest.raises(ValueError, match="min_cutoff has 2 values"):
        OneEuroFilter(min_cutoff=[1.0, 2.0])(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="reset"):
        f(np.zeros(3), 2.0)


def test_mediapipe_face_settings_build_a_filter():
    assert MEDIAPIPE_FACE == OneEuroSettings(min_cutoff=0.05, beta=80.0, d_cutoff=1.0)
    f = OneEuroFilter(*MEDIAPIPE_FACE)
    assert np.isfinite(run(f, np.random.default_rng(1).normal(size=(20, 3)))).all()


def test_repeated_or_backward_timestamps_stay_finite_and_the_clock_follows_the_latest():
    f = OneEuroFilter(beta=2.0)
    for i, t in enumerate((0.0, 0.0, -1.0, -1.0, 0.5, 0.5, 0.4)):
        y = f(np.array([1.0 + i, t]), t)
        assert np.isfinite(y).all()
    # after a clock that went back, steps count from the latest timestamp: the filter is not
    # frozen until time passes the old maximum
    a, b = OneEuroFilter(), OneEuroFilter()
    a(np.zeros(1), 10.0), a(np.zeros(1), 0.0)
    b(np.zeros(1), 0.0)
    assert a(np.ones(1), DT) == pytest.approx(b(np.ones(1), DT))


def test_bad_input_and_settings_are_refused_by_name():
    f = OneEuroFilter()
    f(np.zeros(2), 0.0)
    with pytest.raises(ValueError, match=r"non-finite input .* dimension\(s\) \[0\]"):
        f(np.array([np.nan, 0.0]), 1.0)
    with pytest.raises(ValueError, match="timestamp"):
        f(np.zeros(2), float("nan"))
    with pytest.raises(ValueError, match="MAX_ABS"):
        f(np.array([0.0, 2 * MAX_ABS]), 1.0)
    np.testing.assert_array_equal(f(np.zeros(2), 1.0), [0.0, 0.0])   # a refused sample changed nothing
    for bad in (dict(min_cutoff=0.0), dict(d_cutoff=-1.0), dict(beta=-0.1), dict(beta=np.inf)):
        with pytest.raises(ValueError):
            OneEuroFilter(**bad)


finite = st.floats(-MAX_ABS, MAX_ABS, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4).flatmap(lambda d: st.lists(
           st.tuples(st.lists(finite, min_size=d, max_size=d),
                     st.floats(allow_nan=False, allow_infinity=False)), min_size=1, max_size=30)),
       st.floats(1e-6, 1e6), st.floats(0, 1e12), st.floats(1e-6, 1e6))
def test_any_finite_sequence_gives_finite_output(samples, min_cutoff, beta, d_cutoff):
    f = OneEuroFilter(min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff)
    lo = hi = None
    for x, t in samples:
        x = np.array(x)
        y = f(x, t)
        assert np.isfinite(y).all()
        lo = x if lo is None else np.minimum(lo, x)
        hi = x if hi is None else np.maximum(hi, x)
        tol = 1e-12 * np.maximum(np.abs(lo), np.abs(hi))        # rounding of x_hat + alpha (x - x_hat)
        assert (y >= lo - tol).all() and (y <= hi + tol).all()  # a low-pass never leaves the input's range
