"""The recorder: what a station does when its disk is full. Nothing is lost: events are kept in
memory in order while the disk refuses them, written back oldest first once it takes them, and
the outage itself is then recorded. The outbox is a real SQLite file; SQLite's own limit on
its size makes writes fail with "database or disk is full", as a full SD card would."""
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from device.outbox import Outbox
from device.recorder import Recorder
from device.stations.effects import Emit

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=timezone(timedelta(hours=9)))


def fill_disk(outbox: Outbox) -> None:
    """Cap the file at its current size and fill what is left, so the next event cannot be written."""
    outbox.limit_pages()
    for pad in (500, 100, 10):
        for _ in range(200):
            try:
                outbox.add("test.filler", T0, data={"pad": "x" * pad})
            except sqlite3.Error:
                break


def free_disk(outbox: Outbox) -> None:
    outbox.lift_page_limit()


@pytest.fixture
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite", site="ward-a", station="cabinet-1")
    yield box
    box.close()


@pytest.fixture
def recorder(outbox):
    photos = []
    rec = Recorder(outbox, annotate=lambda data: data.setdefault("policy_version", 7),
                   recorded=lambda event, emit: photos.append(event.kind) if emit.snapshot else None,
                   wall=lambda: T0 + timedelta(minutes=5))
    rec.photos = photos
    return rec


def recorded_kinds(outbox: Outbox) -> list[str]:
    return [e.kind for e in outbox.events() if e.kind != "test.filler"]


def test_an_event_is_committed_with_what_the_station_adds_and_its_photo_asked_for(recorder, outbox):
    assert recorder.record([Emit("door.forced", T0, snapshot=True)]) is True
    [event] = outbox.events()
    assert event.kind == "door.forced" and event.data["policy_version"] == 7
    assert recorder.photos == ["door.forced"] and recorder.kept == 0


def test_with_the_disk_full_events_are_kept_in_memory_and_the_error_is_reported(recorder, outbox):
    fill_disk(outbox)
    assert recorder.record([Emit("badge.granted", T0, "AAAAAAAAAAAAAAAA"), Emit("door.opened", T0)]) is False
    assert recorder.kept == 2
    assert "full" in recorder.error
    assert recorded_kinds(outbox) == []


def test_once_the_disk_takes_them_the_kept_events_are_written_in_order_then_the_outage(recorder, outbox):
    fill_disk(outbox)
    recorder.record([Emit("badge.granted", T0, "AAAAAAAAAAAAAAAA")])
    recorder.record([Emit("door.opened", T0 + timedelta(seconds=1))])  # never overtakes the first
    recorder.retry()
    assert recorder.kept == 2  # still full: nothing written, nothing dropped
    free_disk(outbox)
    recorder.retry()
    assert recorder.kept == 0
    assert recorded_kinds(outbox) == ["badge.granted", "door.opened", "storage.failed"]
    outage = outbox.events()[-1]
    assert outage.data["kept"] == 2 and "full" in outage.data["error"]
    assert outage.data["since"] == (T0 + timedelta(minutes=5)).isoformat()


def test_the_error_stays_until_a_heartbeat_has_reported_it(recorder, outbox):
    fill_disk(outbox)
    recorder.record([Emit("badge.granted", T0, "AAAAAAAAAAAAAAAA")])
    recorder.reported()
    assert recorder.error is not None  # still kept: the alarm stays up
    free_disk(outbox)
    recorder.retry()
    assert recorder.error is not None  # written back, but no heartbeat has said so yet
    recorder.reported()
    assert recorder.error is None


def test_a_photo_taken_while_the_disk_is_full_is_written_later(recorder, outbox):
    from device.wire import Snapshot

    event = outbox.add("door.forced", T0)
    fill_disk(outbox)
    snap = Snapshot(event_id=event.id, site="ward-a", station="cabinet-1", taken_at=T0,
                             image="A" * 8000)
    recorder.add_snapshot(snap)
    assert recorder.kept == 1 and outbox.snapshot_depth() == 0
    free_disk(outbox)
    recorder.retry()
    assert recorder.kept == 0 and outbox.snapshot_depth() == 1
