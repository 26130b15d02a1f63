"""Alert rules over stored events: real payloads through a real Ingest into a real SQLite
file, then the alerts table read back as a supervisor's page would."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from hub.store.schema import station_log, stations
from hub.store.timestamps import now_utc
from tests.hub.helpers import SITE, heartbeat, status
from tests.support.alert_stack import HOLIDAY, TUESDAY, ev
from tests.support.mosquitto import wait_for


# --- event rules ---

def test_a_forced_door_is_a_critical_alert(stack):
    msg = ev("cabinet-1", 1, "door.forced", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None)
    stack.feed(msg)
    [alert] = stack.alerts()
    assert (alert["rule"], alert["severity"], alert["state"]) == ("forced", "critical", "open")
    assert alert["event_id"] == msg[2]["id"]
    assert alert["station"] == "cabinet-1" and alert["site"] == SITE
    assert "Key cabinet 1" in alert["message"] and "2025-04-01 10:00:00" in alert["message"]
    assert alert["params"]["station_name"] == "Key cabinet 1"
    assert alert["params"]["at"] == "2025-04-01T10:00:00+09:00"
    # Published for the broker too, on the station's alert topic.
    [(topic_name, payload)] = stack.published
    assert topic_name == f"kagiban/{SITE}/cabinet-1/alert"
    assert json.loads(payload)["rule"] == "forced"


def test_held_open_and_denied_are_warnings_with_what_the_page_needs(stack):
    stack.feed(
        ev("cabinet-1", 1, "door.held_open", f"{TUESDAY}T11:00:00+09:00",
           data={"open_s": 65.2, "limit_s": 60, "authorised": True}),
        ev("cabinet-1", 2, "badge.denied", f"{TUESDAY}T11:05:00+09:00", badge="FFFFEEEEDDDDCCCC",
           person=None, data={"reason": "unknown"}),
    )
    held = stack.alerts("held_open")[0]
    assert held["severity"] == "warning"
    assert (held["params"]["open_s"], held["params"]["limit_s"], held["params"]["person"]) == (65, 60, "staff-001")
    denied = stack.alerts("denied")[0]
    assert denied["severity"] == "warning"
    assert denied["params"]["reason"] == "unknown" and denied["params"]["badge"] == "FFFFEEEEDDDDCCCC"
    assert "FFFFEEEEDDDDCCCC" in denied["message"] and "unknown badge" in denied["message"]
    assert stack.rules_of() == ["denied", "held_open"]  # nothing after hours at 11:00 on a Tuesday


def test_use_during_business_hours_raises_nothing(stack):
    stack.feed(
        ev("cabinet-1", 1, "badge.granted", f"{TUESDAY}T10:00:00+09:00", data={"flagged": False}),
        ev("cabinet-1", 2, "door.opened", f"{TUESDAY}T10:00:02+09:00", data={"authorised": True}),
        ev("cabinet-1", 3, "door.closed", f"{TUESDAY}T10:01:00+09:00", data={"open_s": 58}),
        ev("cabinet-1", 4, "key.used", f"{TUESDAY}T10:01:00+09:00", data={"flagged": False}),
    )
    assert stack.alerts() == []


def test_after_hours_on_a_weekday_evening_is_one_alert_per_use(stack):
    stack.feed(
        ev("cabinet-1", 1, "badge.granted", f"{TUESDAY}T19:30:00+09:00", data={"flagged": False}),
        ev("cabinet-1", 2, "door.opened", f"{TUESDAY}T19:30:03+09:00", data={"authorised": True}),
        ev("cabinet-1", 3, "door.closed", f"{TUESDAY}T19:32:00+09:00", data={"open_s": 117}),
        ev("cabinet-1", 4, "key.used", f"{TUESDAY}T19:32:00+09:00", data={"flagged": False}),
    )
    [alert] = stack.alerts()
    assert alert["rule"] == "after_hours" and alert["severity"] == "warning"
    assert alert["params"]["person"] == "staff-001"
    assert alert["params"]["hours"] == "08:30-17:15" and alert["params"]["holiday"] is False
    assert "After-hours badge unlock" in alert["message"] and "19:30:00" in alert["message"]


def test_a_forced_door_after_hours_is_both_forced_and_after_hours(stack):
    stack.feed(ev("cabinet-1", 1, "door.forced", f"{TUESDAY}T23:10:00+09:00", badge=None, person=None))
    assert stack.rules_of() == ["after_hours", "forced"]


def test_after_hours_follows_a_night_window_across_midnight(stack):
    # night-1 works Fri 22:00 - Sat 06:00.
    stack.feed(
        ev("night-1", 1, "badge.granted", "2025-04-04T23:30:00+09:00"),  # Friday night: inside
        ev("night-1", 2, "badge.granted", "2025-04-05T03:00:00+09:00"),  # Saturday early: inside
        ev("night-1", 3, "badge.granted", "2025-04-05T06:30:00+09:00"),  # after the window
        ev("night-1", 4, "badge.granted", "2025-04-01T10:00:00+09:00"),  # Tuesday office hours: outside
    )
    hits = sorted(a["params"]["seq"] for a in stack.alerts("after_hours"))
    assert hits == [3, 4]
    assert stack.alerts("after_hours")[0]["params"]["hours"] == "22:00-06:00"


def test_after_hours_all_day_on_a_holiday(stack):
    stack.feed(ev("cabinet-1", 1, "badge.granted", f"{HOLIDAY}T10:00:00+09:00"))
    [alert] = stack.alerts()
    assert alert["rule"] == "after_hours" and alert["params"]["holiday"] is True


def test_a_granted_but_flagged_badge_is_flagged_use(stack):
    stack.feed(ev("cabinet-1", 1, "badge.granted", f"{TUESDAY}T10:00:00+09:00",
                  badge="1111222233334444", person="S002",
                  data={"flagged": True, "reason": "", "offline": True}))
    [alert] = stack.alerts()
    assert (alert["rule"], alert["severity"]) == ("flagged_use", "warning")
    assert alert["params"]["person"] == "S002" and alert["params"]["decided_offline"] is True
    assert "Non-designated use of Key cabinet 1 by S002" in alert["message"]


def test_rules_run_again_at_start_raise_missed_alerts_once(make_stack):
    s = make_stack()
    at = now_utc().astimezone().isoformat()  # recent, so the start-up pass looks at it
    s.feed(ev("cabinet-1", 1, "door.forced", at, badge=None, person=None), rules=False)
    assert s.alerts() == []  # the hub stopped before its rules saw the event
    s.start_rules()
    assert [a["rule"] for a in s.alerts() if a["rule"] == "forced"] == ["forced"]
    before = len(s.alerts())
    s.stop_rules()
    s.start_rules()  # and again: nothing twice
    assert len(s.alerts()) == before


# --- presence ---

def test_a_last_will_raises_offline_at_once_and_a_heartbeat_brings_it_back(stack):
    stack.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1")))
    stack.feed(("status", "cabinet-1", status("cabinet-1", "offline")))
    [offline] = stack.alerts("offline")
    assert offline["params"]["cause"] == "last_will" and offline["severity"] == "warning"
    assert "went offline" in offline["message"]
    stack.feed(("status", "cabinet-1", status("cabinet-1", "offline")))  # retained again: no repeat
    stack.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1")))
    [online] = stack.alerts("online")
    assert online["severity"] == "info" and "back online" in online["message"]
    assert len(stack.alerts("offline")) == 1


def test_silence_past_the_grace_marks_the_station_offline_once_and_not_again_after_a_restart(make_stack):
    s = make_stack(rules={"offline_grace_s": 1})
    s.start_rules()
    s.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1")))
    # The rules thread ticks every second: offline after 1-3 s of silence.
    wait_for(lambda: s.alerts("offline"), timeout=6, what="offline alert after the grace")
    [offline] = s.alerts("offline")
    assert offline["params"]["cause"] == "no_heartbeat" and offline["params"]["silent_s"] >= 1
    with s.engine.connect() as conn:
        assert conn.execute(select(stations.c.state).where(stations.c.station == "cabinet-1")).scalar() == "offline"
        states = list(conn.execute(select(station_log.c.state).where(station_log.c.station == "cabinet-1")
                                   .order_by(station_log.c.id)).scalars())
    assert states == ["online", "offline"]

    s.stop_rules()  # the hub restarts during the outage
    rules = s.start_rules()
    rules.tick(now_utc() + timedelta(seconds=30))
    assert len(s.alerts("offline")) == 1  # not repeated

    s.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1")))
    [online] = s.alerts("online")
    assert online["station"] == "cabinet-1"
    with s.engine.connect() as conn:
        assert conn.execute(select(stations.c.state).where(stations.c.station == "cabinet-1")).scalar() == "online"


def test_a_station_that_went_offline_while_the_rules_were_down_is_not_forgotten(make_stack):
    s = make_stack()
    s.feed(("heartbeat", "cabinet-2", heartbeat("cabinet-2")), rules=False)
    s.feed(("status", "cabinet-2", status("cabinet-2", "offline")), rules=False)
    s.start_rules()
    [offline] = s.alerts("offline")
    assert offline["station"] == "cabinet-2"
    s.stop_rules()
    s.start_rules()
    assert len(s.alerts("offline")) == 1


def test_listed_stations_never_heard_from_are_not_reported_offline(make_stack):
    s = make_stack(rules={"offline_grace_s": 1})
    with s.engine.begin() as conn:  # as the hub registers a listed station before it reports
        conn.execute(stations.insert().values(station="cabinet-2", site=SITE, kind="cabinet", state="unknown"))
    rules = s.start_rules()
    rules.tick(now_utc() + timedelta(seconds=60))
    assert s.alerts() == []


# --- sequence gaps ---

def test_a_missing_seq_is_a_gap_after_the_grace(make_stack):
    s = make_stack(rules={"gap_grace_s": 1})
    s.start_rules()
    s.feed(*(ev("cabinet-1", n, "door.closed", f"{TUESDAY}T10:00:0{n}+09:00") for n in (1, 2, 5, 6)))
    assert s.alerts("seq_gap") == []  # within the grace: resends may still come
    wait_for(lambda: s.alerts("seq_gap"), timeout=6, what="seq_gap after the grace")
    [gap] = s.alerts("seq_gap")
    assert (gap["params"]["missing_from"], gap["params"]["missing_to"]) == (3, 4)
    assert gap["params"]["station"] == "cabinet-1" and "3-4" in gap["message"]

    s.stop_rules()  # a restart rebuilds the gap from the store but does not raise it again
    rules = s.start_rules()
    rules.tick(now_utc() + timedelta(seconds=30))
    assert len(s.alerts("seq_gap")) == 1


def test_a_seq_that_arrives_within_the_grace_is_no_gap(make_stack):
    s = make_stack(rules={"gap_grace_s": 5})
    rules = s.start_rules()
    s.feed(*(ev("cabinet-1", n, "door.closed", f"{TUESDAY}T10:00:0{n}+09:00") for n in (1, 2, 4)))
    s.feed(ev("cabinet-1", 3, "door.closed", f"{TUESDAY}T10:00:03+09:00"))  # a resend, out of order
    rules.tick(now_utc() + timedelta(seconds=60))
    assert s.alerts("seq_gap") == []


def test_a_gap_already_in_the_store_at_start_is_raised_after_the_grace(make_stack):
    s = make_stack(rules={"gap_grace_s": 5})
    s.feed(*(ev("cabinet-2", n, "door.closed", f"{TUESDAY}T10:00:0{n}+09:00") for n in (2, 3, 7)), rules=False)
    rules = s.start_rules()
    rules.tick(now_utc())
    assert s.alerts("seq_gap") == []
    rules.tick(now_utc() + timedelta(seconds=10))
    gaps = sorted((a["params"]["missing_from"], a["params"]["missing_to"]) for a in s.alerts("seq_gap"))
    assert gaps == [(1, 1), (4, 6)]


# --- outbox ---

def hb(station: str, depth: int, capacity: int = 1000):
    return ("heartbeat", station, {**heartbeat(station), "outbox_depth": depth, "outbox_capacity": capacity})


def test_a_filling_outbox_warns_once_until_it_has_drained(stack):
    stack.feed(hb("cabinet-1", 100), hb("cabinet-1", 500), hb("cabinet-1", 700))
    [alert] = stack.alerts("outbox_filling")
    assert (alert["params"]["depth"], alert["params"]["capacity"]) == (500, 1000)
    stack.feed(hb("cabinet-1", 300))  # still above half the ratio: no new warning after
    stack.feed(hb("cabinet-1", 600))
    assert len(stack.alerts("outbox_filling")) == 1
    stack.feed(hb("cabinet-1", 200), hb("cabinet-1", 800))  # drained below 25 %, filled again
    assert len(stack.alerts("outbox_filling")) == 2


# --- storage (disk full at the station) ---

ERROR = "OperationalError: database or disk is full"


def storage_hb(station: str, unrecorded: int, error: str | None = ERROR):
    return ("heartbeat", station, {**heartbeat(station), "unrecorded": unrecorded, "storage_error": error})


def outage_event(station: str, seq: int, since):
    return ev(station, seq, "storage.failed", now_utc().astimezone(since.tzinfo).isoformat(),
              data={"since": since.isoformat(), "kept": 3, "error": ERROR})


def test_a_station_keeping_records_in_memory_is_a_critical_alert_once(stack):
    stack.feed(storage_hb("cabinet-1", 2), storage_hb("cabinet-1", 3))
    [alert] = stack.alerts("storage_failed")
    assert alert["severity"] == "critical" and alert["params"]["unrecorded"] == 2
    # Recovered: the last heartbeat still names the error once, with nothing kept.
    stack.feed(storage_hb("cabinet-1", 0), storage_hb("cabinet-1", 0, None))
    assert len(stack.alerts("storage_failed")) == 1


def test_an_outage_no_heartbeat_told_of_is_raised_from_the_station_s_event(stack):
    # The hub was down while the disk was full: the station's event says so afterwards.
    since = now_utc() - timedelta(minutes=5)
    msg = outage_event("cabinet-1", 1, since)
    stack.feed(storage_hb("cabinet-1", 0), msg)
    [alert] = stack.alerts("storage_failed")
    assert alert["event_id"] == msg[2]["id"] and alert["params"]["unrecorded"] == 3


def test_an_outage_already_raised_live_is_not_raised_again_by_its_event(stack):
    since = now_utc() - timedelta(seconds=30)
    stack.feed(storage_hb("cabinet-1", 1))
    stack.feed(outage_event("cabinet-1", 1, since))
    assert len(stack.alerts("storage_failed")) == 1
    # A later outage is a new alert.
    stack.feed(outage_event("cabinet-1", 2, now_utc()))
    assert len(stack.alerts("storage_failed")) == 2


def test_the_live_bus_gets_every_alert(stack):
    q = stack.bus.subscribe()
    stack.feed(ev("cabinet-1", 1, "door.forced", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None))
    kind, text = q.get(timeout=5)
    assert kind == "alert" and json.loads(text)["rule"] == "forced"


# --- peripherals (camera, badge reader, GPIO pins) ---

def health(state: str = "ok", error: str | None = None, detail: str | None = None, minutes_ago: int = 1):
    since = (now_utc() - timedelta(minutes=minutes_ago)).astimezone().isoformat()
    return {"state": state, "error": error, "detail": detail, "since": since}


def periph_hb(station: str, **peripherals):
    return ("heartbeat", station, {**heartbeat(station), "peripherals": peripherals})


def test_a_camera_that_fails_is_raised_once_and_cleared_when_it_works_again(stack):
    failed = health("absent", "not_found", "no usable Pi camera")
    stack.feed(periph_hb("cabinet-1", pins=health(), reader=health(), camera=failed),
               periph_hb("cabinet-1", pins=health(), reader=health(), camera=failed))
    [alert] = stack.alerts("camera_failed")
    assert alert["severity"] == "warning" and alert["state"] == "open"
    assert alert["params"]["error_code"] == "not_found" and alert["params"]["state"] == "absent"
    assert alert["message"].startswith("The camera of Key cabinet 1 does not work (not found) since")
    assert stack.rules_of() == ["camera_failed"]
    # Plugged in: the next heartbeat says ok, and the hub says so once.
    stack.feed(periph_hb("cabinet-1", pins=health(), reader=health(), camera=health()),
               periph_hb("cabinet-1", pins=health(), reader=health(), camera=health()))
    [back] = stack.alerts("camera_ok")
    assert back["severity"] == "info" and "works again" in back["message"]
    # A later failure is a new outage.
    stack.feed(periph_hb("cabinet-1", camera=health("failed", "capture_timeout")))
    assert len(stack.alerts("camera_failed")) == 2


def test_reader_and_pins_alerts_and_the_japanese_wording(stack):
    from hub.alerting.wording import alert_text

    stack.feed(periph_hb("cabinet-1", pins=health("failed", "gpio_unavailable"),
                         reader=health("absent", "unplugged")))
    [reader] = stack.alerts("reader_failed")
    [pins] = stack.alerts("pins_failed")
    assert (reader["severity"], pins["severity"]) == ("warning", "critical")
    assert "取り外された" in alert_text("reader_failed", reader["params"], "ja")
    assert "扉を監視できず" in alert_text("pins_failed", pins["params"], "ja")


def test_an_open_peripheral_alert_survives_a_hub_restart(stack):
    stack.feed(periph_hb("cabinet-1", camera=health("absent", "not_found")))
    stack.stop_rules()
    stack.start_rules()
    stack.feed(periph_hb("cabinet-1", camera=health("absent", "not_found")))
    assert len(stack.alerts("camera_failed")) == 1  # not raised again by the restarted hub
    stack.feed(periph_hb("cabinet-1", camera=health()))
    assert len(stack.alerts("camera_ok")) == 1


def test_heartbeats_of_older_stations_raise_nothing(stack):
    stack.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1")))
    assert stack.alerts() == []


def test_a_snapshot_failed_event_is_stored_like_any_other(stack):
    forced = ev("cabinet-1", 1, "door.forced", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None)
    failed = ev("cabinet-1", 2, "snapshot.failed", f"{TUESDAY}T10:00:05+09:00", badge=None, person=None,
                data={"event_id": forced[2]["id"], "for_kind": "door.forced", "error": "capture_timeout",
                      "detail": "no frame within 5 s"})
    stack.feed(forced, failed)
    from hub.store.schema import events

    with stack.engine.connect() as conn:
        rows = conn.execute(select(events.c.kind, events.c.data).order_by(events.c.seq)).all()
    assert [r.kind for r in rows] == ["door.forced", "snapshot.failed"]
    assert json.loads(rows[1].data)["event_id"] == forced[2]["id"]


# --- the rule table over typed events ---

def test_every_event_rule_and_every_kind_the_wording_names_is_a_known_kind():
    from hub.alerting.rules import AFTER_HOURS_KINDS, EVENT_RULES
    from hub.alerting.wording import KIND_NAMES
    from kagiban.events import MODELS

    assert set(EVENT_RULES) <= set(MODELS)
    assert set(KIND_NAMES) <= set(MODELS)
    # after_hours says what was used: each kind it can be raised for has a name in the sentence.
    assert set(AFTER_HOURS_KINDS) <= set(KIND_NAMES)


def test_an_event_whose_data_have_a_wrong_type_is_stored_and_still_alerted_on(stack):
    # An old or faulty station: the wire takes data of any shape; the rule still fires, with
    # the values that fit (a number sent as text is read as missing, as if not sent).
    held = ev("cabinet-1", 1, "door.held_open", f"{TUESDAY}T11:00:00+09:00",
              data={"open_s": "sixty-five", "limit_s": 60, "authorised": "yes"})
    odd = ev("cabinet-1", 2, "lamp.lit", f"{TUESDAY}T11:00:01+09:00", data={"colour": "red"})
    stack.feed(held, odd)
    [alert] = stack.alerts()
    assert alert["rule"] == "held_open" and alert["event_id"] == held[2]["id"]
    assert (alert["params"]["open_s"], alert["params"]["limit_s"], alert["params"]["authorised"]) == (None, 60, None)
    assert "limit 60 s" in alert["message"]
    from hub.store.schema import events

    with stack.engine.connect() as conn:
        rows = conn.execute(select(events.c.kind, events.c.data).order_by(events.c.seq)).all()
    assert [(r.kind, json.loads(r.data)["colour" if r.kind == "lamp.lit" else "open_s"]) for r in rows] == [
        ("door.held_open", "sixty-five"), ("lamp.lit", "red")]
