"""``kagiban verify``: the printed report and the exit code an auditor or a cron job sees."""
from __future__ import annotations

import io
import sqlite3

from hub import migrate, verify
from hub.db import make_engine
from hub.ingest import Ingest
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
    assert lines[0] == "OK: 5 rows, chain intact"
    # Unsigned rows from a station never enrolled are counted, not called tampering.
    assert lines[1].startswith("OK: signatures: 0 signed rows") and "5 rows unsigned" in lines[1]


def test_tampered_store_prints_the_row_and_exits_1(tmp_path):
    _store(tmp_path / "k.db")
    conn = sqlite3.connect(tmp_path / "k.db")
    with conn:
        conn.execute("UPDATE events SET data = '{\"n\": 99}' WHERE row_no = 4")
    conn.close()
    out = io.StringIO()
    assert verify.run(f"sqlite:///{tmp_path / 'k.db'}", out=out) == 1
    assert out.getvalue().splitlines()[0] == "TAMPERED: row 4 (cabinet-1 seq 4) content altered"


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
