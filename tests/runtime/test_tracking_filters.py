"""The One Euro filter: still signals smoothed, fast ones followed, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.tracking.filters import OneEuroFilter

DT = 1 / 30


def run(f: OneEuroFilter, xs: np.ndarray) -> np.ndarray:
    return np.stack([f(x, i * DT) for i, x in enumerate(xs)])


def test_a_constant_passes_through_unchanged():
    xs = np.tile([1.5, -2.0, 0.0], (50, 1))
    np.testing.assert_allclose(run(OneEuroFilter(beta=1.0), xs), xs)


def test_a_still_signal_loses_most_of_its_noise():
    rng = np.random.default_rng(0)
    xs = 3.0 + rng.normal(0, 0.1, (300, 4))
    out = run(OneEuroFilter(min_cutoff=1.0, beta=0.0), xs)
    assert out[30:].std(axis=0).max() < 0.35 * xs[30:].std(axis=0).min()


def test_speed_raises_the_cutoff_so_a_fast_ramp_lags_less():
    t = np.arange(90) * DT
    xs = (10.0 * t)[:, None]                                  # 10 units per second
    lag = [float(np.abs(run(OneEuroFilter(min_cutoff=0.5, beta=b), xs) - xs)[-30:].mean()) for b in (0.0, 1.0)]
    assert lag[1] < 0.25 * lag[0]


def test_per_dimension_settings_and_reset():
    f = OneEuroFilter(min_cutoff=[0.1, 100.0])
    f(np.zeros(2), 0.0)
    y = f(np.ones(2), DT)
    assert y[0] < 0.1 and y[1] > 0.9                          # a low cutoff holds back, a high one follows
    f.reset()
    np.testing.assert_array_equal(f(np.full(2, 7.0), 1.0), [7.0, 7.0])


def test_repeated_or_backward_timestamps_stay_finite_and_nan_is_refused():
    f = OneEuroFilter(beta=2.0)
    for t in (0.0, 0.0, -1.0, 0.5, 0.5):
        assert np.isfinite(f(np.array([1.0, t]), t)).all()
    with pytest.raises(ValueError, match="non-finite"):
        f(np.array([np.nan, 0.0]), 1.0)
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(0, 10)), min_size=1, max_size=40),
       st.floats(0.01, 10), st.floats(0, 10))
def test_any_finite_sequence_gives_finite_output(samples, min_cutoff, beta):
    f = OneEuroFilter(min_cutoff=min_cutoff, beta=beta)
    for x, t in samples:
        assert np.isfinite(f(np.array([x]), t)).all()
