"""Migration 0010 on a store whose stations were enrolled before the key log existed: each
registered key (and its retirement) is entered into the ``keys`` side log, so ``kagiban
verify`` reads the registry as intact; a quarantine row and a snapshot stored before keep their
side-log entries matching."""
from __future__ import annotations

import io

from alembic import command
from sqlalchemy import text

from hub.store import migrate
from hub.audit import verify
from hub.store.db import begin_write, make_engine


def test_0010_enters_the_registered_keys_into_the_key_log(tmp_path):
    db = tmp_path / "kagiban.db"
    engine = make_engine(f"sqlite:///{db}")
    cfg = migrate.alembic_config()
    with begin_write(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO station_keys (station, key_id, public_key, added_at, retired_at, note) VALUES "
            "('cabinet-1', '1111111111111111', 'A', '2026-12-01T00:00:00.000000Z', '2026-12-02T00:00:00.000000Z', ''),"
            "('cabinet-1', '2222222222222222', 'B', '2026-12-02T00:00:00.000000Z', NULL, '')"))
    assert migrate.upgrade(engine) == migrate.head_revision()
    with engine.connect() as conn:
        ops = [tuple(r) for r in conn.execute(text(
            "SELECT json_extract(entry, '$.op'), json_extract(entry, '$.key_id') FROM side_log "
            "WHERE part = 'keys' ORDER BY n"))]
    engine.dispose()
    assert ops == [("added", "1111111111111111"), ("retired", "1111111111111111"), ("added", "2222222222222222")]
    out = io.StringIO()
    verify.run(f"sqlite:///{db}", out)
    assert "keys: OK: 3 entries (2 keys, 1 active), log intact and matching the store" in out.getvalue().splitlines()
