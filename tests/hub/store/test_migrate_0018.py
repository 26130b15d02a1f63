"""Migration 0018_rollcall on a store from 0017: the roll-call tables appear, empty, and a
session with its people can be written; going back to 0017 removes them and nothing else."""
from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from hub.store import migrate
from hub.store.db import begin_write, make_engine


def _to(engine, revision: str, *, down: bool = False) -> None:
    cfg = migrate.alembic_config()
    with begin_write(engine) as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def test_0018_adds_the_roll_call_tables_and_0017_takes_them_back(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'kagiban.db'}")
    _to(engine, "0017")
    before = set(inspect(engine).get_table_names())
    _to(engine, "0018_rollcall")
    assert set(inspect(engine).get_table_names()) - before == {"rollcall_sessions", "rollcall_people"}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO rollcall_sessions (kind, topic, stations, starts_at, window_min, opened_at, "
                          "opened_by) VALUES ('meeting', '朝礼', '[\"rollcall-1\"]', '2026-12-07T00:00:00.000000Z', "
                          "10, '2026-12-06T23:50:00.000000Z', 'sup-01')"))
        conn.execute(text("INSERT INTO rollcall_people (session_id, staff_no, expected) VALUES (1, '0012', 1)"))
        assert conn.execute(text("SELECT procedure_version_id, closed_at FROM rollcall_sessions")).one() == (None, None)
    _to(engine, "0017", down=True)
    assert set(inspect(engine).get_table_names()) == before
    engine.dispose()
