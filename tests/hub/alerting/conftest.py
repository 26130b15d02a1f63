"""Fixtures for the alerting tests: the alert path on a fresh store (tests.support.alert_stack)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.support.alert_stack import Stack


@pytest.fixture
def stack(tmp_path, store):
    """The alert path with its rules running; closed after the test."""
    s = Stack(tmp_path)
    s.start_rules()
    yield s
    s.close()


@pytest.fixture
def make_stack(tmp_path, store):
    """Make alert paths, each on its own store (rules not started); closed after the test."""
    made: list[Stack] = []

    def _make(**cfg: Any) -> Stack:
        s = Stack(tmp_path / f"s{len(made)}", **cfg)
        made.append(s)
        return s

    yield _make
    for s in made:
        s.close()
