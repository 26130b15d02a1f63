"""The heartbeat's next_seq drives the gap logic (per incarnation), and the station's clock as
heartbeats show it raises clock_skew and clock_unsynced: real payloads through a real Ingest
into a real SQLite file, the rules applied to what was committed."""
from __future__ import annotations

from datetime import datetime, timedelta

from hub.store.timestamps import now_utc
from tests.hub.helpers import JST, event, heartbeat

INC = "0190f3a0-1b2c-7d4e-8f60-718293a4b5c6"


def hb(station: str, *, next_seq: int = 1, offset_s: float = 0.0, synced: bool | None = None,
       incarnation: str | None = None) -> dict:
    body = heartbeat(station)
    body.update(next_seq=next_seq, at=(datetime.now(JST) + timedelta(seconds=offset_s)).isoformat())
    if synced is not None:
        body["clock_synced"] = synced
    if incarnation is not None:
        body["incarnation"] = incarnation
    return body


def test_a_heartbeat_ahead_of_the_stored_seqs_is_a_gap_after_the_grace(make_stack):
    s = make_stack(rules={"gap_grace_s": 5})
    rules = s.start_rules()
    s.feed(("event", "cabinet-1", event("cabinet-1", 1)), ("event", "cabinet-1", event("cabinet-1", 2)))
    s.feed(("heartbeat", "cabinet-1", hb("cabinet-1", next_seq=6)))  # 3, 4, 5 numbered, not here
    rules.tick(now_utc() + timedelta(seconds=1))
    assert s.alerts("seq_gap") == []
    rules.tick(now_utc() + timedelta(seconds=10))
    [gap] = s.alerts("seq_gap")
    assert (gap["params"]["missing_from"], gap["params"]["missing_to"], gap["params"]["count"]) == (3, 5, 3)


def test_events_the_heartbeat_announced_that_arrive_within_the_grace_are_no_gap(make_stack):
    s = make_stack(rules={"gap_grace_s": 5})
    rules = s.start_rules()
    s.feed(("event", "cabinet-1", event("cabinet-1", 1)), ("heartbeat", "cabinet-1", hb("cabinet-1", next_seq=4)))
    s.feed(*(("event", "cabinet-1", event("cabinet-1", n)) for n in (3, 2)))  # in flight, out of order
    s.feed(("heartbeat", "cabinet-1", hb("cabinet-1", next_seq=4)))  # again: nothing new missing
    rules.tick(now_utc() + timedelta(seconds=60))
    assert s.alerts("seq_gap") == []


def test_next_seq_counts_in_its_own_incarnation(make_stack):
    s = make_stack(rules={"gap_grace_s": 5})
    rules = s.start_rules()
    s.feed(*(("event", "cabinet-1", event("cabinet-1", n)) for n in (1, 2, 3)))
    # A replaced outbox: seq 1 and 2 of the new incarnation are not here yet.
    s.feed(("heartbeat", "cabinet-1", hb("cabinet-1", next_seq=3, incarnation=INC)))
    rules.tick(now_utc() + timedelta(seconds=60))
    [gap] = s.alerts("seq_gap")
    assert (gap["params"]["missing_from"], gap["params"]["missing_to"], gap["params"]["incarnation"]) == (1, 2, INC)


def test_a_clock_ten_minutes_ahead_raises_clock_skew_once_until_it_is_back(stack):
    stack.feed(("heartbeat", "cabinet-1", hb("cabinet-1", offset_s=600)))
    stack.feed(("heartbeat", "cabinet-1", hb("cabinet-1", offset_s=601)))
    [skew] = stack.alerts("clock_skew")
    assert skew["params"]["cause"] == "ahead" and skew["params"]["limit_s"] == 120
    assert "600" in skew["message"] and "ahead" in skew["message"]
    stack.feed(("heartbeat", "cabinet-1", hb("cabinet-1", offset_s=0)))
    stack.feed(("heartbeat", "cabinet-1", hb("cabinet-1", offset_s=-300)))
    skews = stack.alerts("clock_skew")
    assert [a["params"]["cause"] for a in skews] == ["behind", "ahead"]  # newest first
    assert stack.alerts("clock_skew", station="cabinet-2") == []


def test_a_clock_within_the_threshold_raises_nothing(stack):
    stack.feed(("heartbeat", "cabinet-1", hb("cabinet-1", offset_s=100, synced=True)))
    assert stack.alerts("clock_skew") == [] and stack.alerts("clock_unsynced") == []


def test_a_station_saying_its_clock_is_not_synchronised_raises_clock_unsynced_once(stack):
    stack.feed(*(("heartbeat", "cabinet-2", hb("cabinet-2", synced=False)) for _ in range(3)))
    [alert] = stack.alerts("clock_unsynced")
    assert alert["station"] == "cabinet-2" and "not synchronised" in alert["message"]
    stack.stop_rules()  # a restart remembers it is out while the station still says so
    stack.start_rules()
    stack.feed(("heartbeat", "cabinet-2", hb("cabinet-2", synced=False)))
    assert len(stack.alerts("clock_unsynced")) == 1
    stack.feed(("heartbeat", "cabinet-2", hb("cabinet-2", synced=True)),
               ("heartbeat", "cabinet-2", hb("cabinet-2", synced=False)))
    assert len(stack.alerts("clock_unsynced")) == 2
