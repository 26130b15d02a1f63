"""The web page inside a running hub: on its own free port, healthy once the broker link is
up, counting what the hub ingests, gone when the hub stops, absent when disabled."""
from __future__ import annotations

import base64
import json
import socket
import urllib.request

from hub.accounts.users import add_user
from tests.hub.helpers import encode, event
from tests.support.web_app import PASSWORD
from tests.support.mosquitto import wait_for


def get(url: str, user: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if user:
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_hub_serves_health_and_metrics_of_its_own_ingest(start_hub, station):
    hub = start_hub()
    assert hub.web_url and hub.web.port != 0
    status, body = get(hub.web_url + "healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "db": True, "broker": True}
    add_user(hub.engine, "aud-01", PASSWORD, "auditor")
    st = station("cabinet-1")
    st.publish("event", encode(event("cabinet-1", 1)))
    wait_for(lambda: st.acked_seqs() == {1}, timeout=10, what="the event acked")
    status, body = get(hub.web_url + "metrics", "aud-01")
    assert status == 200 and b"kagiban_events_ingested_total 1.0" in body
    status, body = get(hub.web_url + "api/events", "aud-01")
    assert [e["seq"] for e in json.loads(body)["events"]] == [1]
    port = hub.web.port
    hub.stop()
    assert hub.web_url is None
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_web_disabled_means_no_server(start_hub):
    hub = start_hub(web={"enabled": False})
    assert hub.web is None and hub.web_url is None
