"""Migration 0017 on a store with users: the ``staff`` role becomes possible and the near-miss
tables and log appear; going back to 0013 removes them and leaves no staff account able to sign
in under a role the older code does not know."""
from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from hub.accounts.users import add_user, authenticate
from hub.store import migrate
from hub.store.db import begin_write, make_engine

PASSWORD = "correct horse 01"


def _to(engine, revision: str, *, down: bool = False) -> None:
    cfg = migrate.alembic_config()
    with begin_write(engine) as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def test_0017_adds_the_staff_role_and_the_near_miss_tables_and_0013_takes_them_back(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'kagiban.db'}")
    _to(engine, "0013")
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (username, password_hash, role, display_name, language, active, "
                              "created_at) VALUES ('s', 'x', 'staff', 's', 'ja', 1, '2026-12-05T00:00:00.000000Z')"))
    add_user(engine, "aud-01", PASSWORD, "auditor")

    _to(engine, "0017")
    add_user(engine, "staff-07", PASSWORD, "staff")
    assert authenticate(engine, "staff-07", PASSWORD)["role"] == "staff"
    assert authenticate(engine, "aud-01", PASSWORD)["role"] == "auditor"  # kept through the table rebuild
    assert {"nearmiss_cases", "nearmiss_digests"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM side_heads WHERE part = 'nearmiss'")).scalar() == 0

    _to(engine, "0013", down=True)
    assert not {"nearmiss_cases", "nearmiss_digests"} & set(inspect(engine).get_table_names())
    assert authenticate(engine, "staff-07", PASSWORD) is None  # deactivated, not an auditor now
    assert authenticate(engine, "aud-01", PASSWORD)["role"] == "auditor"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM side_heads WHERE part = 'nearmiss'")).scalar() == 0
    engine.dispose()
