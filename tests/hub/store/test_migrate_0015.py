"""Migration 0015 on a store whose stations were put in maintenance before the maintenance log
existed: each period (and its early end) is entered into the ``maintenance`` side log, so
``kagiban verify`` reads the periods as intact."""
from __future__ import annotations

import io

from alembic import command
from sqlalchemy import text

from hub.audit import verify
from hub.store import migrate
from hub.store.db import begin_write, make_engine


def test_0015_enters_the_maintenance_periods_into_the_maintenance_log(tmp_path):
    db = tmp_path / "kagiban.db"
    engine = make_engine(f"sqlite:///{db}")
    cfg = migrate.alembic_config()
    with begin_write(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0013")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO maintenance (station, starts_at, ends_at, reason, set_by, ended_at, ended_by) VALUES "
            "('cabinet-1', '2026-12-01T00:00:00.000000Z', '2026-12-01T02:00:00.000000Z', 'cleaning', 'sup-01',"
            " '2026-12-01T00:30:00.000000Z', 'sup-02'),"
            "('cabinet-2', '2026-12-02T00:00:00.000000Z', '2026-12-02T02:00:00.000000Z', 'reader', 'sup-01', NULL, NULL)"))
    assert migrate.upgrade(engine) == migrate.head_revision()
    with engine.connect() as conn:
        ops = [tuple(r) for r in conn.execute(text(
            "SELECT json_extract(entry, '$.op'), json_extract(entry, '$.station') FROM side_log "
            "WHERE part = 'maintenance' ORDER BY n"))]
    engine.dispose()
    assert ops == [("started", "cabinet-1"), ("ended", "cabinet-1"), ("started", "cabinet-2")]
    out = io.StringIO()
    assert verify.run(f"sqlite:///{db}", out) == 0, out.getvalue()
    assert ("maintenance: OK: 3 entries (2 periods, 1 ended early), log intact and matching the store"
            in out.getvalue().splitlines())
