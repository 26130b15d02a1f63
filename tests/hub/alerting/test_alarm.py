"""Each site's open critical alerts as the hub publishes them retained for its annunciators:
a critical alert raised, acknowledged (alone or with others) changes the state; warnings and
alerts of a station in maintenance do not sound; each site gets its own state."""
from __future__ import annotations

import pytest

from hub.alerting import maintenance
from hub.alerting.alarm import SiteAlarms
from hub.alerting.alerts import AlertCenter
from hub.config import HubConfig
from hub.store import migrate
from hub.store.db import make_engine
from kagiban import protocol

SITE, OTHER = "ward-a", "ward-b"


@pytest.fixture
def hub(tmp_path, store):
    cfg = HubConfig.model_validate({"data_dir": str(tmp_path), "sites": {SITE: {}, OTHER: {}}, "stations": [
        {"id": "cabinet-1", "site": SITE, "kind": "cabinet"},
        {"id": "door-9", "site": OTHER, "kind": "door"},
        {"id": "annunciator-1", "site": SITE, "kind": "annunciator"}]})
    engine = make_engine(cfg.db_url())
    migrate.upgrade(engine)
    published: list[tuple[str, bytes]] = []
    alarms = SiteAlarms(engine, cfg, publish=lambda t, p: published.append((t, p)))
    yield AlertCenter(engine, cfg, alarms=alarms), alarms, published
    engine.dispose()


def last_state(published, site: str) -> protocol.SiteAlarm:
    topic = protocol.alarm_topic(protocol.DEFAULT_PREFIX, site)
    payloads = [p for t, p in published if t == topic]
    assert payloads, f"nothing published for {site}"
    return protocol.parse_hub_message(protocol.SiteAlarm, payloads[-1])


def raise_(center, station: str, site: str, rule: str, severity: str) -> int:
    return center.raise_alert(site=site, station=station, rule=rule, severity=severity,
                              message=f"{rule} at {station}", params={"station": station})


def test_at_start_every_known_site_is_told_it_is_quiet(hub):
    _center, alarms, published = hub
    alarms.publish_all()
    for site in (SITE, OTHER):
        state = last_state(published, site)
        assert (state.site, state.count, state.alerts) == (site, 0, [])


def test_a_critical_alert_is_published_until_it_is_acknowledged(hub):
    center, _alarms, published = hub
    forced = raise_(center, "cabinet-1", SITE, "forced", "critical")
    assert (last_state(published, SITE).count, last_state(published, SITE).alerts) == (1, [forced])
    again = raise_(center, "cabinet-1", SITE, "forced", "critical")
    assert last_state(published, SITE).alerts == [forced, again]
    assert center.acknowledge(forced, "sup-01")
    assert last_state(published, SITE).alerts == [again]
    assert center.acknowledge_many([again], "sup-01", "checked") == [again]
    assert last_state(published, SITE).count == 0


def test_a_warning_publishes_nothing(hub):
    center, _alarms, published = hub
    raise_(center, "cabinet-1", SITE, "held_open", "warning")
    assert published == []


def test_each_site_has_its_own_state(hub):
    center, _alarms, published = hub
    intrusion = raise_(center, "door-9", OTHER, "intrusion", "critical")
    assert last_state(published, OTHER).alerts == [intrusion]
    assert not [t for t, _ in published if t == protocol.alarm_topic(protocol.DEFAULT_PREFIX, SITE)]


def test_a_station_in_maintenance_does_not_sound(hub):
    center, _alarms, published = hub
    maintenance.start(center.engine, "cabinet-1", 1, "new lock fitted", "sup-01")
    raise_(center, "cabinet-1", SITE, "forced", "critical")
    assert last_state(published, SITE).count == 0
