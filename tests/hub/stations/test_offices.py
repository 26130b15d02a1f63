"""Which offices (sites) the central hub is hearing (hub.stations.offices): stale when none of a
site's stations has been heard for rules.site_stale_after_s, fresh as soon as one is, and a
stored value that is not a time never breaks the judgement. The watch behind an open status page
tells the live bus when a site's state changed, by the clock alone when nothing arrives."""
from __future__ import annotations

import json
import queue
from datetime import datetime, timedelta, timezone

from hub.config import HubConfig
from hub.live import LiveBus
from hub.stations.offices import OfficeChange, OfficesChanged, OfficeWatch, judge, site_freshness
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


def _published(q: queue.Queue) -> list[tuple[str, dict]]:
    out = []
    while True:
        try:
            kind, text = q.get_nowait()
        except queue.Empty:
            return out
        out.append((kind, json.loads(text)))


def _states(message: dict) -> dict[str, tuple[str | None, str]]:
    return {c["site"]: (c["was"], c["state"]) for c in message["changes"]}


def test_the_watch_tells_an_open_page_when_a_site_goes_stale_by_the_clock_and_when_it_is_heard_again(engine):
    bus = LiveBus()
    watch = OfficeWatch(engine, _cfg(), bus)
    _heard(engine, "cab-a1", "site-a", utc_text(NOW - timedelta(seconds=10)))
    _heard(engine, "cab-b1", "site-b", utc_text(NOW - timedelta(seconds=10)))
    page = bus.subscribe()
    # The first look while a page is open names every site.
    watch.check(NOW)
    [(kind, first)] = _published(page)
    assert kind == "offices" and _states(first) == {
        "site-a": (None, "fresh"), "site-b": (None, "fresh"), "site-c": (None, "unheard"), "site-d": (None, "unheard")}
    # Nothing stored since; only the clock moves: still fresh at 59 s, both stale at 60 s.
    assert watch.check(NOW + timedelta(seconds=49)) is None and _published(page) == []
    watch.check(NOW + timedelta(seconds=50))
    [(_, went)] = _published(page)
    assert _states(went) == {"site-a": ("fresh", "stale"), "site-b": ("fresh", "stale")}
    assert watch.check(NOW + timedelta(seconds=500)) is None  # stale stays stale: nothing said
    # B's station is heard again; C's station for the first time.
    later = NOW + timedelta(seconds=600)
    with engine.begin() as conn:
        conn.execute(stations.update().where(stations.c.station == "cab-b1").values(last_seen=utc_text(later)))
    _heard(engine, "cab-c1", "site-c", utc_text(later))
    watch.check(later)
    [(_, back)] = _published(page)
    assert _states(back) == {"site-b": ("stale", "fresh"), "site-c": ("unheard", "fresh")}
    assert watch.published == 3


def test_the_watch_reads_nothing_while_no_page_is_open_and_names_every_site_when_one_opens(engine):
    bus = LiveBus()
    watch = OfficeWatch(engine, _cfg(), bus)
    _heard(engine, "cab-a1", "site-a", utc_text(NOW))
    assert watch.check(NOW) is None and bus.published == 0
    page = bus.subscribe()
    watch.check(NOW + timedelta(seconds=60))
    [(_, msg)] = _published(page)
    assert _states(msg)["site-a"] == (None, "stale")  # not "what it was before the page opened"
    bus.unsubscribe(page)
    assert watch.check(NOW + timedelta(seconds=61)) is None
    again = bus.subscribe()
    watch.check(NOW + timedelta(seconds=62))
    [(_, msg)] = _published(again)
    assert set(_states(msg)) == {"site-a", "site-b", "site-c", "site-d"}


def test_one_office_publishes_nothing(engine):
    cfg = HubConfig.model_validate({"stations": [{"id": "cab-a1", "site": "site-a", "kind": "cabinet"}],
                                    "rules": {"site_stale_after_s": 60}})
    bus = LiveBus()
    page = bus.subscribe()
    _heard(engine, "cab-a1", "site-a", utc_text(NOW))
    watch = OfficeWatch(engine, cfg, bus)
    assert watch.check(NOW) is None and watch.check(NOW + timedelta(seconds=600)) is None
    assert _published(page) == []


def test_an_offices_message_names_its_well_formed_sites_and_skips_malformed_entries():
    # A message as the bus hands it over: what the watch sent names its sites, and an entry a
    # reader cannot read (not an object, or a site that is not text) costs only that entry.
    sent = OfficesChanged((OfficeChange("site-a", "stale", "fresh"), OfficeChange("site-b", "fresh", None)))
    assert OfficesChanged.sites_in(json.loads(json.dumps(sent.payload()))) == {"site-a", "site-b"}
    mixed = {"changes": [7, "site-c", {"site": ["site-a"]}, {"state": "stale"}, {"site": "site-b"}]}
    assert OfficesChanged.sites_in(mixed) == {"site-b"}
    assert OfficesChanged.sites_in({"changes": "site-a"}) == set()
    assert OfficesChanged.sites_in(["site-a"]) == set()
