"""A station whose stored files are damaged starts anyway: each damaged file is moved aside with
its bytes as found, a fresh one takes its place (a new outbox incarnation), and what could be
read from the old one is kept for the storage.corrupt event."""
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from device.outbox import Outbox
from device.storage_check import open_outbox, open_policy, outbox_problem, wal_problem
from kagiban import signing
from kagiban.protocol import Policy, PolicyEntry, StorageCorrupt

JST = timezone(timedelta(hours=9))
AT = datetime(2026, 12, 4, 9, 30, tzinfo=JST)
FOUND = datetime(2026, 12, 4, 23, 30, 5, tzinfo=timezone.utc)
KEPT = "outbox.sqlite.corrupt-20261204T233005Z"
PAGE = 4096
HUB_KEY = signing.generate_private_key()
PUBLIC = signing.public_key_b64(HUB_KEY)
ROOT = Path(__file__).resolve().parents[2]


def populated(path: Path, events: int = 300, acked: int = 100) -> Outbox:
    """An outbox that has given ``events`` seqs, the first ``acked`` acknowledged, closed cleanly."""
    box = Outbox(path, site="ward-a", station="cabinet-1")
    for i in range(events):
        box.add("badge.denied", AT, badge="FFFFEEEEDDDDCCCC", data={"reason": "unknown", "pad": "x" * 200})
    box.ack(range(1, acked + 1))
    box.close()
    return box


def open_fresh(path: Path):
    return open_outbox(path, site="ward-a", station="cabinet-1", now=FOUND)


def assert_moved_aside_and_fresh(path: Path, damaged: bytes, old_incarnation: str | None):
    box, damage = open_fresh(path)
    try:
        assert damage is not None and damage.store == "outbox"
        assert damage.moved_to[0] == KEPT
        assert (path.parent / KEPT).read_bytes() == damaged  # kept as found, never rewritten
        assert box.incarnation is not None and box.incarnation != old_incarnation
        assert box.depth() == 0 and box.add("station.started", AT).seq == 1
    finally:
        box.close()
    assert outbox_problem(path) is None  # the fresh file passes the same check
    return damage


def test_an_intact_outbox_is_used_as_it_is(tmp_path):
    path = tmp_path / "outbox.sqlite"
    old = populated(path)
    box, damage = open_fresh(path)
    assert damage is None
    assert box.incarnation == old.incarnation and box.next_seq() == 301 and box.depth() == 200
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []
    box.close()


def test_flipped_block_in_the_middle_of_a_populated_outbox(tmp_path):
    path = tmp_path / "outbox.sqlite"
    old = populated(path)
    raw = bytearray(path.read_bytes())
    middle = (len(raw) // PAGE // 2) * PAGE  # a failing SD card loses whole blocks
    raw[middle:middle + PAGE] = bytes(b ^ 0xFF for b in raw[middle:middle + PAGE])
    path.write_bytes(raw)

    damage = assert_moved_aside_and_fresh(path, bytes(raw), old.incarnation)
    assert damage.error  # SQLite's own words, e.g. "database disk image is malformed"


def test_truncated_outbox(tmp_path):
    path = tmp_path / "outbox.sqlite"
    old = populated(path)
    raw = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(raw)

    damage = assert_moved_aside_and_fresh(path, raw, old.incarnation)
    assert damage.previous_incarnation in (old.incarnation, None)


def test_random_bytes_are_not_a_database(tmp_path):
    path = tmp_path / "outbox.sqlite"
    raw = os.urandom(64 * 1024)
    path.write_bytes(raw)

    damage = assert_moved_aside_and_fresh(path, raw, None)
    assert "not a database" in damage.error
    assert damage.previous_next_seq is None and damage.previous_highest_seq is None


def test_empty_outbox_file(tmp_path):
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"")

    damage = assert_moved_aside_and_fresh(path, b"", None)
    assert damage.error == "empty file (0 bytes)"


def test_what_can_still_be_read_is_salvaged(tmp_path):
    """Damage past the tables' first pages leaves the meta and info pages readable."""
    path = tmp_path / "outbox.sqlite"
    old = populated(path)
    raw = bytearray(path.read_bytes())
    last = len(raw) - PAGE
    raw[last:] = os.urandom(PAGE)
    path.write_bytes(raw)

    box, damage = open_fresh(path)
    box.close()
    assert damage is not None
    assert damage.previous_incarnation == old.incarnation
    assert damage.previous_next_seq == 301 and damage.previous_highest_seq == 300
    data = StorageCorrupt.model_validate(damage.data())
    assert data.store == "outbox" and data.moved_to == [KEPT]


def _killed_writer(path: Path, events: int) -> None:
    """Commit ``events`` events and die without closing: the WAL stays with every commit in it."""
    code = (
        "import os, sys\n"
        "from datetime import datetime, timezone\n"
        "from device.outbox import Outbox\n"
        f"box = Outbox({str(path)!r}, site='ward-a', station='cabinet-1')\n"
        "box._db.execute('PRAGMA wal_autocheckpoint=0')\n"
        f"for i in range({events}):\n"
        "    box.add('badge.denied', datetime.now(timezone.utc), data={'pad': 'x' * 200})\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_damaged_wal_is_moved_aside_with_its_database(tmp_path):
    path = tmp_path / "outbox.sqlite"
    _killed_writer(path, 120)
    wal = Path(f"{path}-wal")
    raw_wal = bytearray(wal.read_bytes())
    frames = (len(raw_wal) - 32) // (24 + PAGE)
    at = 32 + (frames // 2) * (24 + PAGE) + 24 + 1000  # inside a page of a middle frame
    raw_wal[at:at + 64] = bytes(b ^ 0xFF for b in raw_wal[at:at + 64])
    wal.write_bytes(raw_wal)
    db_bytes = path.read_bytes()

    box, damage = open_fresh(path)
    box.close()
    assert damage is not None and "WAL frame" in damage.error
    assert damage.moved_to[:2] == (KEPT, KEPT + "-wal")
    assert Path(tmp_path / (KEPT + "-wal")).read_bytes() == bytes(raw_wal)
    assert Path(tmp_path / KEPT).read_bytes() == db_bytes
    assert outbox_problem(path) is None


def test_a_wal_left_by_a_killed_writer_is_not_damage(tmp_path):
    path = tmp_path / "outbox.sqlite"
    _killed_writer(path, 50)
    assert wal_problem(Path(f"{path}-wal").read_bytes()) is None
    box, damage = open_fresh(path)
    assert damage is None and box.next_seq() == 51 and box.depth() == 50
    box.close()


def test_a_torn_last_write_in_the_wal_is_not_damage(tmp_path):
    """A power cut in the middle of the last transaction: SQLite drops only that one."""
    path = tmp_path / "outbox.sqlite"
    _killed_writer(path, 50)
    wal = Path(f"{path}-wal")
    wal.write_bytes(wal.read_bytes()[:-1500])
    box, damage = open_fresh(path)
    assert damage is None and box.next_seq() == 50  # the torn 50th event never committed
    box.close()


def test_next_seq_not_above_the_stored_seqs_is_damage(tmp_path):
    """A meta page gone back to an old copy would make the station give seqs out twice."""
    path = tmp_path / "outbox.sqlite"
    populated(path, events=10, acked=0)
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=5 WHERE key='next_seq'")
    db.commit()
    db.close()
    assert "not above the highest stored seq 10" in outbox_problem(path)


# ---- the policy cache ------------------------------------------------------------------------


def signed_policy(version: int = 3) -> bytes:
    policy = Policy(version=version, issued_at=datetime.now(timezone.utc), site="ward-a", station="cabinet-1",
                    badges={"0123456789ABCDEF": PolicyEntry(person="S001", decision="allow", after_hours="allow")})
    return signing.sign(policy, HUB_KEY)


def open_policy_at(path: Path):
    return open_policy(path, site="ward-a", station="cabinet-1", public_key=PUBLIC, now=FOUND)


def test_a_good_policy_file_stays_in_force(tmp_path):
    path = tmp_path / "policy.json"
    path.write_bytes(signed_policy())
    cache, damage = open_policy_at(path)
    assert damage is None and cache.version == 3 and path.exists()


@pytest.mark.parametrize("how", ["garbage", "bad_signature", "empty"])
def test_an_unusable_policy_file_is_moved_aside_and_no_policy_decides(tmp_path, how):
    path = tmp_path / "policy.json"
    if how == "garbage":
        raw = os.urandom(300)
    elif how == "bad_signature":
        envelope = json.loads(signed_policy())
        envelope["policy"]["badges"]["FFFFEEEEDDDDCCCC"] = {"decision": "allow"}  # content changed after signing
        raw = json.dumps(envelope).encode()
    else:
        raw = b""
    path.write_bytes(raw)

    cache, damage = open_policy_at(path)

    assert damage is not None and damage.store == "policy"
    assert damage.moved_to == ("policy.json.corrupt-20261204T233005Z",)
    assert (tmp_path / damage.moved_to[0]).read_bytes() == raw
    assert not path.exists()
    if how == "bad_signature":
        assert damage.error.startswith("bad_signature")
    # Until the hub's retained policy arrives, every badge gets what "no policy" gives.
    assert cache.version is None
    assert cache.decide("0123456789ABCDEF", datetime.now(timezone.utc)).reason == "no_policy"
    assert cache.offer(signed_policy(4)) and cache.version == 4 and path.exists()


def test_a_name_already_taken_gets_a_counter(tmp_path):
    path = tmp_path / "outbox.sqlite"
    for _ in range(2):
        path.write_bytes(b"not a database at all, not even close" * 100)
        box, damage = open_fresh(path)
        box.close()
        path.unlink()
        for side in ("-wal", "-shm"):
            Path(f"{path}{side}").unlink(missing_ok=True)
    assert damage.moved_to == (KEPT.replace("Z", "Z-2"),)
