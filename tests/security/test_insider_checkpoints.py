"""An insider with write access to the hub's database, against checkpoints kept off the hub.

One store is filled through the real hub (real mosquitto, ingest, rules, alerts) with its
checkpoint log written by the real checkpoint code into a folder standing for another disk;
each test attacks its own copy with sqlite3 and the project's own hash functions, then runs
``kagiban verify --checkpoints`` as an auditor would and reads what it names.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from hub.alerting.alerts import list_alerts
from hub.audit import retention
from hub.store.chain import canonical_json, content_of, row_hash, row_hash_text
from hub.config import load
from hub.store.db import make_engine
from hub.store.schema import GENESIS_HASH
from hub.service import Hub
from hub.store.timestamps import now_utc
from kagiban.signing import load_private_key, public_key_b64
from tests.hub.helpers import FakeStation, encode, event, snapshot, write_hub_config
from tests.security.signed_store import audit, copy_store
from tests.support.mosquitto import wait_for

STATION = "cabinet-1"
FORCED_SEQS = (5, 12)
SNAPSHOT_SEQS = (5, 12, 18)


@dataclass(frozen=True)
class Trail:
    """The filled store's folder, its off-hub checkpoint log and the audit public key."""

    data: Path
    log: Path
    audit_key: str


def _send(st: FakeStation, seqs: range, ids: dict[int, str]) -> None:
    for seq in seqs:
        body = event(STATION, seq, kind="door.forced" if seq in FORCED_SEQS else "door.opened")
        ids[seq] = body["id"]
        st.publish("event", encode(body))
        if seq in SNAPSHOT_SEQS:
            st.publish("snapshot", encode(snapshot(STATION, body["id"], image=b"\xff\xd8" + bytes([seq]) * 500)))
    wait_for(lambda: set(seqs) <= st.acked_seqs(), timeout=20, what=f"seqs {seqs} acked")


@pytest.fixture(scope="module")
def trail(broker, tmp_path_factory) -> Trail:
    folder = tmp_path_factory.mktemp("insider")
    offsite = folder / "offsite"
    prefix = "t" + uuid.uuid4().hex[:12]
    path = write_hub_config(folder / "hub", broker, prefix, web={"enabled": False},
                            audit={"log_dir": str(offsite), "checkpoint_interval_s": 3600})
    hub = Hub(load(path))
    st = FakeStation(broker, prefix, STATION)
    try:
        hub.start()
        wait_for(hub.connected.is_set, timeout=10, what="hub subscribed")
        # The first checkpoint, made at start, vouches for the empty store.
        wait_for(lambda: hub.checkpoints.made >= 1, timeout=10, what="the start checkpoint")
        ids: dict[int, str] = {}
        _send(st, range(1, 21), ids)
        wait_for(lambda: len(list_alerts(hub.engine)) >= len(FORCED_SEQS), timeout=20, what="forced alerts")
        first = min(a["id"] for a in list_alerts(hub.engine))
        assert hub.alerts.acknowledge(first, "supervisor-a", "door checked and closed; keys all present")
        hub.checkpoints.make("periodic")
        _send(st, range(21, 31), ids)
        wait_for(lambda: len(list(offsite.glob("*.jsonl"))) == 1, timeout=5, what="checkpoint log")
        hub.checkpoints.make("periodic")
        key = load_private_key(hub.cfg.audit_key_path())
    finally:
        st.close()
        hub.stop()
    return Trail(folder / "hub" / "data", offsite / "checkpoints.jsonl", public_key_b64(key))


@pytest.fixture
def store(trail, tmp_path) -> Path:
    """This test's own copy of the filled store."""
    return copy_store(trail.data, tmp_path)


def _rechain_events(conn: sqlite3.Connection) -> None:
    """What an insider does after changing rows: renumber and recompute every hash and the head
    with the project's own functions."""
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT * FROM events ORDER BY row_no").fetchall()
    conn.execute("UPDATE events SET row_no = -row_no")  # free the numbers first
    prev = GENESIS_HASH
    for n, row in enumerate(rows, 1):
        digest = row_hash(prev, content_of(_Row(row)))
        conn.execute("UPDATE events SET row_no = ?, prev_hash = ?, hash = ? WHERE row_no = ?",
                     (n, prev, digest, -row["row_no"]))
        prev = digest
    conn.execute("UPDATE chain_head SET row_no = ?, hash = ?", (len(rows), prev))


def _rechain_side(conn: sqlite3.Connection, part: str, edit) -> None:
    """Rewrite a side log consistently: ``edit(entry)`` returns the new entry or None to drop
    it; numbers, hashes and the head are recomputed with hub.store.chain's functions."""
    kept = []
    for at, text in conn.execute("SELECT at, entry FROM side_log WHERE part = ? ORDER BY n", (part,)).fetchall():
        new = edit(json.loads(text))
        if new is not None:
            kept.append((at, new))
    conn.execute("DELETE FROM side_log WHERE part = ?", (part,))
    prev = GENESIS_HASH
    for n, (at, entry) in enumerate(kept, 1):
        text = canonical_json(entry)
        digest = row_hash_text(prev, text)
        conn.execute("INSERT INTO side_log (part, n, at, entry, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                     (part, n, at, text, prev, digest))
        prev = digest
    conn.execute("UPDATE side_heads SET n = ?, hash = ? WHERE part = ?", (len(kept), prev, part))


class _Row:
    """sqlite3.Row with attribute access, as hub.store.chain.content_of reads rows."""

    def __init__(self, row: sqlite3.Row):
        self._row = row

    def __getattr__(self, name: str):
        return self._row[name]


def _tamper(db: Path, *statements: str, then=None) -> None:
    conn = sqlite3.connect(db)
    with conn:
        for sql in statements:
            conn.execute(sql)
        if then is not None:
            then(conn)
    conn.close()


def test_the_untouched_store_extends_every_checkpoint(trail, store, capsys):
    code, parts = audit(trail, store, capsys)
    assert code == 0
    assert parts["events"] == "events: OK: 30 rows, chain intact"
    assert "3 checkpoints signed by key" in parts["checkpoints"]
    assert "(2 alerts, 1 acknowledgements)" in parts["alerts"]
    assert "(3 stored, 0 expired)" in parts["snapshots"]


def test_a_truncated_tail_with_its_head_fixed_is_named_by_the_last_checkpoint(trail, store, capsys):
    def fix_head(conn):
        conn.execute("UPDATE chain_head SET row_no = 25, hash = (SELECT hash FROM events WHERE row_no = 25)")

    _tamper(store, "DELETE FROM events WHERE row_no > 25", then=fix_head)
    code, parts = audit(trail, store, capsys)
    assert code == 1
    # The chain alone looks intact: only the checkpoint kept elsewhere shows the cut.
    assert parts["events"] == "events: OK: 25 rows, chain intact"
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 3 (checkpoints.jsonl:3 at ")
    assert "the store has 25 event rows, the checkpoint vouched for 30: rows 26-30 removed" in parts["checkpoints"]


def test_a_chain_rewritten_consistently_is_named_by_the_first_checkpoint_it_breaks(trail, store, capsys):
    _tamper(store, "UPDATE events SET person = 'staff-999' WHERE row_no = 3", then=_rechain_events)
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert parts["events"] == "events: OK: 30 rows, chain intact"
    # Checkpoint 1 was made at start with no rows; 2 vouched for row 20, which now differs.
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 2 (checkpoints.jsonl:2 at ")
    assert "event row 20 does not hold the checkpoint's head" in parts["checkpoints"]
    assert "(and 1 later checkpoint(s))" in parts["checkpoints"]


def test_a_deleted_alert_is_named_by_the_alerts_log(trail, store, capsys):
    _tamper(store, "DELETE FROM alert_deliveries WHERE alert_id = 2", "DELETE FROM alerts WHERE id = 2")
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert parts["alerts"].startswith("alerts: TAMPERED: ")
    assert "alert 2 (forced at cabinet-1, " in parts["alerts"] and "deleted: log entry" in parts["alerts"]


def test_a_deleted_alert_with_its_log_rewritten_is_named_by_the_checkpoint(trail, store, capsys):
    _tamper(store, "DELETE FROM alerts WHERE id = 2",
            then=lambda conn: _rechain_side(conn, "alerts", lambda e: None if e["alert"] == 2 else e))
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert parts["alerts"].startswith("alerts: OK: ")  # consistent by itself
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 2 ")
    assert "the alerts log" in parts["checkpoints"]


def test_an_altered_acknowledgement_is_named_with_what_changed(trail, store, capsys):
    _tamper(store, "UPDATE alerts SET acked_by = 'supervisor-b', ack_comment = 'false alarm' "
                   "WHERE state = 'acknowledged'")
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert "acknowledgement of alert 1 altered (acked_by, ack_comment)" in parts["alerts"]
    assert "by supervisor-a at " in parts["alerts"]


def test_an_acknowledgement_altered_in_the_log_too_is_named_by_the_checkpoint(trail, store, capsys):
    def rewrite(e):
        return {**e, "ack_comment": "false alarm"} if e["op"] == "acknowledged" else e

    _tamper(store, "UPDATE alerts SET ack_comment = 'false alarm' WHERE state = 'acknowledged'",
            then=lambda conn: _rechain_side(conn, "alerts", rewrite))
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert parts["alerts"].startswith("alerts: OK: ")
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 2 ")
    assert "the alerts log was rewritten" in parts["checkpoints"]


def test_a_checkpoint_signed_with_another_key_is_named_forged(trail, store, tmp_path, capsys):
    from hub.audit.checkpoints import sign_line
    from hub.audit.checkpoints import Checkpoint
    from kagiban.signing import generate_private_key

    forged_log = tmp_path / "checkpoints.jsonl"
    lines = trail.log.read_text().splitlines()
    body = json.loads(lines[-1])["checkpoint"]
    forged = sign_line(Checkpoint.model_validate_json(json.dumps(body)), generate_private_key())
    forged_log.write_text("\n".join(lines + [forged]) + "\n")
    forged_trail = Trail(trail.data, forged_log, trail.audit_key)
    code, parts = audit(forged_trail, store, capsys)
    assert code == 1
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 4 (checkpoints.jsonl:4 at ")
    assert "signature does not match the audit key" in parts["checkpoints"]


def test_a_replaced_snapshot_is_named(trail, store, capsys):
    _tamper(store, "UPDATE snapshots SET image = x'ffd8000000' WHERE rowid = (SELECT min(rowid) FROM snapshots)")
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert "replaced: its bytes do not match log entry" in parts["snapshots"]


def test_expired_snapshots_are_deleted_and_verify_says_expired_not_missing(trail, store, capsys):
    engine = make_engine(f"sqlite:///{store}")
    try:
        assert retention.expire(engine, keep_days=90, now=now_utc() + timedelta(days=89)) == 0
        assert retention.expire(engine, keep_days=90, now=now_utc() + timedelta(days=91)) == len(SNAPSHOT_SEQS)
    finally:
        engine.dispose()
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT count(*) FROM snapshots").fetchone() == (0,)
    conn.close()
    code, parts = audit(trail, store, capsys)
    assert code == 0
    assert "(0 stored, 3 expired)" in parts["snapshots"]
    assert parts["checkpoints"].startswith("checkpoints: OK: ")


def test_a_snapshot_deleted_without_expiry_is_named_missing(trail, store, capsys):
    _tamper(store, "DELETE FROM snapshots")
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert "deleted: log entry 1 records it, and no expiry" in parts["snapshots"]
