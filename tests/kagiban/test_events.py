"""Typed events (kagiban/events.py): each kind's data as a station sends it reads back as its
model and is written out unchanged; a wrong type is refused by the model but never loses the
event (the wire takes it as it always has, the hub reads the rest); unknown kinds are kept."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from kagiban import events as ev
from kagiban.protocol import ProtocolError, parse_station_payload
from tests.hub.helpers import SITE, event

JST = timezone(timedelta(hours=9))
T = "2025-04-01T10:00:00.250000+09:00"
T2 = "2025-04-01T10:00:42+09:00"
UUID = "0190f3a2-7c1e-7b3a-9f00-3c2d1e0a4b5c"
JOB = {"id": 12, "title": "Juminhyo.pdf", "pages": 2}

# One event of every kind, as the stations write its data (docs/protocol.md, "Event kinds").
GOOD: dict[str, dict] = {
    "station.started": {"policy_version": 7, "outbox_depth": 0, "door": "closed"},
    "storage.corrupt": {"store": "outbox", "moved_to": ["outbox.sqlite.corrupt-20250401T010000Z"],
                        "error": "DatabaseError: malformed", "previous_incarnation": None,
                        "previous_next_seq": 43, "previous_highest_seq": 42, "previous_unsent": 3},
    "storage.failed": {"since": T, "kept": 4, "error": "OSError: [Errno 28] No space left on device"},
    "snapshot.failed": {"event_id": UUID, "for_kind": "door.forced", "error": "capture_timeout",
                        "detail": "no frame in 5 s"},
    "policy.rejected": {"reason": "bad_signature", "offered_version": 9, "held_version": 8},
    "badge.granted": {"reason": "designated_holder", "flagged": False, "unlock_s": 5.0, "decision": "allow",
                      "policy_version": 7, "offline": True},
    "badge.denied": {"reason": "unknown", "decision": "deny", "clock_unsynced": True},
    "door.opened": {"authorised": True, "flagged": False},
    "door.closed": {"authorised": True, "open_s": 42.5, "opened_at": T},
    "door.forced": {},
    "door.intrusion": {"authorised": False},
    "door.held_open": {"open_s": 61.0, "limit_s": 60.0, "authorised": None},
    "key.used": {"unlocked_at": T, "opened_at": T, "closed_at": T2, "duration_s": 41.75, "flagged": True,
                 "reason": "not_designated"},
    "unlock.expired": {"unlock_s": 5.0, "unlocked_at": T, "flagged": False},
    "unlock.ended": {"reason": "superseded", "unlocked_at": T, "unlock_s": 5.0, "by_badge": "0123456789ABCDEF",
                     "by_person": None, "flagged": False},
    "shred.waiting": {"window_s": 15.0},
    "shred.refused": {"reason": "same_person", "first_badge": "0123456789ABCDEF", "first_person": "S0012",
                      "window_s": 15.0},
    "shred.started": {"people": ["S0012", "S0031"], "badges": ["0123456789ABCDEF", "FEDCBA9876543210"],
                      "flagged": [False, True], "max_s": 600.0, "paired_s": 4.2},
    "shred.ended": {"people": ["S0012", "S0031"], "badges": ["0123456789ABCDEF", "FEDCBA9876543210"],
                    "started_at": T, "ended_at": T2, "duration_s": 41.75, "ended_by": "tap", "max_s": 600.0,
                    "ended_by_badge": "0123456789ABCDEF", "ended_by_person": "S0012"},
    "bin.opened": {"during_session": True},
    "bin.closed": {},
    "print.released": {"user": "S0012", "jobs": [JOB], "count": 1, "not_released": [{**JOB, "id": 13}]},
    "print.release_failed": {"user": "S0012", "reason": "no_jobs", "still_held": 0},
    "print.printed": {"jobs": [{"id": 12, "state": "completed", "pages": 2}], "count": 1},
    "print.queue": {"held": 3, "oldest_s": 812.4},
    "print.expired": {"jobs": [{**JOB, "user": "S0012"}], "count": 1, "limit_s": 28800.0},
    "cups.down": {"reason": "cups_down"},
    "cups.up": {},
    "tray.uncollected": {"minutes": 5.0, "since": T, "limit_s": 300.0},
    "tray.collected": {"lay_s": 312.5, "after_alert": True},
    "annunciator.silenced": {"alerts": [118, 121], "count": 2},
    "rollcall.tap": {"session": 7, "answer": "late"},
    "key.purpose": {"purpose": "register", "unlocked_at": T},
}


def test_every_kind_has_a_good_example_here():
    assert set(GOOD) == set(ev.MODELS)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_a_good_event_of_each_kind_reads_as_its_model_and_writes_back_the_same_data(kind):
    typed = ev.read(kind, GOOD[kind])
    assert type(typed) is ev.MODELS[kind] and typed.kind == kind
    # Nothing was left out: the model takes the data as they are, and writes them unchanged
    # (same keys and values, numbers and times as text as the station had them; the kind's own
    # keys in the order the station writes them, the agent's keys being added after).
    assert typed == ev.MODELS[kind].model_validate(GOOD[kind])
    written = typed.data()
    assert json.loads(json.dumps(written)) == GOOD[kind]
    own = set(ev.MODELS[kind].model_fields) - set(ev.EventData.model_fields)
    assert [k for k in written if k in own] == [k for k in GOOD[kind] if k in own]
    # The same through the union discriminated on kind.
    assert ev.KIND_DATA.validate_python({"kind": kind, **GOOD[kind]}) == typed


def test_times_read_as_aware_datetimes_and_numbers_keep_their_type():
    used = ev.read("key.used", GOOD["key.used"])
    assert used.closed_at == datetime(2025, 4, 1, 10, 0, 42, tzinfo=JST)
    assert ev.read("door.held_open", {"limit_s": 60}).limit_s == 60
    assert ev.read("door.held_open", {"limit_s": 60}).data() == {"limit_s": 60}  # not 60.0


# A wrong type in each kind's data: the value, and the field it lands in.
WRONG = [
    ("door.held_open", "open_s", "65"),          # a number as text
    ("badge.granted", "flagged", 1),             # 1 is no boolean
    ("key.used", "unlocked_at", "yesterday"),    # no ISO time
    ("key.used", "opened_at", "2025-04-01T10:00:00"),  # a time without offset
    ("shred.started", "people", "S0012"),        # a list expected
    ("print.expired", "count", 1.5),             # an int expected
    ("badge.denied", "decision", "maybe"),       # not a decision
    ("badge.denied", "clock_unsynced", False),   # true when present
]


@pytest.mark.parametrize("kind,key,value", WRONG)
def test_the_model_refuses_a_wrong_type(kind, key, value):
    with pytest.raises(ValidationError) as err:
        ev.MODELS[kind].model_validate({**GOOD[kind], key: value})
    assert err.value.errors()[0]["loc"][0] == key


@pytest.mark.parametrize("kind,key,value", WRONG)
def test_a_wrong_type_is_left_out_when_read_and_the_rest_of_the_event_is_kept(kind, key, value):
    typed = ev.read(kind, {**GOOD[kind], key: value, "extra_key": "kept"})
    assert getattr(typed, key) == ev.MODELS[kind].model_fields[key].get_default(call_default_factory=True)
    good = ev.read(kind, GOOD[kind])
    for name in ev.MODELS[kind].model_fields:
        if name != key:
            assert getattr(typed, name) == getattr(good, name), name
    assert typed.model_extra == {"extra_key": "kept"}


def test_one_bad_job_in_a_list_costs_only_that_job():
    typed = ev.read("print.expired", {"jobs": [JOB, "not a job", {"id": "x", "title": "kept"}], "count": 3})
    assert [(j.id, j.title) for j in typed.jobs] == [(12, "Juminhyo.pdf"), (None, "kept")]
    assert typed.count == 3


def test_an_unknown_kind_and_data_that_are_no_object_still_read():
    other = ev.read("lamp.lit", {"colour": "red", "policy_version": "not a number"})
    assert isinstance(other, ev.OtherEvent) and other.kind == "lamp.lit"
    assert other.data() == {"colour": "red"} and other.policy_version is None
    assert ev.read("door.forced", ["not", "an", "object"]) == ev.DoorForced()


def _wire(kind: str, data) -> bytes:
    return json.dumps(event("cabinet-1", 1, kind=kind, at=T, data=data)).encode()


@pytest.mark.parametrize("kind,key,value", WRONG[:-1])
def test_the_wire_takes_an_event_whose_data_have_a_wrong_type_as_it_always_has(kind, key, value):
    # Event.data is an open object (docs/protocol.md): the hub stores the event as sent, and
    # reading it typed leaves the bad value out.
    parsed = parse_station_payload(SITE, "cabinet-1", "event", _wire(kind, {**GOOD[kind], key: value}))
    assert parsed.data[key] == value
    assert ev.read(parsed.kind, parsed.data).kind == kind


@pytest.mark.parametrize("data", [["a", "list"], "text", {"clock_unsynced": False}, {"clock_unsynced": "yes"}])
def test_what_the_wire_refuses_in_data_is_still_refused_as_bad_schema(data):
    with pytest.raises(ProtocolError) as err:
        parse_station_payload(SITE, "cabinet-1", "event", _wire("badge.denied", data))
    assert err.value.reason == "bad_schema"


def test_the_device_side_models_of_two_kinds_agree_with_the_typed_ones():
    # kagiban.protocol.SnapshotFailed and StorageCorrupt are what the agent fills in.
    from kagiban.protocol import SnapshotFailed, StorageCorrupt

    for device_model, typed in ((SnapshotFailed, ev.SnapshotFailed), (StorageCorrupt, ev.StorageCorrupt)):
        assert set(device_model.model_fields) == set(typed.model_fields) - set(ev.EventData.model_fields)
    failed = SnapshotFailed(event_id=UUID, for_kind="door.forced", error="camera_absent", detail=None)
    assert ev.read("snapshot.failed", failed.model_dump(exclude_none=True)).error == "camera_absent"
