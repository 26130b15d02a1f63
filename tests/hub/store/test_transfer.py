"""Moving a store: `kagiban hub migrate-store` copies a SQLite store into PostgreSQL with the
trail intact (`kagiban verify` before and after, run as a user would), and `kagiban hub backup`
copies a store that a restore then verifies (SQLite's online backup; pg_dump for PostgreSQL)."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.accounts.users import add_user
from hub.store.db import make_engine
from hub.store.schema import alerts, events, users
from hub.store.transfer import TransferError, copy_store
from tests.support.alert_stack import TUESDAY, Stack, ev
from tests.support.postgres import PostgresCluster, _tool

ROOT = Path(__file__).resolve().parents[3]


def kagiban(*args: str) -> subprocess.CompletedProcess:
    """`kagiban ARGS` as a separate process, as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "kagiban.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def new_database(cluster: PostgresCluster) -> str:
    name = "copy_" + uuid.uuid4().hex[:10]
    cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    return cluster.url(name)


def office_store(folder: Path) -> Path:
    """A SQLite store as a running office leaves it: events from two cabinets, a forced door
    (and its alert, in the alerts side log), a user (in the sign-in side log)."""
    s = Stack(folder)
    s.start_rules()
    s.feed(
        ev("cabinet-1", 1, "door.opened", f"{TUESDAY}T09:00:00+09:00"),
        ev("cabinet-1", 2, "door.closed", f"{TUESDAY}T09:01:00+09:00"),
        ev("cabinet-2", 1, "door.forced", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None),
        *[ev("cabinet-2", n, "door.opened", f"{TUESDAY}T11:{n:02d}:00+09:00") for n in range(2, 40)],
    )
    assert [a["rule"] for a in s.alerts()] == ["forced"]
    add_user(s.engine, "sup-01", "a long enough password", "supervisor", display_name="職員0012")
    s.close()
    return folder / "kagiban.db"


def verify_lines(out: str) -> list[str]:
    """verify's per-part lines (the database's name aside)."""
    return [line for line in out.splitlines() if line and not line.startswith(("verifying", "copied", "done"))]


def test_a_sqlite_store_moves_to_postgresql_with_its_trail_intact(tmp_path, pg_cluster):
    db = office_store(tmp_path / "office")
    before = kagiban("verify", "--db", str(db))
    assert before.returncode == 0, before.stdout + before.stderr
    target = new_database(pg_cluster)

    moved = kagiban("hub", "migrate-store", "--from", str(db), "--to", target)

    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "events: 41" in moved.stdout
    after = kagiban("verify", "--db", target)
    assert after.returncode == 0, after.stdout + after.stderr
    # Every part of the trail reads the same on the new store: same rows, same logs, same counts.
    assert verify_lines(after.stdout) == verify_lines(before.stdout)
    old, new = make_engine(f"sqlite:///{db}"), make_engine(target)
    try:
        with old.connect() as a, new.connect() as b:
            for table in (events, alerts, users):
                assert b.execute(select(table).order_by(*table.primary_key)).all() == \
                    a.execute(select(table).order_by(*table.primary_key)).all()
        # The new store goes on: ids continue after the copied ones, the chain after its last row.
        add_user(new, "aud-01", "a long enough password", "auditor", display_name="職員0013")
        s = Stack(tmp_path / "office", database={"url": target})
        s.feed(ev("cabinet-1", 3, "door.opened", f"{TUESDAY}T12:00:00+09:00"), rules=False)
        s.close()
        with new.connect() as b:
            assert b.execute(select(func.max(events.c.row_no))).scalar_one() == 42
            assert b.execute(select(users.c.id).where(users.c.username == "aud-01")).scalar_one() == 2
    finally:
        old.dispose()
        new.dispose()
    assert kagiban("verify", "--db", target).returncode == 0


def test_a_store_is_copied_only_into_an_empty_one(tmp_path, pg_cluster):
    db = office_store(tmp_path / "office")
    target = new_database(pg_cluster)
    assert kagiban("hub", "migrate-store", "--from", str(db), "--to", target).returncode == 0

    again = kagiban("hub", "migrate-store", "--from", str(db), "--to", target)

    assert again.returncode == 2
    assert "not empty" in again.stderr
    source, dest = make_engine(f"sqlite:///{db}"), make_engine(target)
    try:
        with pytest.raises(TransferError, match="not empty"):
            copy_store(source, dest)
    finally:
        source.dispose()
        dest.dispose()


def test_a_tampered_store_is_not_copied(tmp_path, pg_cluster):
    import sqlite3

    db = office_store(tmp_path / "office")
    con = sqlite3.connect(db)
    con.execute("UPDATE events SET person = 'S999' WHERE row_no = 2")
    con.commit()
    con.close()
    target = new_database(pg_cluster)

    moved = kagiban("hub", "migrate-store", "--from", str(db), "--to", target)

    assert moved.returncode == 1
    assert "TAMPERED" in moved.stdout and "nothing copied" in moved.stderr
    engine = make_engine(target)
    try:
        from sqlalchemy import inspect

        assert "events" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.sqlite_only
def test_the_sqlite_backup_is_a_store_that_verifies(tmp_path):
    db = office_store(tmp_path / "office")

    made = kagiban("hub", "backup", "--db", str(db), "--to", str(tmp_path / "backup" / "kagiban-backup.db"))

    assert made.returncode == 0, made.stderr
    copy = tmp_path / "backup" / "kagiban-backup.db"
    checked = kagiban("verify", "--db", str(copy))
    assert checked.returncode == 0, checked.stdout
    assert "41 rows, chain intact" in checked.stdout
    again = kagiban("hub", "backup", "--db", str(db), "--to", str(copy))
    assert again.returncode == 2 and "exists already" in again.stderr


def test_the_postgresql_backup_restores_to_a_store_that_verifies(tmp_path, pg_cluster):
    db = office_store(tmp_path / "office")
    source = new_database(pg_cluster)
    assert kagiban("hub", "migrate-store", "--from", str(db), "--to", source).returncode == 0
    dump = tmp_path / "kagiban.dump"

    made = kagiban("hub", "backup", "--db", source, "--to", str(dump))

    assert made.returncode == 0, made.stderr
    restored = new_database(pg_cluster)
    done = subprocess.run([str(_tool("pg_restore")), "--no-owner", f"--dbname={restored.replace('+psycopg', '')}",
                           str(dump)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    checked = kagiban("verify", "--db", restored)
    assert checked.returncode == 0, checked.stdout
    assert "41 rows, chain intact" in checked.stdout
