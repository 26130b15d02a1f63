"""Which offices (sites) the central hub is hearing (hub.stations.offices): stale when none of a
site's stations has been heard for rules.site_stale_after_s, fresh as soon as one is, and a
stored value that is not a time never breaks the judgement."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hub.config import HubConfig
from hub.stations.offices import judge, site_freshness
from hub.store.schema import stations
from hub.store.timestamps import utc_text

NOW = datetime(2026, 12, 7, 1, 0, 0, tzinfo=timezone.utc)


def _cfg(**rules) -> HubConfig:
    return HubConfig.model_validate({
        "stations": [{"id": "cab-a1", "site": "site-a", "kind": "cabinet"},
                     {"id": "door-a1", "site": "site-a", "kind": "door"},
                     {"id": "cab-b1", "site": "site-b", "kind": "cabinet"},
                     {"id": "cab-c1", "site": "site-c", "kind": "cabinet"}],
        "sites": {"site-d": {"name": "D支所"}},
        "rules": {"site_stale_after_s": 60, **rules},
    })


def _heard(engine, station: str, site: str, last_seen: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(stations.insert().values(station=station, site=site, state="online", last_seen=last_seen))


def test_a_site_is_stale_only_when_none_of_its_stations_was_heard_within_the_limit():
    recent, old = NOW - timedelta(seconds=10), NOW - timedelta(seconds=300)
    assert judge("a", [old, recent], NOW, 60).state == "fresh"
    stale = judge("a", [old, None], NOW, 60)
    assert (stale.state, stale.last_heard, stale.silent_s, stale.stations) == ("stale", old, 300.0, 2)
    assert judge("a", [NOW - timedelta(seconds=60)], NOW, 60).state == "stale"
    assert judge("a", [None, None], NOW, 60).state == "unheard"
    # The hub's clock stepped back: heard "in the future" counts as just heard.
    assert judge("a", [NOW + timedelta(seconds=30)], NOW, 60).silent_s == 0.0


def test_each_listed_site_from_its_stations_receive_times(engine):
    cfg = _cfg()
    _heard(engine, "cab-a1", "site-a", utc_text(NOW - timedelta(seconds=500)))
    _heard(engine, "door-a1", "site-a", utc_text(NOW - timedelta(seconds=5)))
    _heard(engine, "cab-b1", "site-b", utc_text(NOW - timedelta(seconds=61)))
    got = {s.site: s for s in site_freshness(engine, cfg, NOW)}
    assert {site: s.state for site, s in got.items()} == {
        "site-a": "fresh", "site-b": "stale", "site-c": "unheard", "site-d": "unheard"}
    assert got["site-a"].stations == 2 and got["site-d"].stations == 0
    # Back as soon as one of its stations is heard.
    with engine.begin() as conn:
        conn.execute(stations.update().where(stations.c.station == "cab-b1").values(last_seen=utc_text(NOW)))
    assert {s.site: s.state for s in site_freshness(engine, cfg, NOW)}["site-b"] == "fresh"
    # A longer limit from the config: nobody stale.
    assert {s.state for s in site_freshness(engine, _cfg(site_stale_after_s=3600), NOW)} == {"fresh", "unheard"}


def test_a_station_heard_under_another_sites_topic_counts_for_its_listed_site_only(engine):
    # cab-b1's row says site-a (the site of the last message it sent that was accepted is
    # what the writer records); the config says it belongs to site-b.
    _heard(engine, "cab-b1", "site-a", utc_text(NOW))
    _heard(engine, "unlisted-9", "site-a", utc_text(NOW))
    got = {s.site: s.state for s in site_freshness(engine, _cfg(), NOW)}
    assert got["site-a"] == "unheard" and got["site-b"] == "fresh"


def test_a_stored_value_that_is_not_a_time_counts_as_never_heard(engine):
    _heard(engine, "cab-a1", "site-a", "not a time")
    _heard(engine, "door-a1", "site-a", utc_text(NOW - timedelta(seconds=1)))
    _heard(engine, "cab-b1", "site-b", "2026-13-45T99:00:00Z")
    got = {s.site: s.state for s in site_freshness(engine, _cfg(), NOW)}
    assert got["site-a"] == "fresh" and got["site-b"] == "unheard"


def test_without_a_station_list_the_sites_heard_are_the_sites(engine):
    _heard(engine, "cab-x", "site-x", utc_text(NOW - timedelta(seconds=120)))
    cfg = HubConfig.model_validate({"rules": {"site_stale_after_s": 60}})
    assert [(s.site, s.state) for s in site_freshness(engine, cfg, NOW)] == [("site-x", "stale")]
