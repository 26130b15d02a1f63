"""``kagiban verify``: the printed report and the exit code an auditor or a cron job sees."""
from __future__ import annotations

import io
import sqlite3

from hub.store import migrate
from hub.audit import verify
from hub.store.db import make_engine
from hub.ingest.writer import Ingest
from tests.hub.helpers import SITE, encode, event


def _store(path, rows=5):
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    ingest = Ingest(engine, prefix="p")
    for seq in range(1, rows + 1):
        ingest.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", seq)))
    ingest.start()
    ingest.stop()
    engine.dispose()


def test_intact_store_prints_ok_and_exits_0(tmp_path):
    _store(tmp_path / "k.db")
    out = io.StringIO()
    assert verify.run(f"sqlite:///{tmp_path / 'k.db'}", out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "events: OK: 5 rows, chain intact"
    # One line per part, each intact; checkpoints only when a log is given. Unsigned rows from a
    # station never enrolled are counted, not called tampering.
    assert [line.split(":")[0] for line in lines] == [
        "events", "signatures", "alerts", "signins", "registry", "quarantine", "snapshots", "keys", "work", "maintenance",
        "nearmiss", "procedures", "verified", "rollcall", "failover",
        "checkpoints"]
    assert all(": OK: " in line for line in lines[:-1])
    assert lines[1].startswith("signatures: OK: 0 signed rows") and "5 rows unsigned" in lines[1]
    assert lines[-1] == "checkpoints: not checked (give --checkpoints PATH)"


def test_tampered_store_prints_the_row_and_exits_1(tmp_path):
    _store(tmp_path / "k.db")
    conn = sqlite3.connect(tmp_path / "k.db")
    with conn:
        conn.execute("UPDATE events SET data = '{\"n\": 99}' WHERE row_no = 4")
    conn.close()
    out = io.StringIO()
    assert verify.run(f"sqlite:///{tmp_path / 'k.db'}", out=out) == 1
    assert out.getvalue().splitlines()[0] == "events: TAMPERED: row 4 (cabinet-1 seq 4) content altered"


def test_missing_file_exits_2_and_creates_nothing(tmp_path):
    out = io.StringIO()
    assert verify.run(f"sqlite:///{tmp_path / 'nothere.db'}", out=out) == 2
    assert out.getvalue().startswith("ERROR: no database file at ")
    assert not (tmp_path / "nothere.db").exists()


def test_a_database_without_the_audit_trail_exits_2(tmp_path):
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    out = io.StringIO()
    assert verify.run(f"sqlite:///{tmp_path / 'other.db'}", out=out) == 2
    assert "holds no kagiban audit trail" in out.getvalue()


def test_registry_changes_and_quarantined_messages_are_held_against_their_logs(tmp_path):
    from hub.registry.people import add_person

    _store(tmp_path / "k.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    add_person(engine, "adm-01", "S001", "Staff 001")
    ingest = Ingest(engine, prefix="p")
    ingest.submit(f"p/{SITE}/cabinet-1/event", b"{not json")
    ingest.start()
    ingest.stop()
    engine.dispose()
    out = io.StringIO()
    assert verify.run(f"sqlite:///{tmp_path / 'k.db'}", out=out) == 0
    assert "registry: OK: 1 entries" in out.getvalue() and "quarantine: OK: 1 entries" in out.getvalue()

    conn = sqlite3.connect(tmp_path / "k.db")
    with conn:
        conn.execute("UPDATE registry_log SET actor = 'someone-else'")
        conn.execute("UPDATE quarantine SET payload = x'00'")
    conn.close()
    out = io.StringIO()
    assert verify.run(f"sqlite:///{tmp_path / 'k.db'}", out=out) == 1
    lines = out.getvalue().splitlines()
    assert "registry: TAMPERED: 1 entries; registry change 1 altered (actor) against log entry 1" in lines
    assert "quarantine: TAMPERED: 1 entries; quarantined message 1 altered (payload_sha256) against log entry 1" in lines
