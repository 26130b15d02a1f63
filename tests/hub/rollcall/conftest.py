"""Fixtures for the roll-call tests: a fresh, migrated SQLite store per test, a hub config with a
roll-call unit and a cabinet in Tokyo, and a section of four people (two part-timers) with a
training the cabinet requires."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub import registry
from hub.config import HubConfig

JST = timezone(timedelta(hours=9))
ACTOR = "test-admin"
TRAINING = "個人情報保護研修"
SECTION = "戸籍係"
# Staff number (its name 職員<number>), kana, section, employment, badge.
PEOPLE = [
    ("0012", "ショクイン0012", SECTION, "part_time", "0012000000000012"),
    ("0031", "ショクイン0031", SECTION, "part_time", "0031000000000031"),
    ("0044", "ショクイン0044", SECTION, "regular", "0044000000000044"),
    ("0099", "ショクイン0099", "住民係", "part_time", "0099000000000099"),
]
START = datetime(2026, 12, 7, 9, 0, tzinfo=JST)
OPENED = START - timedelta(minutes=10)


@pytest.fixture
def cfg() -> HubConfig:
    return HubConfig.model_validate({
        "time_zone": "Asia/Tokyo",
        "stations": [
            {"id": "rollcall-1", "site": "ward-a", "kind": "rollcall", "name": "会議室"},
            {"id": "rollcall-2", "site": "ward-a", "kind": "rollcall"},
            {"id": "cabinet-1", "site": "ward-a", "kind": "cabinet"},
            {"id": "annunciator-1", "site": "ward-a", "kind": "annunciator"},
        ],
    })


@pytest.fixture
def office(engine):
    """The people with their badges, and the training the cabinet requires (nobody has it)."""
    registry.add_training(engine, ACTOR, TRAINING, ["cabinet"], 365)
    for number, kana, section, employment, badge in PEOPLE:
        registry.add_person(engine, ACTOR, number, f"職員{number}", kana=kana, section=section, employment=employment,
                            role="係員")
        registry.add_badge(engine, ACTOR, number, badge)
    return engine
