"""Debouncer: a bouncing contact yields one clean change, with the time passed in."""
from __future__ import annotations

import pytest

from device.sensors.debounce import Debouncer


def test_a_level_becomes_stable_after_the_window():
    d = Debouncer(0.05, initial=False)
    deadline = d.raw(True, now=10.0)
    assert deadline == pytest.approx(10.05)
    assert d.poll(10.04) is None
    assert d.state is False
    assert d.poll(deadline) is True
    assert d.state is True


def test_a_burst_of_eleven_edges_yields_at_most_one_change():
    d = Debouncer(0.05, initial=False)
    changes = []
    t = 0.0
    level = False
    for _ in range(11):  # 11 toggles within 11 ms: ends on True
        level = not level
        deadline = d.raw(level, t)
        t += 0.001
        result = d.poll(t)
        if result is not None:
            changes.append(result)
    # Poll repeatedly after the last edge: the change is reported exactly once.
    for step in range(100):
        result = d.poll(deadline + step * 0.01)
        if result is not None:
            changes.append(result)
    assert changes == [True]


def test_a_glitch_that_returns_to_the_stable_level_reports_nothing():
    d = Debouncer(0.05, initial=True)
    d.raw(False, 1.0)
    d.raw(True, 1.01)
    assert [d.poll(1.0 + i * 0.02) for i in range(10)] == [None] * 10
    assert d.state is True


def test_the_deadline_moves_with_each_new_edge_but_not_with_a_repeated_level():
    d = Debouncer(0.1, initial=False)
    assert d.raw(True, 1.0) == pytest.approx(1.1)
    assert d.raw(True, 1.05) == pytest.approx(1.1)  # same level again: not a new edge
    assert d.raw(False, 1.06) == pytest.approx(1.16)
    deadline = d.raw(True, 1.07)
    assert deadline == pytest.approx(1.17)
    assert d.poll(1.1) is None
    assert d.poll(deadline) is True
    assert d.deadline is None


def test_unknown_initial_level_reports_the_first_stable_level():
    d = Debouncer(0.02)
    assert d.state is None
    assert d.poll(5.0) is None
    d.raw(False, 5.0)
    assert d.poll(5.02) is False
    assert d.poll(6.0) is None


def test_zero_window_reports_at_once():
    d = Debouncer(0.0, initial=False)
    assert d.raw(True, 3.0) == 3.0
    assert d.poll(3.0) is True
