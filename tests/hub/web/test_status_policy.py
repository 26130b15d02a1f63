"""The status page compares each station's policy version (as its heartbeat reports it) with
the latest the hub published, and warns when a station has held an older one for more than a
minute (hub.alerting.rules.POLICY_STALE_S); the live stream carries the same comparison."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from hub.alerting.rules import POLICY_STALE_S
from hub.store.schema import policies
from hub.store.timestamps import now_utc, utc_text
from hub.web.data import station_overview
from tests.hub.helpers import heartbeat
from tests.support.web_app import store
from tests.support.web_app import Stream
from tests.support.mosquitto import wait_for


def latest(engine, station: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(policies.c.version).where(policies.c.station == station)).scalar_one()


def published_ago(engine, seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(update(policies).values(published_at=utc_text(now_utc() - timedelta(seconds=seconds))))


def station_row(page: str, station: str) -> str:
    return page.split(f'id="station-{station}"')[1].split("</article>")[0]


def issued(version: int) -> str:
    """How the page shows a policy version: its issue time (unix ms) in Tokyo, in the one format."""
    at = datetime.fromtimestamp(version / 1000, ZoneInfo("Asia/Tokyo"))
    return f"{at:%Y-%m-%d %H:%M:%S} 発行"


def visible_pill(row: str) -> str | None:
    found = re.search(r'data-field="policy-state"\s*(hidden)?>([^<]*)<', row)
    return None if found is None or found.group(1) else found.group(2)


def test_a_station_behind_for_more_than_a_minute_is_marked_stale(as_supervisor, engine):
    one, two = latest(engine, "cabinet-1"), latest(engine, "cabinet-2")
    store(engine, [("heartbeat", heartbeat("cabinet-1", policy_version=one)),
                   ("heartbeat", heartbeat("cabinet-2", policy_version=two - 1))])

    # Just published: cabinet-2 is about to take it.
    page = as_supervisor.get("/").get_data(as_text=True)
    assert "policy-current" in station_row(page, "cabinet-1") and visible_pill(station_row(page, "cabinet-1")) is None
    assert "policy-pending" in station_row(page, "cabinet-2")
    assert visible_pill(station_row(page, "cabinet-2")) == "更新待ち"
    assert 'id="policy-stale-warning"' not in page

    published_ago(engine, POLICY_STALE_S + 5)
    page = as_supervisor.get("/").get_data(as_text=True)
    row = station_row(page, "cabinet-2")
    assert "policy-stale" in row and visible_pill(row) == "古い版のまま"
    assert issued(two - 1) in row and f'data-version="{two - 1}"' in row and f"最新: {issued(two)}" in row
    warning = page.split('id="policy-stale-warning"')[1].split("</p>")[0]
    assert "cabinet-2" in warning and "Cabinet 1" not in warning
    assert "policy-current" in station_row(page, "cabinet-1")


def test_the_stations_api_carries_the_comparison(as_supervisor, engine):
    store(engine, [("heartbeat", heartbeat("cabinet-1", policy_version=1))])
    published_ago(engine, POLICY_STALE_S * 2)
    body = as_supervisor.get("/api/stations").get_json()
    one = next(s for s in body["stations"] if s["station"] == "cabinet-1")
    two = next(s for s in body["stations"] if s["station"] == "cabinet-2")
    assert (one["policy_state"], one["policy_version"], one["policy_latest"]) == (
        "stale", 1, latest(engine, "cabinet-1"))
    assert two["policy_state"] == "unknown"  # never heard from: nothing to compare


def test_a_station_without_any_policy_from_the_hub_is_shown_as_such(engine, cfg):
    with engine.begin() as conn:
        conn.execute(policies.delete())
    store(engine, [("heartbeat", heartbeat("cabinet-1", policy_version=None))])
    rows = {r["station"]: r for r in station_overview(engine, cfg)}
    assert rows["cabinet-1"]["policy_state"] == "none"


def test_heartbeats_on_the_live_stream_say_whether_the_policy_is_stale(server, users, bus, engine):
    published_ago(engine, POLICY_STALE_S + 5)
    version = latest(engine, "cabinet-1")
    stream = Stream(server.port, users["supervisor"])
    try:
        wait_for(lambda: bus.subscribers == 1, timeout=5, what="the stream subscribed")
        bus.publish("heartbeat", {"site": "ward-a", "station": "cabinet-1", "door": "closed",
                                  "policy_version": version - 1, "at": "2025-04-01T09:00:00+09:00"})
        msg = stream.wait_for("heartbeat")
        assert (msg["policy_state"], msg["policy_state_label"]) == ("stale", "古い版のまま")
        assert msg["policy_latest_text"] == f"最新: {issued(version)}"
        assert msg["policy_text"] == issued(version - 1)
        bus.publish("heartbeat", {"site": "ward-a", "station": "cabinet-1", "door": "closed",
                                  "policy_version": version, "at": "2025-04-01T09:00:05+09:00"})
        assert stream.wait_for("heartbeat")["policy_state"] == "current"
    finally:
        stream.close()


def test_an_expired_policy_and_the_last_refusal_are_shown_on_the_station_row(as_supervisor, engine):
    from tests.support.web_app import csrf_from

    hb = heartbeat("cabinet-1", policy_version=latest(engine, "cabinet-1"))
    hb.update(policy_expired=True, policy_refused="version_ahead")
    store(engine, [("heartbeat", hb), ("heartbeat", heartbeat("cabinet-2", policy_version=1))])
    page = as_supervisor.get("/").get_data(as_text=True)
    row = station_row(page, "cabinet-1")
    assert 'data-field="policy-expired">ポリシー期限切れ<' in row
    assert 'data-reason="version_ahead">受け取り拒否: version_ahead<' in row
    other = station_row(page, "cabinet-2")
    assert "policy-expired" not in other and "policy-refused" not in other
    as_supervisor.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    english = as_supervisor.get("/").get_data(as_text=True)
    assert ">Policy expired<" in station_row(english, "cabinet-1")
