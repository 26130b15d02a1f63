"""A station cut off from the hub over a day off still judges it after hours: the registry hub
compiles the site's days off (a national holiday nobody typed, and a closed day of the office's
own) into the cabinet's policy; then the hub stops, the station's clock moves on to those days,
and the holder's tap is refused ``outside_hours`` from the cached policy, while on the next
working day it opens. Real mosquitto, a real hub and SQLite file, a real agent on mock pins."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml

from device import unit_file
from device.agent import Agent
from device.clock import StandinClock
from hub import config as hub_config
from hub import registry
from hub.service import Hub
from hub.store.db import make_engine
from tests.support.mosquitto import wait_for
from tests.support.registry_stack import ACTOR, seed_store, write_registry_hub_config
from tests.support.stack import HOLDER, write_unit_config

pytestmark = pytest.mark.e2e
TOKYO = ZoneInfo("Asia/Tokyo")
LOCK_PIN = 27


def _weekday_after(start: date, wanted, limit: int = 90) -> date:
    """The first weekday from ``start`` on for which ``wanted(day)`` holds (bounded)."""
    for n in range(limit):
        day = start + timedelta(days=n)
        if day.weekday() < 5 and wanted(day):
            return day
    raise AssertionError(f"no such weekday within {limit} days of {start}")


@pytest.fixture
def days():
    """(national holiday, the office's own closed day, a working day), all weekdays ahead."""
    today = datetime.now(TOKYO).date()
    national = holidays.country_holidays("JP", years=[today.year, today.year + 1])
    holiday = _weekday_after(today + timedelta(days=2), lambda d: d in national)
    closed = _weekday_after(today + timedelta(days=2), lambda d: d not in national and d != holiday)
    working = _weekday_after(holiday + timedelta(days=1), lambda d: d not in national and d != closed)
    return holiday, closed, working


@pytest.fixture
def stack(broker, prefix, tmp_path, days):
    _holiday, closed, _working = days
    path = write_registry_hub_config(tmp_path, broker.port, prefix)
    body = yaml.safe_load(path.read_text())
    # Only the office's own day in the file; the national one comes from the calendar.
    body["sites"] = {"ward-a": {"name": "Ward A", "holidays": [{"date": closed.isoformat(), "label": "臨時閉庁"}]}}
    body["policy"]["validity_h"] = 24 * 100  # valid through the days the clock moves on to
    path.write_text(yaml.safe_dump(body, allow_unicode=True))
    seed_store(path)
    engine = make_engine(hub_config.load(path).db_url())
    registry.remove_after_hours_user(engine, ACTOR, "cabinet-1", "S001")  # the holder keeps the hours
    engine.dispose()
    hub = Hub(hub_config.load(path))
    hub.start()
    unit = write_unit_config(tmp_path, broker.port, prefix)
    unit_body = yaml.safe_load(unit.read_text())
    unit_body["policy"]["max_age_h"] = 24 * 100
    unit.write_text(yaml.safe_dump(unit_body))
    clock = StandinClock()
    agent = Agent(unit_file.load(unit), clock=clock).start()
    try:
        wait_for(lambda: HOLDER in agent.call(lambda a: a.policy.current.badges if a.policy.current else {}),
                 timeout=15, what="the registry's policy at the station")
        yield hub, agent, clock
    finally:
        agent.stop()
        hub.stop()


def _at(clock: StandinClock, day: date, hh: int) -> None:
    """Move the station's clock to ``day`` at ``hh``:00 in Tokyo."""
    wanted = datetime.combine(day, time(hh), tzinfo=TOKYO)
    clock.offset_s = (wanted - datetime.now(TOKYO)).total_seconds()


def _tap(agent, clock, day: date) -> tuple[str, str]:
    """The holder taps at 10:00 on ``day``: the station's decision and its reason."""
    _at(clock, day, 10)
    agent.reader.tap(HOLDER)

    def decided():
        return [e for e in agent.call(lambda a: a.outbox.events())
                if e.kind in ("badge.granted", "badge.denied") and e.at.astimezone(TOKYO).date() == day]

    [found] = wait_for(decided, timeout=10, what=f"the tap on {day} recorded")
    return found.kind, found.data.get("reason", "")


def test_offline_the_station_judges_a_national_holiday_and_an_own_closed_day_after_hours(stack, days):
    hub, agent, clock = stack
    holiday, closed, working = days
    policy = agent.call(lambda a: a.policy.current)
    assert holiday in policy.holidays and closed in policy.holidays
    hub.stop()  # from here on the station has only its cached policy

    assert _tap(agent, clock, holiday) == ("badge.denied", "outside_hours")
    assert agent.pin_factory.pin(LOCK_PIN).state == 0
    assert _tap(agent, clock, closed) == ("badge.denied", "outside_hours")
    kind, _reason = _tap(agent, clock, working)
    assert kind == "badge.granted"
    wait_for(lambda: agent.pin_factory.pin(LOCK_PIN).state == 1, timeout=5, what="unlocked on a working day")
