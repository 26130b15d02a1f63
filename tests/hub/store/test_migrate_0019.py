"""Migration 0019_procedures: the procedure tables and the ``procedures`` side log come and go;
the registry and the other side logs stay as they were."""
from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select

from hub import registry
from hub.store import migrate
from hub.store.db import begin_write, make_engine
from hub.store.schema import people, side_heads

TABLES = {"procedure_documents", "procedure_versions", "procedure_confirmations", "training_procedures"}


def _to(engine, revision: str, *, down: bool = False) -> None:
    cfg = migrate.alembic_config()
    with begin_write(engine) as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def test_0019_adds_the_procedure_tables_and_going_back_to_0018_takes_them_away(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'kagiban.db'}")
    migrate.upgrade(engine)
    registry.add_person(engine, "adm-01", "0012", "職員0012", kana="ショクイン0012", section="戸籍係")
    assert TABLES <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(select(side_heads.c.n).where(side_heads.c.part == "procedures")).scalar() == 0

    _to(engine, "0018_rollcall", down=True)
    assert not TABLES & set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(select(side_heads.c.part).where(side_heads.c.part == "procedures")).first() is None
        assert conn.execute(select(people.c.staff_no)).scalars().all() == ["0012"]

    assert migrate.upgrade(engine) == migrate.head_revision()
    assert TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()
