"""Fixtures for the registry tests: a fresh, migrated store per test and a hub config with
a cabinet, a shredder, a printer and a door."""
from __future__ import annotations

import pytest

from hub.store import migrate
from hub.config import HubConfig
from hub.store.db import make_engine


@pytest.fixture
def make_engine_at(tmp_path, store):
    """Make further fresh stores (e.g. to import an export into), of the test's store kind."""
    made = []

    def _make(name: str):
        eng = make_engine(store.url(tmp_path / name))
        migrate.upgrade(eng)
        made.append(eng)
        return eng

    yield _make
    for eng in made:
        eng.dispose()


@pytest.fixture
def cfg() -> HubConfig:
    """A hub config listing one station of each kind at ward-a (Tokyo)."""
    return HubConfig.model_validate({
        "time_zone": "Asia/Tokyo",
        "sites": {"ward-a": {"holidays": ["2025-05-05", "2025-07-21"],
                             "hours": {"days": ["mon", "tue", "wed", "thu", "fri"],
                                       "start": "08:30", "end": "17:15"}}},
        "stations": [
            {"id": "cabinet-1", "site": "ward-a", "kind": "cabinet"},
            {"id": "shredder-1", "site": "ward-a", "kind": "shredder"},
            {"id": "printer-1", "site": "ward-a", "kind": "printer",
             "hours": {"days": ["mon", "tue", "wed", "thu", "fri", "sat"], "start": "07:00", "end": "20:00"}},
            {"id": "door-1", "site": "ward-a", "kind": "door"},
        ],
    })
