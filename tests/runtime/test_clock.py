"""The fixed-timestep clock, driven by a fake time: drift-free deadlines,
lateness measured, missed deadlines skipped and counted, never a burst."""

from __future__ import annotations

import pytest

from runtime.clock import Cadence


def test_deadlines_stay_on_the_grid_without_drift():
    c = Cadence.starting_at(60.0, epoch=0.0, now=0.0)
    now = 0.0
    for _ in range(60 * 600):                   # ten minutes of frames, woken 0.3 ms late each time
        now = c.deadline() + 0.0003
        k, late = c.advance(now)
    assert c.deadline() == pytest.approx(600.0, abs=1e-9)
    assert late == pytest.approx(0.0003) and c.dropped == 0


def test_a_stall_skips_missed_frames_and_counts_them_instead_of_bursting():
    c = Cadence.starting_at(60.0, epoch=0.0, now=0.0)
    c.advance(0.0)
    k, late = c.advance(0.1)                    # woken 100 ms late: five deadlines missed
    assert c.dropped == 5 and k == 6
    assert late == pytest.approx(0.1 - 6 / 60)
    assert not c.due(0.1)                       # the next frame is on the grid, not immediate
    assert c.deadline() == pytest.approx(7 / 60)


def test_rates_share_the_engine_grid():
    a = Cadence.starting_at(60.0, 0.0, now=0.01)
    b = Cadence.starting_at(30.0, 0.0, now=0.01)
    due_a, due_b = [], []
    for i in range(1, 13):
        now = i / 60
        if a.due(now):
            due_a.append(a.advance(now)[0])
        if b.due(now):
            due_b.append(b.advance(now)[0])
    assert len(due_a) == 12 and len(due_b) == 6
    assert all(abs(b.deadline(k) - a.deadline(2 * k)) < 1e-12 for k in due_b)


def test_a_bad_rate_is_refused():
    with pytest.raises(ValueError, match="fps"):
        Cadence.starting_at(0.0, 0.0, 0.0)
