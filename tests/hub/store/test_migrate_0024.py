"""Migration 0024_lease_log on a store whose hubs took it over before the failover log existed:
each ``hub_leases`` row is entered into the ``failover`` side log in epoch order, so ``kagiban
verify`` reads the takeovers as intact; going back to 0023 takes the log away again."""
from __future__ import annotations

import io
import json

from alembic import command
from sqlalchemy import select, text

from hub.audit import verify
from hub.store import migrate
from hub.store.db import begin_write, make_engine
from hub.store.schema import side_heads, side_log


def _to(engine, revision: str, *, down: bool = False) -> None:
    cfg = migrate.alembic_config()
    with begin_write(engine) as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _verify(url: str) -> tuple[int, str]:
    out = io.StringIO()
    code = verify.run(url, out)
    return code, out.getvalue()


def test_0024_enters_the_takeovers_stored_before_it_into_the_failover_log(store, tmp_path):
    url = store.url(tmp_path, empty=True)
    engine = make_engine(url)
    _to(engine, "0023_scopes")
    with engine.begin() as conn:
        # Inserted out of order: the log follows the epochs, not the insertion.
        conn.execute(text(
            "INSERT INTO hub_leases (epoch, hub, since, web_url) VALUES "
            "(2, 'hub-b', '2026-12-06T02:00:00.000000Z', NULL),"
            "(1, 'hub-a', '2026-12-06T01:00:00.000000Z', 'http://127.0.0.1:8081'),"
            "(3, 'hub-a', '2026-12-06T03:00:00.000000Z', 'http://127.0.0.1:8081')"))
    code, out = _verify(url)
    assert code == 0, out
    assert "failover: not checked (this store predates the failover log)" in out.splitlines()

    assert migrate.upgrade(engine) == migrate.head_revision()
    with engine.connect() as conn:
        entries = [(r.at, json.loads(r.entry)) for r in conn.execute(
            select(side_log.c.at, side_log.c.entry).where(side_log.c.part == "failover").order_by(side_log.c.n))]
    assert entries == [
        ("2026-12-06T01:00:00.000000Z", {"op": "taken", "epoch": 1, "hub": "hub-a",
                                         "since": "2026-12-06T01:00:00.000000Z", "web_url": "http://127.0.0.1:8081"}),
        ("2026-12-06T02:00:00.000000Z", {"op": "taken", "epoch": 2, "hub": "hub-b",
                                         "since": "2026-12-06T02:00:00.000000Z", "web_url": None}),
        ("2026-12-06T03:00:00.000000Z", {"op": "taken", "epoch": 3, "hub": "hub-a",
                                         "since": "2026-12-06T03:00:00.000000Z", "web_url": "http://127.0.0.1:8081"}),
    ]
    code, out = _verify(url)
    assert code == 0, out
    assert "failover: OK: 3 entries (3 takeovers), log intact and matching the store" in out.splitlines()

    _to(engine, "0023_scopes", down=True)
    with engine.connect() as conn:
        assert conn.execute(select(side_heads.c.part).where(side_heads.c.part == "failover")).first() is None
        assert conn.execute(select(side_log.c.n).where(side_log.c.part == "failover")).first() is None
        assert conn.execute(text("SELECT count(*) FROM hub_leases")).scalar() == 3  # the takeovers stay
    engine.dispose()
