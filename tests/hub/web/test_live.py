"""The live stream behind the status page, over a real waitress server: what the hub publishes
reaches an open page within a second, rendered in the reader's language; what was stored
while the page connected is sent first; a keepalive flows while nothing happens; a closed
page unsubscribes; stopping the server ends open streams at once."""
from __future__ import annotations

import http.client
import re
import socket
import time

import pytest

from hub.web import pages
from hub.web.server import WebServer
from tests.hub.helpers import event
from tests.support.web_app import Stream, store
from tests.support.mosquitto import wait_for


def test_a_new_event_and_alert_reach_an_open_page_within_a_second(server, users, bus, alert_center):
    stream = Stream(server.port, users["supervisor"])
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type").startswith("text/event-stream")
        wait_for(lambda: bus.subscribers == 1, timeout=5, what="the stream subscribed")
        started = time.monotonic()
        bus.publish("event", {"row_no": 1, "site": "ward-a", "station": "cabinet-1", "seq": 1,
                              "event_id": "0190a0a0-0000-7000-8000-000000000001", "kind": "door.forced",
                              "at": "2025-04-01T09:00:00+09:00", "badge": None, "person": None})
        msg = stream.wait_for("event", timeout=2)
        assert time.monotonic() - started < 1.0
        assert msg["station"] == "cabinet-1" and msg["door"] == "open"
        assert "扉のこじ開け" in msg["html"] and 'data-row-no="1"' in msg["html"]
        alert_id = alert_center.raise_alert(site="ward-a", station="cabinet-1", rule="forced", severity="critical",
                                            message="Door forced", params={"station": "cabinet-1"})
        msg = stream.wait_for("alert", timeout=2)
        assert msg["id"] == alert_id and msg["state"] == "open" and msg["open_count"] == 1
        assert f'/alerts/{alert_id}/ack' in msg["html"] and "csrf_token" in msg["html"]
        alert_center.acknowledge(alert_id, "sup-01", "checked")
        msg = stream.wait_for("alert_ack", timeout=2)
        assert msg["state"] == "acknowledged" and "確認者: sup-01" in msg["html"] and msg["open_count"] == 0
    finally:
        stream.close()


def test_station_and_heartbeat_updates_are_labelled_for_the_reader(server, users, bus):
    stream = Stream(server.port, users["auditor"])  # the auditor reads English
    try:
        wait_for(lambda: bus.subscribers == 1, timeout=5, what="the stream subscribed")
        bus.publish("station", {"site": "ward-a", "station": "cabinet-2", "state": "offline",
                                "at": "2025-04-01T00:00:00.000000Z"})
        msg = stream.wait_for("station")
        assert (msg["station"], msg["state"], msg["state_label"]) == ("cabinet-2", "offline", "Offline")
        assert msg["since_text"] == "2025-04-01 09:00:00"
        bus.publish("heartbeat", {"site": "ward-a", "station": "cabinet-1", "door": "open", "policy_version": 5,
                                  "at": "2025-04-01T09:00:00+09:00", "outbox_depth": 0})
        msg = stream.wait_for("heartbeat")
        assert (msg["door_label"], msg["policy_version"]) == ("Open", 5)
        bus.publish("heartbeat", {"site": "ward-a", "station": "cabinet-1", "door": "closed", "policy_version": 5,
                                  "at": "2025-04-01T09:00:30+09:00", "outbox_depth": 0, "peripherals": {
                                      "reader": {"state": "absent", "error": "unplugged", "detail": None,
                                                 "since": "2025-04-01T09:00:10+09:00"}}})
        msg = stream.wait_for("heartbeat")
        assert "Badge reader: unplugged" in msg["peripherals_html"] and "periph-absent" in msg["peripherals_html"]
        # An auditor's alert rows carry no acknowledge form.
    finally:
        stream.close()


def test_what_was_stored_while_connecting_is_sent_first(server, users, engine):
    store(engine, [("event", event("cabinet-1", n, kind="door.opened")) for n in (1, 2, 3)])
    stream = Stream(server.port, users["supervisor"], "/events/stream?after=1&alerts_after=0")
    try:
        assert [stream.wait_for("event")["row_no"] for _ in range(2)] == [2, 3]
    finally:
        stream.close()


def test_keepalive_flows_while_nothing_happens(server, users, bus, monkeypatch):
    monkeypatch.setattr(pages, "KEEPALIVE_S", 0.3)
    stream = Stream(server.port, users["supervisor"])
    try:
        wait_for(lambda: bus.subscribers == 1, timeout=5, what="the stream subscribed")
        assert stream.next_message(timeout=3) == ("comment", "keepalive")
    finally:
        stream.close()


def test_a_closed_page_unsubscribes_without_waiting_for_a_keepalive(server, users, bus):
    stream = Stream(server.port, users["supervisor"])
    wait_for(lambda: bus.subscribers == 1, timeout=5, what="the stream subscribed")
    stream.close()
    started = time.monotonic()
    wait_for(lambda: bus.subscribers == 0, timeout=5, what="the stream unsubscribed")
    assert time.monotonic() - started < pages.KEEPALIVE_S
    wait_for(lambda: server.app.extensions["kagiban"].streams == 0, timeout=5, what="the stream slot freed")


def test_a_stranger_gets_no_stream(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/events/stream")
    assert conn.getresponse().status == 401
    conn.close()


def test_stopping_the_server_ends_open_streams_promptly(app, users, bus):
    srv = WebServer(app, "127.0.0.1", 0).start()
    stream = Stream(srv.port, users["supervisor"])
    wait_for(lambda: bus.subscribers == 1, timeout=5, what="the stream subscribed")
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 3
    assert bus.subscribers == 0
    stream.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


def test_streams_beyond_the_limit_are_refused_so_pages_stay_reachable(server, users, bus):
    server.app.extensions["kagiban"].max_streams = 1
    first = Stream(server.port, users["supervisor"])
    try:
        wait_for(lambda: bus.subscribers == 1, timeout=5, what="the first stream subscribed")
        second = Stream(server.port, users["supervisor"])
        assert second.response.status == 503
        second.close()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        first.close()
    wait_for(lambda: server.app.extensions["kagiban"].streams == 0, timeout=5, what="the slot freed")


def test_a_heartbeat_updates_the_station_clock_cell_live(server, users, bus):
    from datetime import datetime, timedelta, timezone

    stream = Stream(server.port, users["auditor"])  # English
    try:
        wait_for(lambda: bus.subscribers == 1, timeout=5, what="the stream subscribed")
        ahead = (datetime.now(timezone.utc) + timedelta(seconds=600)).isoformat()
        bus.publish("heartbeat", {"site": "ward-a", "station": "cabinet-1", "door": "closed", "at": ahead,
                                  "clock_synced": True})
        msg = stream.wait_for("heartbeat")
        assert 'data-state="skewed"' in msg["clock_html"]
        assert re.search(r"Clock offset: \+(599|600)", msg["clock_html"]), msg["clock_html"]
        now = datetime.now(timezone.utc).isoformat()
        bus.publish("heartbeat", {"site": "ward-a", "station": "cabinet-1", "door": "closed", "at": now,
                                  "clock_synced": False})
        msg = stream.wait_for("heartbeat")
        assert 'data-state="unsynced"' in msg["clock_html"] and "Clock not synchronised" in msg["clock_html"]
    finally:
        stream.close()
