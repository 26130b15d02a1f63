"""A hub whose policies come from its registry (no staff file), seeded through hub.registry
the way an admin would, for tests that run a real hub and agent around it.

The people (all at cabinet-1 of tests.support.stack's configs):

- Staff 001 (HOLDER): trained, the designated holder;
- Staff 002 (STANDIN): trained, the stand-in;
- Staff 003 (CLERK): trained, designated nowhere: allowed and flagged (not_designated);
- Staff 004 (EXPIRED): took the training more than a year ago: refused (training_expired).

The first three are on cabinet-1's after-hours list, so the tests decide the same at any hour.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

from device import unit_file
from device.agent import Agent
from hub import registry
from hub.store import migrate
from hub.config import load
from hub.service import Hub
from hub.store.db import make_engine
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, STANDIN, hub_db, write_hub_config, write_unit_config

_LOG = logging.getLogger(__name__)

CLERK = "5555666677778888"
EXPIRED = "9999AAAABBBBCCCC"
ACTOR = "test-admin"
TRAINING = "個人情報保護研修"
TRAINING_DAYS = 365
PEOPLE = [("S001", "Staff 001", HOLDER), ("S002", "Staff 002", STANDIN), ("S003", "Staff 003", CLERK),
          ("S004", "Staff 004", EXPIRED)]


def write_registry_hub_config(tmp: Path, broker_port: int, prefix: str, **ingest) -> Path:
    """tests.support.stack's hub config without its staff file: the registry is the source."""
    path = write_hub_config(tmp, broker_port, prefix, **ingest)
    body = yaml.safe_load(path.read_text())
    body.pop("staff_file", None)
    path.write_text(yaml.safe_dump(body))
    return path


def seed(engine, today: date) -> None:
    """The training, the four people with their badges, attendance and designations."""
    registry.add_training(engine, ACTOR, TRAINING, ["cabinet"], TRAINING_DAYS)
    for number, name, badge in PEOPLE:
        registry.add_person(engine, ACTOR, number, name, section="戸籍係")
        registry.add_badge(engine, ACTOR, number, badge)
    recent = registry.add_session(engine, ACTOR, TRAINING, today - timedelta(days=30))
    registry.record_attendance(engine, ACTOR, recent, ["S001", "S002", "S003"])
    old = registry.add_session(engine, ACTOR, TRAINING, today - timedelta(days=TRAINING_DAYS + 35))
    registry.record_attendance(engine, ACTOR, old, ["S004"])
    registry.set_holder(engine, ACTOR, "cabinet-1", "S001")
    registry.add_stand_in(engine, ACTOR, "cabinet-1", "S002")
    for number in ("S001", "S002", "S003"):
        registry.add_after_hours_user(engine, ACTOR, "cabinet-1", number)


def seed_store(hub_config: Path) -> None:
    """Migrate the hub's store and seed it before the hub starts (its first policies then
    already hold the people)."""
    cfg = load(hub_config)
    engine = make_engine(cfg.db_url())
    try:
        migrate.upgrade(engine)
        seed(engine, datetime.now(cfg.site_zone("ward-a")).date())
    finally:
        engine.dispose()


@contextmanager
def running_cabinet(path: Path, broker_port: int, prefix: str, tmp: Path,
                    before_unit: Callable[[Hub], None] = lambda hub: None) -> Iterator[tuple[Hub, Agent, Path]]:
    """The hub of the registry-fed file ``path`` (its store seeded here) started, ``before_unit``
    run on it, then cabinet-1 started and holding the registry's policy: (hub, agent, db);
    both stopped at the end."""
    seed_store(path)
    hub = Hub(load(path))
    hub.start()
    agent = None
    try:
        before_unit(hub)
        agent = Agent(unit_file.load(write_unit_config(tmp, broker_port, prefix))).start()
        wait_for(lambda: HOLDER in agent.call(lambda a: a.policy.current.badges if a.policy.current else {}),
                 timeout=15, what="the registry's policy at the station")
        wait_for(hub.connected.is_set, timeout=10, what="hub subscribed")
        yield hub, agent, hub_db(path)
    finally:
        if agent is not None:
            agent.stop()
        hub.stop()
