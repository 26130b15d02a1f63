"""A signed event the hub refuses, sent again and again by its station (the hub does not
acknowledge it, so the station resends it on every reconnect): kept once in quarantine with a
count of its repeats, and one critical ``bad_signature`` alert for the supervisors the first
time a station sends one. Through a real mosquitto and a real hub (ingest, rules, alerts)."""
from __future__ import annotations

import io

import uuid6
from sqlalchemy import select

from hub import config as hub_config
from hub.audit import verify
from hub.alerting.alerts import list_alerts
from hub.alerting.wording import alert_text
from hub.store.schema import quarantine
from hub.service import Hub
from hub.stations.keys import add_key
from kagiban.event_signing import EventSigner, create_station_key
from kagiban.signing import public_key_b64
from tests.hub.helpers import FakeStation, write_hub_config
from tests.security.signed_store import STATION, signed_event
from tests.support.mosquitto import wait_for


def _quarantine(engine) -> list[tuple[int, str, int]]:
    """(seq, reason, repeats) of each quarantined message, oldest first."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(quarantine.c.seq, quarantine.c.reason, quarantine.c.repeats)
                                               .order_by(quarantine.c.id))]


def _alerts(hub: Hub) -> list[dict]:
    return [a for a in list_alerts(hub.engine) if a["rule"] == "bad_signature"]


def test_a_refused_event_resent_is_quarantined_once_and_alerted_once(broker, prefix, tmp_path):
    hub = Hub(hub_config.load(write_hub_config(tmp_path / "hub", broker, prefix, web={"enabled": False})))
    hub.start()
    st = FakeStation(broker, prefix, STATION)
    key = create_station_key(tmp_path / "station.key")
    signer, incarnation = EventSigner(key), str(uuid6.uuid7())
    try:
        wait_for(hub.connected.is_set, timeout=10, what="hub subscribed")
        add_key(hub.engine, STATION, public_key_b64(key))
        st.publish("event", signed_event(signer, 1, incarnation)[1])
        wait_for(lambda: 1 in st.acked_seqs(), timeout=10, what="the genuine seq 1 acked")

        # Seq 2 altered after signing (another person): refused, and sent again twice more.
        forged = signed_event(signer, 2, incarnation)[1].replace(b'"staff-001"', b'"staff-666"')
        for _ in range(3):
            st.publish("event", forged)
        wait_for(lambda: _quarantine(hub.engine) == [(2, "bad_signature", 2)], timeout=10,
                 what="one quarantined copy counting two repeats")
        alerts = wait_for(lambda: _alerts(hub), timeout=10, what="bad_signature alert")
        assert len(alerts) == 1 and alerts[0]["severity"] == "critical" and alerts[0]["station"] == STATION
        assert alerts[0]["params"]["reason"] == "bad_signature" and alerts[0]["params"]["seq"] == 2
        assert "(seq 2) whose signature the hub refused (signature does not match)" in alert_text(
            "bad_signature", alerts[0]["params"], "en")
        assert "署名を検証できないイベント（連番2、署名が一致しない）" in alert_text("bad_signature", alerts[0]["params"], "ja")
        assert 2 not in st.acked_seqs()  # not acknowledged: a key registered late would let it through

        # Another refused event while that alert is open: quarantined, no second alert.
        st.publish("event", signed_event(signer, 3, incarnation)[1].replace(b'"staff-001"', b'"staff-667"'))
        wait_for(lambda: len(_quarantine(hub.engine)) == 2, timeout=10, what="seq 3 quarantined")
        hub.rules.flush()
        assert len(_alerts(hub)) == 1

        # Once a supervisor has acknowledged it, the next refusal alerts again.
        assert hub.alerts.acknowledge(alerts[0]["id"], "supervisor-a", "unit checked; key re-registered")
        st.publish("event", signed_event(signer, 4, incarnation)[1].replace(b'"staff-001"', b'"staff-668"'))
        wait_for(lambda: len(_alerts(hub)) == 2, timeout=10, what="a second bad_signature alert")
        assert _quarantine(hub.engine) == [(2, "bad_signature", 2), (3, "bad_signature", 0), (4, "bad_signature", 0)]
    finally:
        st.close()
        hub.stop()
    # The repeats are counts on the first copy: the quarantine's side log still matches it.
    out = io.StringIO()
    assert verify.run(f"sqlite:///{tmp_path / 'hub' / 'data' / 'kagiban.db'}", out) == 0, out.getvalue()
    assert "quarantine: OK: 3 entries, log intact and matching the store" in out.getvalue().splitlines()
