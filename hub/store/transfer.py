"""Moving a store: copying every table to another database, and backing a store up.

:func:`copy_store` is ``kagiban hub migrate-store``: a SQLite store (or any store) copied row
for row into a new, empty store, typically PostgreSQL. Rows keep their numbers and their
text exactly (the chain's hashes are over that text), so ``kagiban verify`` gives the same
answer before and after. The destination is migrated to the same revision first and must
hold nothing yet; the whole copy is one write transaction there, so a failed copy leaves it
empty. The source is only read, in one snapshot.

:func:`backup_sqlite` is ``kagiban hub backup`` for SQLite: the online backup API, safe while
the hub writes. For PostgreSQL it runs ``pg_dump --format=custom`` (docs/store.md: restore
with ``pg_restore``, and base backups with WAL archiving for a point in time).
"""
from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, Integer, func, insert, inspect, select, text
from sqlalchemy.engine import make_url

from hub.store import migrate
from hub.store.db import begin_write, read_snapshot
from hub.store.schema import metadata

_LOG = logging.getLogger(__name__)

_CHUNK_ROWS = 2000
# Alembic's own table: the destination gets its revision from migrating, not from the copy.
_NOT_COPIED = {"alembic_version"}


class TransferError(RuntimeError):
    """A store cannot be copied or backed up; the message names the store, table or file."""


@dataclass
class CopyReport:
    """What copy_store() copied: rows per table, in the order they were copied."""

    revision: str
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def copy_store(source: Engine, destination: Engine) -> CopyReport:
    """Copy every table of ``source`` into ``destination`` (empty; migrated here first)."""
    revision = migrate.current_revision(source)
    if revision != migrate.head_revision():
        raise TransferError(
            f"the source store is at revision {revision or 'none'}, this kagiban's is "
            f"{migrate.head_revision()}: start the hub (or kagiban verify) on it with this version first")
    unknown = set(inspect(source).get_table_names()) - set(metadata.tables) - _NOT_COPIED
    if unknown:
        raise TransferError(f"the source store has tables this kagiban does not know: {', '.join(sorted(unknown))}")
    migrate.upgrade(destination)
    report = CopyReport(revision=revision)
    tables = metadata.sorted_tables  # parents before the rows that name them
    with read_snapshot(source) as src, begin_write(destination) as dst:
        if dst.execute(text("SELECT count(*) FROM events")).scalar_one() or dst.execute(
                text("SELECT count(*) FROM users")).scalar_one():
            raise TransferError("the destination store is not empty: give a new, empty database")
        # Rows the migrations seed (the chain head, the side logs' heads) come from the source.
        for table in reversed(tables):
            dst.execute(table.delete())
        for table in tables:
            copied = 0
            result = src.execution_options(yield_per=_CHUNK_ROWS).execute(select(table))
            for chunk in result.partitions():
                rows = [dict(row._mapping) for row in chunk]
                try:
                    dst.execute(insert(table), rows)
                except Exception as exc:
                    raise TransferError(f"table {table.name}: rows {copied + 1}-{copied + len(rows)} "
                                        f"cannot be stored: {exc.__class__.__name__}: {exc}") from exc
                copied += len(rows)
            report.rows[table.name] = copied
        if dst.dialect.name == "postgresql":
            advance_sequences(dst)
        for table in tables:  # the destination holds exactly what was read
            got = dst.execute(select(func.count()).select_from(table)).scalar_one()
            if got != report.rows[table.name]:
                raise TransferError(f"table {table.name}: {report.rows[table.name]} rows copied, {got} stored")
    _LOG.info("copied %d rows in %d tables", report.total, len(report.rows))
    return report


def advance_sequences(conn) -> None:
    """Move each id sequence past the copied ids, or the next insert would reuse one."""
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if isinstance(column.type, Integer) and column.autoincrement is True:
                conn.execute(
                    text("SELECT setval(pg_get_serial_sequence(:t, :c), "
                         f"coalesce((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"),
                    {"t": table.name, "c": column.name})


def backup_sqlite(url: str, target: Path) -> Path:
    """Copy the SQLite store at ``url`` to ``target`` with the online backup API (the hub
    may keep writing meanwhile); refuses to overwrite ``target``."""
    parsed = make_url(url)
    source = Path(parsed.database or "")
    if not source.is_file():
        raise TransferError(f"no database file at {source}")
    target = Path(target)
    if target.exists():
        raise TransferError(f"{target} exists already: give a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=4096)  # in steps: the hub's writer is not held up for long
        finally:
            dst.close()
    finally:
        src.close()
    partial.replace(target)
    return target


def backup_postgres(url: str, target: Path) -> Path:
    """``pg_dump --format=custom`` of the store at ``url`` into ``target`` (restore with
    ``pg_restore``); the password, if the URL has one, goes through PGPASSWORD, never argv."""
    parsed = make_url(url)
    target = Path(target)
    if target.exists():
        raise TransferError(f"{target} exists already: give a new file name")
    tool = _pg_tool("pg_dump")
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    conninfo = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    partial = target.with_name(target.name + ".partial")
    done = subprocess.run([tool, "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={conninfo}"],
                          capture_output=True, text=True, env=env, timeout=6 * 3600)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise TransferError(f"pg_dump failed ({done.returncode}): {done.stderr.strip()}")
    partial.replace(target)
    return target


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).is_file():
            return str(folder / name)
    raise TransferError(f"{name} not found (Debian package postgresql-client)")
