"""Pull printing end to end: a real cupsd with the repository's policy and queues, a printer agent
on mock pins with the stand-in reader and camera, a real mosquitto and a real hub (SQLite,
rules, alerts). What staff and supervisors would check: whose printouts came out, whose stay
held, what the release log and the alerts say."""
from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from device import unit_file
from device.agent import Agent
from hub import config as hub_config
from hub.ledgers import printing as print_log
from hub.service import Hub
from tests.support.cups import (
    PRINTER,
    Cups,
    set_tray,
    write_printer_config,
    write_printer_hub_config,
)
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, STANDIN, hub_db, query

# No skip without cupsd: CI installs cups, and a printer test that cannot run fails (CupsUnavailable).
pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def cups():
    with Cups() as c:
        yield c


def start_stack(tmp_path, broker, prefix, cups: Cups, **timings):
    tag = uuid.uuid4().hex[:8]
    hold, printer = f"hold-{tag}", f"print-{tag}"
    cups.add_queues(hold, printer)
    hub = Hub(hub_config.load(write_printer_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    agent = Agent(unit_file.load(write_printer_config(tmp_path, broker.port, prefix, cups, hold, printer,
                                                          **timings)))
    agent.start()
    wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the printer")
    return hub, agent, hold, printer


@pytest.fixture
def stack(broker, prefix, tmp_path, cups):
    hub, agent, hold, printer = start_stack(tmp_path, broker, prefix, cups)
    yield hub, agent, hold, printer, hub_db(tmp_path / "hub.yaml")
    agent.stop()
    hub.stop()


def events_of(db, kind: str) -> list[dict]:
    return [{"person": p, **json.loads(d)} for p, d in query(
        db, "SELECT person, data FROM events WHERE station=? AND kind=? ORDER BY row_no", PRINTER, kind)]


def alerts_of(db, rule: str) -> list[tuple]:
    return query(db, "SELECT severity, message FROM alerts WHERE rule=?", rule)


def test_a_tap_releases_only_that_persons_jobs_and_the_log_names_them(stack, cups):
    hub, agent, hold, printer, db = stack
    mine = [cups.submit_job("S001", "juminhyo copy", 2, queue=hold),
            cups.submit_job("S001", "tax certificate", 1, queue=hold)]
    theirs = cups.submit_job("S002", "family register", 3, queue=hold)
    # Getting around the hold: asking for no hold, or printing straight to the printer.
    bypass = cups.submit_job("S002", "no-hold attempt", 1, queue=hold, options=["-H", "no-hold"])
    assert cups.submit("S002", "direct attempt", 1, queue=printer).returncode != 0

    agent.reader.tap(HOLDER)
    [released] = wait_for(lambda: events_of(db, "print.released"), timeout=15, what="print.released stored")
    assert released["person"] == "S001" and released["user"] == "S001" and released["count"] == 2
    assert sorted(j["id"] for j in released["jobs"]) == sorted(mine)
    printed = wait_for(lambda: len([p for p in cups.printed() if p[0] == printer]) == 2 and cups.printed(),
                       timeout=20, what="both printed")
    assert sorted((owner, job, pages) for q, owner, job, pages in printed if q == printer) == sorted(
        [("S001", mine[0], 2), ("S001", mine[1], 1)])
    assert sorted(cups.jobs(hold)) == sorted([(theirs, "S002"), (bypass, "S002")])

    # The release log: who released which jobs, with the pages CUPS counted.
    wait_for(lambda: events_of(db, "print.printed"), timeout=15, what="print.printed stored")
    day = datetime.fromisoformat(query(db, "SELECT at FROM events WHERE kind='print.released'")[0][0]).date()
    rows = print_log.release_log(hub.engine, hub.cfg, day)
    assert [(r.entry, r.person, r.name, r.title, r.pages, r.state) for r in rows] == [
        ("released", "S001", "Staff 001", "juminhyo copy", 2, "completed"),
        ("released", "S001", "Staff 001", "tax certificate", 1, "completed"),
    ]

    # The other person's tap releases theirs (the bypass attempt included: it is theirs).
    agent.reader.tap(STANDIN)
    wait_for(lambda: len(events_of(db, "print.released")) == 2, timeout=15, what="second release")
    wait_for(lambda: cups.jobs(hold) == [], timeout=10, what="holding queue empty")


def test_a_tap_with_nothing_held_is_recorded_and_releases_nothing(stack, cups):
    hub, agent, hold, printer, db = stack
    theirs = cups.submit_job("S002", "not yours", 1, queue=hold)
    agent.reader.tap(HOLDER)
    [failed] = wait_for(lambda: events_of(db, "print.release_failed"), timeout=15, what="release_failed")
    assert failed["reason"] == "no_jobs" and failed["person"] == "S001"
    assert cups.jobs(hold) == [(theirs, "S002")]


def test_held_jobs_expire_unprinted_and_are_reported(broker, prefix, tmp_path, cups):
    hub, agent, hold, printer = start_stack(tmp_path, broker, prefix, cups, hold_max_s=2)
    db = hub_db(tmp_path / "hub.yaml")
    try:
        job = cups.submit_job("S002", "forgotten", 1, queue=hold)
        [expired] = wait_for(lambda: events_of(db, "print.expired"), timeout=20, what="print.expired")
        assert expired["count"] == 1 and expired["jobs"][0]["id"] == job and expired["jobs"][0]["user"] == "S002"
        assert cups.jobs(hold) == [] and [p for p in cups.printed() if p[0] == printer] == []
        [(severity, message)] = wait_for(lambda: alerts_of(db, "print_expired"), timeout=10, what="alert")
        assert severity == "info" and "cancelled unprinted" in message
        day = datetime.fromisoformat(query(db, "SELECT at FROM events WHERE kind='print.expired'")[0][0]).date()
        [row] = print_log.release_log(hub.engine, hub.cfg, day)
        assert (row.entry, row.person, row.name, row.title) == ("expired", "S002", "Staff 002", "forgotten")
    finally:
        agent.stop()
        hub.stop()


def test_cups_down_is_reported_nothing_is_released_and_the_jobs_wait(broker, prefix, tmp_path):
    with Cups() as own:
        hub, agent, hold, printer = start_stack(tmp_path, broker, prefix, own)
        db = hub_db(tmp_path / "hub.yaml")
        try:
            job = own.submit_job("S001", "during the outage", 1, queue=hold)
            own.stop()
            wait_for(lambda: events_of(db, "cups.down"), timeout=15, what="cups.down stored")
            [(severity, _msg)] = wait_for(lambda: alerts_of(db, "cups_down"), timeout=10, what="cups_down alert")
            assert severity == "warning"
            agent.reader.tap(HOLDER)
            [failed] = wait_for(lambda: events_of(db, "print.release_failed"), timeout=15, what="release_failed")
            assert failed["reason"] == "cups_down"
            own.start()
            wait_for(lambda: events_of(db, "cups.up"), timeout=15, what="cups.up stored")
            assert own.jobs(hold) == [(job, "S001")]  # still held, not lost, not released
            agent.reader.tap(HOLDER)
            [released] = wait_for(lambda: events_of(db, "print.released"), timeout=15, what="released after")
            assert [j["id"] for j in released["jobs"]] == [job]
        finally:
            agent.stop()
            hub.stop()


def test_printouts_left_in_the_tray_alert_the_supervisors(broker, prefix, tmp_path, cups):
    hub, agent, _hold, _printer = start_stack(tmp_path, broker, prefix, cups, tray_alert_s=1)
    db = hub_db(tmp_path / "hub.yaml")
    try:
        set_tray(agent, True)
        [late] = wait_for(lambda: events_of(db, "tray.uncollected"), timeout=15, what="tray.uncollected")
        assert late["minutes"] >= 0
        [(severity, message)] = wait_for(lambda: alerts_of(db, "tray_uncollected"), timeout=10, what="alert")
        assert severity == "warning" and "Printer 1F" in message
        set_tray(agent, False)
        [taken] = wait_for(lambda: events_of(db, "tray.collected"), timeout=15, what="tray.collected")
        assert taken["after_alert"] is True
    finally:
        agent.stop()
        hub.stop()


def test_the_registry_gives_a_printer_the_persons_print_user_name(tmp_path):
    """Someone whose jobs reach CUPS under another name than their staff number: the printer's
    policy carries that name (the people column print_user), other stations' do not need it."""
    from hub import registry
    from hub.store import migrate
    from hub.store.db import make_engine
    from kagiban.protocol import Policy

    path = write_printer_hub_config(tmp_path, 1883, "kagiban")
    cfg = hub_config.load(path)
    engine = make_engine(cfg.db_url())
    try:
        migrate.upgrade(engine)
        registry.add_person(engine, "admin-01", "S010", "Staff 010", print_user="u-s010")
        registry.add_badge(engine, "admin-01", "S010", "AAAA0000BBBB1111")
        registry.add_person(engine, "admin-01", "S011", "Staff 011")
        registry.add_badge(engine, "admin-01", "S011", "AAAA0000BBBB2222")
        policy = Policy.model_validate(registry.compile_station(engine, cfg, PRINTER, "ward-a", "printer"))
        assert policy.decide("AAAA0000BBBB1111", policy.issued_at).print_user == "u-s010"
        assert policy.decide("AAAA0000BBBB2222", policy.issued_at).print_user is None  # staff number
        assert registry.update_person(engine, "admin-01", "S010", print_user="")
        policy = Policy.model_validate(registry.compile_station(engine, cfg, PRINTER, "ward-a", "printer"))
        assert policy.badges["AAAA0000BBBB1111"].print_user is None
    finally:
        engine.dispose()
