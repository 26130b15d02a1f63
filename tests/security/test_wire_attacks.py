"""The wire attacks of the outside check (issue 11), replayed against a real mosquitto and a real
hub: a far-future event is stored flagged and never becomes the station's latest; a duplicate-key
event, NaN, Infinity and an offset of +23:59 are quarantined with their reason; a snapshot
carrying another station's event id is refused as forged_origin and the genuine one is then
stored. Every page of the hub (its real web server, HTTP Basic) answers throughout."""
from __future__ import annotations

import base64
import http.client
import json
import re
from datetime import datetime

import pytest
from sqlalchemy import select

from hub import config as hub_config
from hub.alerting.alerts import list_alerts
from hub.store.schema import events, quarantine, snapshots
from hub.service import Hub
from hub.accounts.users import add_user
from tests.hub.helpers import JPEG, JST, FakeStation, encode, event, heartbeat, snapshot, write_hub_config
from tests.support.mosquitto import wait_for

PASSWORD = "correct horse 01"


def _quarantined(engine) -> dict[str, str]:
    """reason -> topic of each quarantined message."""
    with engine.connect() as conn:
        return {r.reason: r.topic for r in conn.execute(select(quarantine.c.reason, quarantine.c.topic))}


def _now() -> str:
    return datetime.now(JST).isoformat()


def _get(port: int, path: str, user: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    try:
        conn.request("GET", path, headers={"Authorization": f"Basic {token}"})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _pages(hub: Hub) -> list[str]:
    """Every GET route without arguments (the stream excepted: it never ends by itself)."""
    return sorted(r.rule for r in hub.web.app.url_map.iter_rules()
                  if "GET" in r.methods and not r.arguments and r.endpoint != "pages.stream")


@pytest.fixture
def hub(broker, prefix, tmp_path):
    h = Hub(hub_config.load(write_hub_config(tmp_path / "hub", broker, prefix)))
    h.start()
    for role in ("admin", "supervisor", "auditor"):
        add_user(h.engine, f"{role}-1", PASSWORD, role)
    yield h
    h.stop()


def test_hostile_messages_are_refused_or_flagged_and_every_page_answers(broker, prefix, hub):
    st1 = FakeStation(broker, prefix, "cabinet-1")
    st2 = FakeStation(broker, prefix, "cabinet-2")
    try:
        # An honest event, then one from the year 9999, then an honest one again.
        first = event("cabinet-1", 1, kind="key.used", at=_now())
        st1.publish("event", encode(first))
        future = event("cabinet-1", 2, kind="door.forced", at="9999-12-31T23:59:59.999999+00:00")
        st1.publish("event", encode(future))
        later = event("cabinet-1", 3, kind="key.used", at=_now())
        st1.publish("event", encode(later))
        wait_for(lambda: st1.acked_seqs() >= {1, 2, 3}, timeout=10, what="three events acked")
        with hub.engine.connect() as conn:
            flags = dict(conn.execute(select(events.c.seq, events.c.time_flag)
                                      .where(events.c.station == "cabinet-1")).all())
        assert flags == {1: None, 2: "future", 3: None}

        # Hostile payloads, each byte for byte as an attacker would send them.
        raw = encode(event("cabinet-1", 4, kind="test.dupkey")).replace(
            b'"kind": "test.dupkey"', b'"kind": "test.dupkey", "kind": "door.forced"')
        assert raw.count(b'"kind"') == 2
        st1.publish("event", raw)
        st1.publish("event", encode(event("cabinet-1", 5, data={"n": 1})).replace(b'"n": 1', b'"n": NaN'))
        st1.publish("event", encode(event("cabinet-1", 6, data={"n": 1})).replace(b'"n": 1', b'"n": Infinity'))
        odd = event("cabinet-1", 7)
        odd["at"] = odd["at"].replace("+09:00", "+23:59")
        st1.publish("event", encode(odd))
        wait_for(lambda: {"duplicate_key", "bad_number", "bad_offset"} <= _quarantined(hub.engine).keys(),
                 timeout=10, what="the hostile events quarantined")
        with hub.engine.connect() as conn:
            kinds = list(conn.execute(select(events.c.kind).where(events.c.station == "cabinet-1")
                                      .order_by(events.c.seq)).scalars())
            reasons = list(conn.execute(select(quarantine.c.reason).order_by(quarantine.c.id)).scalars())
        assert kinds == ["key.used", "door.forced", "key.used"]  # nothing of seq 4-7 stored
        assert reasons == ["duplicate_key", "bad_number", "bad_number", "bad_offset"]
        # Only the stored door.forced (seq 2) raised "forced"; the duplicate-key one raised nothing.
        forced = wait_for(lambda: [a for a in list_alerts(hub.engine) if a["rule"] == "forced"], timeout=10,
                          what="forced alert of seq 2")
        assert [a["event_id"] for a in forced] == [future["id"]]

        # cabinet-2 sends a photo for cabinet-1's event first: refused; the genuine one is kept.
        st2.publish("snapshot", encode(snapshot("cabinet-2", later["id"], image=JPEG + b"forged")))
        wait_for(lambda: "forged_origin" in _quarantined(hub.engine), timeout=10, what="forged snapshot refused")
        assert _quarantined(hub.engine)["forged_origin"].endswith("/cabinet-2/snapshot")
        st1.publish("snapshot", encode(snapshot("cabinet-1", later["id"])))
        wait_for(lambda: later["id"] in st1.acked_snapshots(), timeout=10, what="genuine snapshot acked")
        with hub.engine.connect() as conn:
            stored = conn.execute(select(snapshots.c.station, snapshots.c.image)
                                  .where(snapshots.c.event_id == later["id"])).one()
        assert (stored.station, bytes(stored.image)) == ("cabinet-1", JPEG)

        # The station's latest is what arrived last, not the year 9999.
        st1.publish("heartbeat", encode(heartbeat("cabinet-1")))
        # Every page as the admin (each request signs in again: argon2), the main ones as the others.
        for path in _pages(hub):
            status, _body = _get(hub.web.port, path, "admin-1")
            assert status != 500, path
        for role in ("supervisor", "auditor"):
            for path in ("/", "/events", "/api/events", "/api/stations", f"/snapshots/{later['id']}.jpg"):
                status, _body = _get(hub.web.port, path, f"{role}-1")
                assert status in (200, 403), f"{path} as {role}: {status}"
        status, page = _get(hub.web.port, "/", "supervisor-1")
        row = re.search(r'<article id="station-cabinet-1".*?</article>', page, re.S).group(0)
        assert "9999" not in row and "data-time-flag" not in row  # seq 3, the last to arrive
        status, listing = _get(hub.web.port, "/api/events?station=cabinet-1", "auditor-1")
        assert status == 200
        api = json.loads(listing)
        assert [(e["seq"], e["time_flag"]) for e in api["events"]] == [(3, None), (2, "future"), (1, None)]
    finally:
        st1.close()
        st2.close()
