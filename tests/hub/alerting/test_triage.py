"""What a supervisor relies on when triaging: a station back online closes its own
offline/online pair (by the hub, logged, checked by verify), a unit stopped on purpose raises
no offline alert, several alerts are acknowledged with one comment (each logged), and a
station in maintenance still gets its alerts stored but nobody notified."""
from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import func, select

from hub.alerting import maintenance
from hub.alerting.alerts import AlertCenter, get_alert
from hub.audit import verify
from hub.store.schema import alerts, side_log, stations
from hub.store.timestamps import now_utc
from tests.support.alert_stack import Stack
from tests.hub.helpers import SITE, heartbeat, status


def _verify(s: Stack) -> str:
    out = io.StringIO()
    assert verify.run(s.cfg.db_url(), out=out) == 0, out.getvalue()
    return out.getvalue()


def test_a_station_back_online_closes_its_offline_and_online_alerts_without_a_supervisor(tmp_path):
    s = Stack(tmp_path)
    s.start_rules()
    try:
        s.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1")))
        s.feed(("status", "cabinet-1", status("cabinet-1", "offline")))
        [offline] = s.alerts("offline")
        assert offline["state"] == "open"
        s.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1")))
        [offline] = s.alerts("offline")
        [online] = s.alerts("online")
        for alert in (offline, online):
            assert alert["state"] == "closed" and alert["close_reason"] == "back_online"
            assert alert["acked_by"] is None and alert["closed_at"]
        text = _verify(s)  # verify walks the closings too
        assert "2 closed by the hub" in text
        # A closing altered by hand is caught.
        with s.engine.begin() as conn:
            conn.execute(alerts.update().where(alerts.c.id == offline["id"]).values(close_reason="forged"))
        out = io.StringIO()
        assert verify.run(s.cfg.db_url(), out=out) == 1
        assert f"closing of alert {offline['id']} altered (close_reason)" in out.getvalue()
    finally:
        s.close()


def test_a_unit_stopped_on_purpose_is_shown_stopped_and_raises_no_offline_alert(tmp_path):
    s = Stack(tmp_path, rules={"offline_grace_s": 1})
    rules = s.start_rules()
    try:
        s.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1")))
        s.feed(("status", "cabinet-1", status("cabinet-1", "stopped")))
        rules.tick(now_utc() + timedelta(seconds=60))  # long past the grace: still no alert
        assert s.alerts() == []
        with s.engine.connect() as conn:
            assert conn.execute(select(stations.c.state).where(stations.c.station == "cabinet-1")).scalar() == "stopped"
        s.stop_rules()  # and none after a hub restart either
        s.start_rules().tick(now_utc() + timedelta(seconds=60))
        assert s.alerts() == []
        s.feed(("status", "cabinet-1", status("cabinet-1", "online")))
        assert s.alerts() == []  # back from a stop is no "back online"
        # A station that started again and then goes silent is an outage again.
        s.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1")))
        s.rules.tick(now_utc() + timedelta(seconds=60))
        assert [a["rule"] for a in s.alerts()] == ["offline"]
    finally:
        s.close()


def test_several_alerts_acknowledged_with_one_comment_are_each_logged(tmp_path):
    s = Stack(tmp_path)
    center = AlertCenter(s.engine, s.cfg)
    try:
        params = {"site": SITE, "station": "cabinet-1", "at": "2025-04-01T19:30:00+09:00"}
        ids = [center.raise_alert(site=SITE, station="cabinet-1", rule="held_open", severity="warning",
                                  message="held", params=params, event_id=f"e-{i}") for i in range(3)]
        done = center.acknowledge_many([ids[0], ids[1], ids[1], 999], "sup1", "checked the door")
        assert done == ids[:2]
        assert center.acknowledge_many(ids[:2], "sup2", "again") == []  # already done
        for alert_id in ids[:2]:
            alert = get_alert(s.engine, alert_id)
            assert (alert["state"], alert["acked_by"], alert["ack_comment"]) == (
                "acknowledged", "sup1", "checked the door")
        assert get_alert(s.engine, ids[2])["state"] == "open"
        with s.engine.connect() as conn:
            acks = conn.execute(select(func.count()).select_from(side_log).where(
                side_log.c.part == "alerts", side_log.c.entry.like('%"acknowledged"%'))).scalar()
        assert acks == 2
        assert "(3 alerts, 2 acknowledgements)" in _verify(s)
    finally:
        s.close()


class _Notifier:
    """Counts the deliveries scheduled (as the real notifier, one per target)."""

    def __init__(self):
        self.scheduled: list[int] = []

    def schedule(self, conn, alert_id, site, now_text):
        self.scheduled.append(alert_id)
        return 1

    def wake(self):
        pass


def test_alerts_of_a_station_in_maintenance_are_stored_but_not_notified(tmp_path):
    s = Stack(tmp_path)
    notifier = _Notifier()
    center = AlertCenter(s.engine, s.cfg, notifier=notifier)
    try:
        params = {"site": SITE, "station": "cabinet-1", "at": "2025-04-01T19:30:00+09:00"}
        maintenance.start(s.engine, "cabinet-1", 2, "replacing the reader", "sup1")
        quiet = center.raise_alert(site=SITE, station="cabinet-1", rule="forced", severity="critical",
                                   message="forced", params=params, event_id="e-1")
        loud = center.raise_alert(site=SITE, station="cabinet-2", rule="forced", severity="critical",
                                  message="forced", params={**params, "station": "cabinet-2"}, event_id="e-2")
        assert notifier.scheduled == [loud]
        assert get_alert(s.engine, quiet)["params"]["maintenance"] is True
        assert "maintenance" not in get_alert(s.engine, loud)["params"]
        assert set(maintenance.active(s.engine)) == {"cabinet-1"}
        assert maintenance.end(s.engine, "cabinet-1", "sup1")
        assert maintenance.active(s.engine) == {}
        again = center.raise_alert(site=SITE, station="cabinet-1", rule="forced", severity="critical",
                                   message="forced", params=params, event_id="e-3")
        assert notifier.scheduled == [loud, again]
        _verify(s)
    finally:
        s.close()
