"""Alerts as a supervisor sees them: stored once, published, listed, acknowledged with a name,
a time and a comment, and readable in Japanese and English."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
import pytest

from hub.alerting.alerts import AlertCenter, count_open, get_alert, list_alerts
from hub.alerting.wording import alert_text
from hub.config import HubConfig
from hub.live import LiveBus
from kagiban.protocol import Alert, subscription
from tests.support.mosquitto import wait_for

SITE = "ward-a"
PARAMS = {"site": SITE, "site_name": "Ward A", "station": "cabinet-1", "station_name": "Key cabinet 1",
          "at": "2025-04-01T19:30:00+09:00", "zone": "Asia/Tokyo", "kind": "badge.granted",
          "person": "S002", "badge": "1111222233334444"}


@pytest.fixture
def cfg(prefix) -> HubConfig:
    return HubConfig.model_validate({"broker": {"prefix": prefix}})


def raise_one(center: AlertCenter, rule: str = "after_hours", event_id: str | None = "e-1", **kw) -> int:
    return center.raise_alert(site=SITE, station="cabinet-1", rule=rule, severity=kw.pop("severity", "warning"),
                              message=alert_text(rule, PARAMS), params=PARAMS, event_id=event_id, **kw)


def test_an_alert_is_stored_open_with_its_params(engine, cfg):
    center = AlertCenter(engine, cfg)
    raised = datetime(2025, 4, 1, 10, 31, tzinfo=timezone.utc)
    alert_id = raise_one(center, raised_at=raised)
    alert = get_alert(engine, alert_id)
    assert alert["state"] == "open" and alert["acked_by"] is None
    assert alert["raised_at"] == "2025-04-01T10:31:00.000000Z"
    assert alert["params"] == PARAMS
    assert alert["message"] == "After-hours badge unlock at Key cabinet 1 by S002 at 2025-04-01 19:30:00."
    assert count_open(engine) == 1


def test_the_same_event_and_rule_raise_only_once(engine, cfg):
    sent = []
    center = AlertCenter(engine, cfg, publish=lambda t, p: sent.append(t))
    first = raise_one(center)
    assert raise_one(center) == first  # the rules ran again over the same event
    other = raise_one(center, rule="flagged_use")  # another rule for the same event is another alert
    assert other != first
    assert len(list_alerts(engine)) == 2 and len(sent) == 2


def test_an_alert_reaches_a_broker_subscriber(broker, engine, cfg, prefix):
    got: list[bytes] = []
    ready = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sup-{prefix}", protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, *_: c.subscribe(subscription(prefix, "alert"), qos=1)
    client.on_subscribe = lambda *_: ready.append(1)
    client.on_message = lambda _c, _u, msg: got.append((msg.topic, msg.payload, msg.qos, msg.retain))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hub-{prefix}", protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        wait_for(lambda: ready, timeout=10, what="subscribed to alerts")
        center = AlertCenter(engine, cfg, publish=lambda t, p: pub.publish(t, p, qos=1).wait_for_publish(5))
        alert_id = raise_one(center, rule="forced", severity="critical")
        wait_for(lambda: got, timeout=10, what="alert on the broker")
        topic_name, payload, qos, retain = got[0]
        assert topic_name == f"{prefix}/{SITE}/cabinet-1/alert" and qos == 1 and not retain
        alert = Alert.model_validate_json(payload)
        assert (alert.id, alert.rule, alert.severity, alert.event_id) == (alert_id, "forced", "critical", "e-1")
    finally:
        for c in (client, pub):
            c.disconnect()
            c.loop_stop()


def test_acknowledge_records_who_when_and_why_once(engine, cfg):
    bus = LiveBus()
    q = bus.subscribe()
    center = AlertCenter(engine, cfg, bus=bus)
    alert_id = raise_one(center)
    assert q.get(timeout=2)[0] == "alert"

    assert center.acknowledge(alert_id, "supervisor-1", "checked with the night guard")
    alert = get_alert(engine, alert_id)
    assert alert["state"] == "acknowledged" and alert["acked_by"] == "supervisor-1"
    assert alert["ack_comment"] == "checked with the night guard" and alert["acked_at"].endswith("Z")
    kind, text = q.get(timeout=2)
    assert kind == "alert_ack" and json.loads(text)["acked_by"] == "supervisor-1"

    assert not center.acknowledge(alert_id, "supervisor-2", "again")  # already acknowledged
    assert get_alert(engine, alert_id)["acked_by"] == "supervisor-1"
    assert not center.acknowledge(9999, "supervisor-1", "")  # unknown
    assert count_open(engine) == 0


def test_the_page_lists_alerts_newest_first_and_filters_them(engine, cfg):
    center = AlertCenter(engine, cfg)
    a = raise_one(center, event_id="e-1", raised_at=datetime(2025, 4, 1, 1, tzinfo=timezone.utc))
    b = center.raise_alert(site="ward-b", station="door-9", rule="forced", severity="critical",
                           message="x", params={}, event_id="e-2",
                           raised_at=datetime(2025, 4, 1, 2, tzinfo=timezone.utc))
    c = raise_one(center, event_id="e-3", raised_at=datetime(2025, 4, 1, 3, tzinfo=timezone.utc))
    center.acknowledge(c, "supervisor-1", "")
    assert [r["id"] for r in list_alerts(engine)] == [c, b, a]
    assert [r["id"] for r in list_alerts(engine, state="open")] == [b, a]
    assert [r["id"] for r in list_alerts(engine, site="ward-b")] == [b]
    assert [r["id"] for r in list_alerts(engine, station="cabinet-1", limit=1)] == [c]
    assert get_alert(engine, 12345) is None


def test_alert_text_in_japanese_and_english():
    assert alert_text("after_hours", PARAMS, "ja") == (
        "Key cabinet 1で時間外のバッジによる解錠がありました（S002、2025-04-01 19:30:00）。")
    forced = {**PARAMS, "kind": "door.forced", "at": "2025-04-01T10:30:00+00:00"}
    assert alert_text("forced", forced, "en") == "Door forced open at Key cabinet 1 at 2025-04-01 19:30:00."
    gap = {"station": "cabinet-1", "missing_from": 3, "missing_to": 4, "grace_s": 120}
    assert alert_text("seq_gap", gap, "ja") == "cabinet-1のイベント3〜4が120秒以内に届きませんでした。"
    assert "?" in alert_text("denied", {"station": "cabinet-1"}, "en")  # missing params never fail


def test_an_unknown_severity_is_refused(engine, cfg):
    with pytest.raises(ValueError):
        raise_one(AlertCenter(engine, cfg), severity="panic")


def test_alerts_are_logged_as_warnings_with_their_text_never_as_errors(engine, cfg, caplog):
    caplog.set_level(logging.DEBUG, logger="hub.alerting.alerts")
    center = AlertCenter(engine, cfg)
    raise_one(center, rule="forced", event_id="e-forced", severity="critical")
    raise_one(center, rule="after_hours", event_id="e-late", severity="warning")
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "hub.alerting.alerts"]
    assert [level for level, _text in logged] == [logging.WARNING, logging.WARNING]
    assert "forced (critical)" in logged[0][1] and alert_text("forced", PARAMS) in logged[0][1]
    assert logged[1][1].endswith(alert_text("after_hours", PARAMS))
