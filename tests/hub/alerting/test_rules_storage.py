"""storage_corrupt: a station that replaced a damaged outbox or policy cache at start, through a
real Ingest and the rules thread over a real SQLite file; the alert names what may be missing.
Sequence gaps are judged per outbox incarnation."""
from __future__ import annotations

from datetime import timedelta

import pytest
import uuid6

from hub.alerting.wording import alert_text
from hub.store.timestamps import now_utc
from tests.support.alert_stack import TUESDAY, Stack, ev

OLD = str(uuid6.uuid7())
NEW = str(uuid6.uuid7())


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path, rules={"offline_grace_s": 3600, "gap_grace_s": 1})
    s.start_rules()
    yield s
    s.close()


def corrupt(seq: int = 1, incarnation: str = NEW, **data):
    body = {"store": "outbox", "moved_to": ["outbox.sqlite.corrupt-20250401T010000Z"],
            "error": "DatabaseError: database disk image is malformed", **data}
    return ev("cabinet-1", seq, "storage.corrupt", f"{TUESDAY}T10:00:00+09:00", data=body,
              badge=None, person=None, incarnation=incarnation)


def old_events(n: int, incarnation: str | None = OLD):
    extra = {"incarnation": incarnation} if incarnation else {}
    return [ev("cabinet-1", k, "door.closed", f"{TUESDAY}T09:00:{k:02d}+09:00", **extra) for k in range(1, n + 1)]


def test_a_replaced_outbox_names_the_last_seq_stored_from_the_previous_one(stack):
    stack.feed(*old_events(7))
    stack.feed(corrupt(previous_incarnation=OLD, previous_highest_seq=7))

    [alert] = stack.alerts("storage_corrupt")
    assert alert["severity"] == "critical"
    p = alert["params"]
    assert (p["cause"], p["last_stored"], p["previous_incarnation"], p["incarnation"]) == ("outbox", 7, OLD, NEW)
    assert "events after seq 7 of the previous storage may be lost" in alert["message"]
    assert "outbox.sqlite.corrupt-20250401T010000Z" in alert["message"]
    assert "seq 7より後のイベントは失われた可能性があります" in alert_text("storage_corrupt", p, "ja")


def test_seqs_the_damaged_outbox_gave_but_the_hub_never_got_are_named(stack):
    stack.feed(*old_events(5))
    stack.feed(corrupt(previous_incarnation=OLD, previous_highest_seq=9, previous_next_seq=10))

    [alert] = stack.alerts("storage_corrupt")
    assert alert["params"]["cause"] == "outbox_range"
    assert "seq 6-9 never reached the hub" in alert["message"]
    assert "after seq 5" in alert["message"]


def test_a_station_from_before_incarnations_is_found_by_its_latest_events(stack):
    """Its outbox had no incarnation, and the damaged file could not even say that much."""
    stack.feed(*old_events(4, incarnation=None))
    stack.feed(corrupt())

    [alert] = stack.alerts("storage_corrupt")
    assert (alert["params"]["last_stored"], alert["params"]["previous_incarnation"]) == (4, "")


def test_with_nothing_stored_before_every_event_of_the_old_storage_may_be_lost(stack):
    stack.feed(corrupt(error="empty file (0 bytes)"))

    [alert] = stack.alerts("storage_corrupt")
    assert alert["params"]["cause"] == "outbox_nothing"
    assert "no event of the previous storage reached the hub" in alert["message"]


def test_a_replaced_policy_cache_is_a_warning(stack):
    stack.feed(old_events(3)[0], ev("cabinet-1", 2, "storage.corrupt", f"{TUESDAY}T10:00:00+09:00", incarnation=OLD,
                                    data={"store": "policy", "moved_to": ["policy.json.corrupt-20250401T010000Z"],
                                          "error": "bad_signature: signature does not match"}))
    [alert] = stack.alerts("storage_corrupt")
    assert alert["severity"] == "warning" and alert["params"]["cause"] == "policy"
    assert "refuses every badge until the hub's policy reaches it" in alert["message"]


def test_a_new_incarnation_starting_at_1_is_no_gap_and_gaps_are_judged_per_incarnation(stack):
    stack.feed(*old_events(6))
    stack.feed(corrupt(), ev("cabinet-1", 2, "station.started", f"{TUESDAY}T10:00:01+09:00", incarnation=NEW),
               ev("cabinet-1", 4, "door.closed", f"{TUESDAY}T10:00:02+09:00", incarnation=NEW))
    stack.rules.tick(now_utc() + timedelta(seconds=30))

    [gap] = stack.alerts("seq_gap")
    p = gap["params"]
    assert (p["missing_from"], p["missing_to"], p["incarnation"]) == (3, 3, NEW)

    stack.stop_rules()  # rebuilt from the store per incarnation, not raised again
    rules = stack.start_rules()
    rules.tick(now_utc() + timedelta(seconds=60))
    assert len(stack.alerts("seq_gap")) == 1
    assert len(stack.alerts("storage_corrupt")) == 1
