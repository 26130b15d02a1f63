"""Migrations: an empty file gets the whole schema; starting again changes nothing."""
from __future__ import annotations

import logging
import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from hub.store import migrate
from hub.store.db import make_engine
from hub.ingest.writer import Ingest
from hub.store.schema import GENESIS_HASH, chain_head, metadata
from tests.hub.helpers import SITE, encode, event, stored_seqs

TABLES = {
    "events", "snapshots", "quarantine", "stations", "station_log", "chain_head", "policies",
    "alerts", "alert_deliveries", "users",
    "people", "badges", "trainings", "training_sessions", "attendance", "designations",
    "station_settings", "after_hours_users", "shredder_roster", "registry_log",
    "closeouts", "side_log", "side_heads", "checkpoints", "station_keys", "api_tokens", "maintenance",
    "key_work",
    "nearmiss_cases", "nearmiss_digests",
    "procedure_documents", "procedure_versions", "procedure_confirmations", "training_procedures",
    "rollcall_sessions", "rollcall_people",
    "user_sites",
    "hub_leases",
}


def test_empty_file_gets_the_schema(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'kagiban.db'}")
    assert migrate.current_revision(engine) is None

    assert migrate.upgrade(engine) == migrate.head_revision()

    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as conn:
        assert conn.execute(select(chain_head.c.row_no, chain_head.c.hash)).one() == (0, GENESIS_HASH)
        # The migrated tables are what the code's queries expect, column for column.
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("events")}
    assert {"ix_events_station_at_utc", "ix_events_kind_at_utc", "ix_events_person_at_utc"} <= indexes
    engine.dispose()


def test_second_start_keeps_the_data_and_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'kagiban.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    ingest = Ingest(engine, prefix="p").start()
    ingest.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", 1)))
    ingest.stop()
    schema_before = _schema(tmp_path / "kagiban.db")
    engine.dispose()

    engine = make_engine(url)  # as a restarted hub would
    assert migrate.upgrade(engine) == migrate.head_revision()
    assert _schema(tmp_path / "kagiban.db") == schema_before
    assert stored_seqs(engine, "cabinet-1") == [1]
    with engine.connect() as conn:
        assert conn.execute(select(chain_head.c.row_no)).scalar() == 1
    engine.dispose()


def test_sqlite_is_set_up_for_durable_acks(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'kagiban.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() > 0
    engine.dispose()


def _schema(path):
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall(), key=str)
    finally:
        conn.close()


def test_events_stored_before_incarnations_keep_their_chain_through_0006(tmp_path):
    """A store at 0005 (events keyed per station and seq) migrated to today's: every row and its
    hash kept, and a replaced outbox's seq 1 is then accepted beside the old seq 1."""
    from alembic import command

    from hub.store.chain import row_hash, verify
    from hub.store.db import begin_write

    engine = make_engine(f"sqlite:///{tmp_path / 'kagiban.db'}")
    cfg = migrate.alembic_config()
    with begin_write(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    prev, rows = GENESIS_HASH, []
    for seq in (1, 2, 3):
        content = {"site": SITE, "station": "cabinet-1", "seq": seq, "event_id": f"0190f3a2-7c1e-7b3a-9f00-00000000000{seq}",
                   "kind": "door.opened", "at": "2025-04-01T09:00:00+09:00", "badge": None, "person": None,
                   "data": {"n": seq}, "received_at": "2025-04-01T00:00:01.000000Z"}
        digest = row_hash(prev, content)
        rows.append({**content, "data": '{"n":%d}' % seq, "row_no": seq, "at_utc": "2025-04-01T00:00:00.000000Z",
                     "prev_hash": prev, "hash": digest})
        prev = digest
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO events (row_no, site, station, seq, event_id, kind, at, at_utc, badge, person, data, "
            "received_at, prev_hash, hash) VALUES (:row_no, :site, :station, :seq, :event_id, :kind, :at, :at_utc, "
            ":badge, :person, :data, :received_at, :prev_hash, :hash)"), rows)
        conn.execute(text("UPDATE chain_head SET row_no=3, hash=:h"), {"h": prev})

    assert migrate.upgrade(engine) == migrate.head_revision()

    assert verify(engine).ok
    assert stored_seqs(engine, "cabinet-1") == [1, 2, 3]
    ingest = Ingest(engine, prefix="p").start()
    ingest.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", 1, incarnation="0190f3a2-7c1e-7b3a-9f00-3c2d1e0a4b5c")))
    ingest.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", 2)))  # the old count: a conflict
    ingest.stop()
    assert stored_seqs(engine, "cabinet-1") == [1, 2, 3, 1]
    assert ingest.quarantined == 1 and verify(engine).ok
    engine.dispose()


def test_rows_stored_before_0008_are_entered_into_their_side_logs(tmp_path):
    """A store at 0006 with an acknowledged alert, a registry change, a quarantined message and
    a snapshot: after 0008 each is in its side log, verify holds them, and deleting one shows."""
    import hashlib
    import io
    import sqlite3

    from alembic import command

    from hub.audit import verify
    from hub.store.db import begin_write

    db = tmp_path / "kagiban.db"
    engine = make_engine(f"sqlite:///{db}")
    cfg = migrate.alembic_config()
    with begin_write(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO alerts (site, station, rule, severity, message, params, raised_at, state, acked_by, "
            "acked_at, ack_comment) VALUES ('ward-a', 'cabinet-1', 'forced', 'critical', 'forced', '{}', "
            "'2025-04-01T00:00:00.000000Z', 'acknowledged', 'sup-01', '2025-04-01T00:05:00.000000Z', 'checked')"))
        conn.execute(text(
            "INSERT INTO registry_log (at, actor, entity, key, action, before, after) VALUES "
            "('2025-04-01T00:00:00.000000Z', 'adm-01', 'person', 'S001', 'add', NULL, '{\"name\":\"A\"}')"))
        conn.execute(text(
            "INSERT INTO quarantine (received_at, topic, reason, detail, size, payload) VALUES "
            "('2025-04-01T00:00:00.000000Z', 'p/x/y/event', 'bad_json', 'not JSON', 3, x'7b7b7b')"))
        conn.execute(text(
            "INSERT INTO snapshots (event_id, site, station, taken_at, content_type, sha256, image, received_at) "
            "VALUES ('0190f3a2-7c1e-7b3a-9f00-000000000001', 'ward-a', 'cabinet-1', '2025-04-01T00:00:00.000000Z', "
            "'image/jpeg', :sha, x'ffd8ffd9', '2025-04-01T00:00:00.000000Z')"),
            {"sha": hashlib.sha256(b"\xff\xd8\xff\xd9").hexdigest()})
    engine.dispose()

    engine = make_engine(f"sqlite:///{db}")
    assert migrate.upgrade(engine) == migrate.head_revision()
    engine.dispose()
    out = io.StringIO()
    assert verify.run(f"sqlite:///{db}", out) == 0, out.getvalue()
    text_out = out.getvalue()
    assert "alerts: OK: 2 entries (1 alerts, 1 acknowledgements)" in text_out
    assert "registry: OK: 1 entries" in text_out and "quarantine: OK: 1 entries" in text_out
    assert "snapshots: OK: 1 entries (1 stored, 0 expired)" in text_out

    con = sqlite3.connect(db)
    with con:
        con.execute("DELETE FROM quarantine")
    con.close()
    out = io.StringIO()
    assert verify.run(f"sqlite:///{db}", out) == 1
    assert "quarantine: TAMPERED: 1 entries; quarantined message 1 deleted: log entry 1 records it" in out.getvalue()


def test_a_start_that_migrates_says_from_which_revision_to_which_and_a_start_with_nothing_to_do_is_silent(
        tmp_path, caplog):
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        with caplog.at_level(logging.INFO, logger="hub.store.migrate"):
            migrate.upgrade(engine)
            first = [r.getMessage() for r in caplog.records if r.name == "hub.store.migrate"]
            caplog.clear()
            migrate.upgrade(engine)
            second = [r.getMessage() for r in caplog.records if r.name == "hub.store.migrate"]
    finally:
        engine.dispose()
    assert first == [f"database migrated from empty to {migrate.head_revision()}"]
    assert second == []
