"""Fixtures for the procedures tests: a fresh, migrated SQLite store per test with four people
of the 戸籍係 (two regular, two part-time) with badges, and a hub config with one station of
each kind (the registry tests' own)."""
from __future__ import annotations

import pytest

from hub import registry
from hub.config import HubConfig
from hub.store import migrate
from hub.store.db import make_engine

ADMIN = "adm-01"
SECTION = "戸籍係"
# (staff number, name, kana, employment, job role, badge)
PEOPLE = [
    ("0012", "職員0012", "ショクイン0012", "regular", "係長", "0012000000000012"),
    ("0013", "職員0013", "ショクイン0013", "regular", "係員", "0013000000000013"),
    ("0021", "職員0021", "ショクイン0021", "part_time", "係員", "0021000000000021"),
    ("0022", "職員0022", "ショクイン0022", "part_time", "係員", "0022000000000022"),
]


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'kagiban.db'}")
    migrate.upgrade(eng)
    for number, name, kana, employment, role, badge in PEOPLE:
        registry.add_person(eng, ADMIN, number, name, kana=kana, section=SECTION, employment=employment, role=role)
        registry.add_badge(eng, ADMIN, number, badge)
    registry.add_person(eng, ADMIN, "0031", "職員0031", kana="ショクイン0031", section="住民記録係", role="係員")
    yield eng
    eng.dispose()


@pytest.fixture
def cfg() -> HubConfig:
    """One station of each kind at ward-a (Tokyo), open around the clock."""
    always = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "00:00"}
    return HubConfig.model_validate({
        "time_zone": "Asia/Tokyo",
        "sites": {"ward-a": {"hours": always}},
        "stations": [{"id": "cabinet-1", "site": "ward-a", "kind": "cabinet"},
                     {"id": "printer-1", "site": "ward-a", "kind": "printer"}],
    })
