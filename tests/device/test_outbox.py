"""The outbox keeps every event until the hub acknowledges it, across restarts."""
import base64
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from device.outbox import Outbox
from device.wire import Event, Snapshot, dumps, loads
from kagiban.event_signing import (
    EventSigner,
    check,
    create_station_key,
    image_sha256,
    snapshot_statement,
    split_event,
)

JST = timezone(timedelta(hours=9))
AT = datetime(2026, 11, 26, 9, 30, tzinfo=JST)


def test_events_get_increasing_seq_and_uuid7(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", site="ward-a", station="cabinet-1")
    a = box.add("door.opened", AT)
    b = box.add("door.closed", AT + timedelta(seconds=3), data={"open_s": 3.0})
    assert (a.seq, b.seq) == (1, 2)
    assert a.id != b.id and a.id[14] == "7"
    assert box.depth() == 2


def test_seq_survives_restart_and_never_repeats(tmp_path):
    path = tmp_path / "o.sqlite"
    box = Outbox(path, site="ward-a", station="cabinet-1")
    box.add("door.opened", AT)
    box.add("door.closed", AT)
    box.ack([1, 2])
    box.close()
    again = Outbox(path, site="ward-a", station="cabinet-1")
    assert again.add("door.opened", AT).seq == 3


def test_payload_replayed_is_the_original_bytes_with_original_time(tmp_path):
    path = tmp_path / "o.sqlite"
    box = Outbox(path, site="ward-a", station="cabinet-1")
    ev = box.add("badge.denied", AT, badge="0123456789ABCDEF", data={"reason": "unknown"})
    box.close()
    again = Outbox(path, site="ward-a", station="cabinet-1")
    [(seq, payload)] = again.pending()
    replay = loads(Event, payload)
    assert seq == ev.seq and replay == ev
    assert replay.at == AT and replay.at.utcoffset() == timedelta(hours=9)


def test_ack_deletes_only_what_was_acknowledged(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", site="ward-a", station="cabinet-1")
    for _ in range(5):
        box.add("door.opened", AT)
    assert box.ack([1, 2, 4, 99]) == 3
    assert [s for s, _ in box.pending()] == [3, 5]
    assert box.depth() == 2
    assert [s for s, _ in box.pending(after_seq=3)] == [5]


def test_committed_event_survives_kill_9(tmp_path):
    """A process that commits and is then killed without closing loses nothing."""
    path = tmp_path / "o.sqlite"
    code = (
        "import os, signal\n"
        "from datetime import datetime, timezone\n"
        "from device.outbox import Outbox\n"
        f"box = Outbox({str(path)!r}, site='ward-a', station='cabinet-1')\n"
        "for _ in range(50): box.add('door.opened', datetime.now(timezone.utc))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd(), timeout=60)
    assert proc.returncode == -9
    box = Outbox(path, site="ward-a", station="cabinet-1")
    assert box.depth() == 50
    assert box.next_seq() == 51


def test_capacity_reached_still_accepts(tmp_path, caplog):
    box = Outbox(tmp_path / "o.sqlite", site="ward-a", station="cabinet-1", capacity=10)
    for _ in range(12):
        box.add("door.opened", AT)
    assert box.depth() == 12
    assert "capacity" in caplog.text


def test_a_new_outbox_has_an_incarnation_every_event_carries(tmp_path):
    path = tmp_path / "o.sqlite"
    box = Outbox(path, site="ward-a", station="cabinet-1")
    ev = box.add("door.opened", AT)
    assert box.incarnation is not None and ev.incarnation == box.incarnation
    assert json.loads(box.pending()[0][1])["incarnation"] == box.incarnation
    box.close()
    assert Outbox(path, site="ward-a", station="cabinet-1").incarnation == box.incarnation
    assert Outbox(tmp_path / "other.sqlite", site="ward-a", station="cabinet-1").incarnation != box.incarnation


def test_an_outbox_made_before_incarnations_keeps_none_and_its_events_say_nothing_of_it(tmp_path):
    import sqlite3

    path = tmp_path / "o.sqlite"
    old = sqlite3.connect(path)  # the tables as the first outbox made them
    old.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL);"
        "CREATE TABLE snapshots (event_id TEXT PRIMARY KEY, payload BLOB NOT NULL);"
        "INSERT INTO meta (key, value) VALUES ('next_seq', 41);")
    old.close()
    box = Outbox(path, site="ward-a", station="cabinet-1")
    ev = box.add("door.opened", AT)
    assert box.incarnation is None and ev.seq == 41
    assert "incarnation" not in json.loads(box.pending()[0][1])  # a hub of revision 1 reads it


def test_an_enrolled_outbox_signs_each_event_and_snapshot_as_it_commits_them(tmp_path):
    key = create_station_key(tmp_path / "station.key")
    box = Outbox(tmp_path / "o.sqlite", site="ward-a", station="cabinet-1", signer=EventSigner(key))
    event = box.add("door.opened", datetime.now(timezone.utc), data={"n": 1})
    [(seq, payload)] = box.pending()
    signed = split_event(payload)
    assert signed is not None and signed.signed == dumps(event)
    check(key.public_key(), signed.signature, signed.signed)  # raises if it does not match
    image = b"\xff\xd8" + b"\x00" * 10 + b"\xff\xd9"
    box.add_snapshot(Snapshot(event_id=event.id, site="ward-a", station="cabinet-1",
                              taken_at=datetime.now(timezone.utc), image=base64.b64encode(image).decode()))
    [(_, snap_payload)] = box.pending_snapshots()
    snap = loads(Snapshot, snap_payload)
    check(key.public_key(), snap.sig, snapshot_statement(event.id, "cabinet-1", image_sha256(image)))
    # The replay after a restart sends the very same signed bytes.
    box.close()
    again = Outbox(tmp_path / "o.sqlite", site="ward-a", station="cabinet-1")
    assert again.pending() == [(seq, payload)]


def test_a_page_limit_makes_writes_fail_as_a_full_disk_until_it_is_lifted(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite", site="ward-a", station="cabinet-1")
    ob.add("door.opened", AT)
    ob.limit_pages()
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        for _ in range(200):  # the last page's room runs out within a few dozen records
            ob.add("test.filler", AT, data={"pad": "x" * 500})
    depth = ob.depth()

    ob.lift_page_limit()
    ob.add("door.closed", AT)
    assert ob.depth() == depth + 1
    assert [e.kind for e in ob.events()][0] == "door.opened"
    ob.close()


def test_the_outbox_keeps_a_small_page_cache(tmp_path):
    # Events are written, sent, acknowledged and deleted: SQLite's default 2 MiB cache would
    # fill with pages read once and stay resident in a station that must fit a small Pi.
    box = Outbox(tmp_path / "o.sqlite", site="s", station="cabinet-1")
    try:
        assert box._db.execute("PRAGMA cache_size").fetchone()[0] == -256  # KiB
    finally:
        box.close()
