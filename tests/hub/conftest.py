"""Fixtures for the hub tests: a hub on the session's mosquitto with a fresh store per test,
and stand-in stations."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from hub.store import migrate
from hub.config import load
from hub.store.db import make_engine
from hub.service import Hub
from tests.hub.helpers import FakeStation, write_hub_config
from tests.support.mosquitto import wait_for


@pytest.fixture
def engine(tmp_path, store):
    """A migrated store of its own, on each store in turn (tests/hub/web has its own, from the
    hub's config)."""
    eng = make_engine(store.url(tmp_path))
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def start_hub(tmp_path, broker, prefix, store) -> Callable[..., Hub]:
    """Start a Hub whose config has the given sections, on the test's store; stopped after
    the test."""
    started: list[Hub] = []

    def _start(folder: Path | None = None, **sections: Any) -> Hub:
        path = write_hub_config(folder or tmp_path / "hub", broker, prefix, **sections)
        hub = Hub(load(path))
        started.append(hub)
        hub.start()
        wait_for(hub.connected.is_set, timeout=10, what="hub subscribed at the broker")
        return hub

    yield _start
    for hub in started:
        hub.stop()


@pytest.fixture
def station(broker, prefix) -> Callable[..., FakeStation]:
    """Make stand-in stations on the session broker; disconnected after the test."""
    made: list[FakeStation] = []

    def _make(name: str = "cabinet-1", **kwargs: Any) -> FakeStation:
        st = FakeStation(broker, prefix, name, **kwargs)
        made.append(st)
        return st

    yield _make
    for st in made:
        st.close()
