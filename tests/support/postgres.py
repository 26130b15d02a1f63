"""A private PostgreSQL cluster for a test session, and the store a hub test runs on.

Like tests/support/mosquitto.py for the broker: no server that happens to be running is
used. :class:`PostgresCluster` runs Debian's ``initdb`` into a temporary folder and starts
``postgres`` on its own unix socket folder and a free loopback port, with ``fsync=off`` (the
data is thrown away at the end). initdb and postgres refuse to run as root: as root they run
as the ``postgres`` user (``setpriv``, so the server's PID is ours to stop), the folder handed
to that user. If the server cannot start, the error says why (initdb's or the server's log).

:class:`Store` is what the hub tests' ``store`` fixture gives: for SQLite nothing (a hub file
keeps its default ``data_dir/kagiban.db``); for PostgreSQL a fresh database per hub folder,
dropped when the test ends. :func:`active` is the store of the running test, which the
helpers that write hub files (tests/hub/helpers.py, tests/support/web_app.py) put in the
file's ``database`` section.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.broker import free_port

PG_BIN_DIRS = tuple(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)) if Path(
    "/usr/lib/postgresql").is_dir() else ()
SUPERUSER = "postgres"
START_TIMEOUT_S = 30.0
STORE_KINDS = ("sqlite", "postgresql")
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                 "max_connections": "200", "shared_buffers": "64MB"}


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed, or the test cluster did not start (the message says why)."""


def _tool(name: str) -> Path:
    for folder in PG_BIN_DIRS:
        if (folder / name).is_file():
            return folder / name
    found = shutil.which(name)
    if found:
        return Path(found)
    raise PostgresUnavailable(
        f"{name} not found (Debian package postgresql; scripts/install-deps --test installs it)")


class PostgresCluster:
    """initdb + postgres in ``folder``: the socket in ``folder/sock``, a loopback ``port``."""

    def __init__(self, folder: Path, settings: dict[str, str] | None = None):
        self.folder = Path(folder)
        # Server settings (``-c name=value``); the default throws durability away for speed
        # (the tests' data is dropped), bench/ gives PostgreSQL's own durable defaults.
        self.settings = dict(FAST_SETTINGS if settings is None else settings)
        self.data = self.folder / "data"
        self.sock = self.folder / "sock"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self._proc: subprocess.Popen | None = None
        self._template: str | None = None
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SUPERUSER)
            except KeyError:
                raise PostgresUnavailable(
                    "running as root and there is no 'postgres' user to run the server as "
                    "(Debian's postgresql package makes it)") from None
            self._run_as = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]

    @property
    def pid(self) -> int | None:
        """The server's (postmaster's) process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` over the cluster's unix socket."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.sock}&port={self.port}"

    def start(self) -> "PostgresCluster":
        """initdb (first time) and start the server; PostgresUnavailable with the log if not."""
        initdb, postgres = _tool("initdb"), _tool("postgres")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sock.mkdir(exist_ok=True)
        if self._run_as:
            # The server's user must own its folders, and reach them through tmp's parents.
            # The server's user must own its folders and reach them (the folder's parents
            # are not changed: give one under a world-searchable folder such as /tmp).
            for path in (self.folder, self.sock):
                shutil.chown(path, SUPERUSER, SUPERUSER)
        if not (self.data / "PG_VERSION").is_file():
            done = subprocess.run(
                [*self._run_as, str(initdb), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                 "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise PostgresUnavailable(f"initdb failed ({done.returncode}): {done.stderr.strip()}")
        log = open(self.log, "ab")
        try:
            self._proc = subprocess.Popen(
                [*self._run_as, str(postgres), "-D", str(self.data), "-p", str(self.port),
                 "-k", str(self.sock), "-h", "127.0.0.1",
                 *(arg for name, value in self.settings.items() for arg in ("-c", f"{name}={value}"))],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise PostgresUnavailable(
                    f"postgres exited with {self._proc.returncode}: {self._log_tail()}")
            try:
                psycopg.connect(host=str(self.sock), port=self.port, user=SUPERUSER,
                                dbname="postgres", connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)
        self.stop()
        raise PostgresUnavailable(f"postgres not ready after {START_TIMEOUT_S}s ({last}): {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-8:])
        except OSError:
            return "(no log)"

    def migrated_template(self) -> str:
        """A database at the newest schema revision, made once per session, to copy: a
        fresh database per test is then about 0.5 s instead of 3 s of migrations (each
        revision's own tests, and tests/hub/store/test_db.py, migrate empty databases)."""
        if self._template is None:
            from hub.store import migrate
            from hub.store.db import make_engine

            name = f"kagiban_head_{os.getpid()}"
            self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
            engine = make_engine(self.url(name))
            try:
                migrate.upgrade(engine)
            finally:
                engine.dispose()  # a template may have no connection when it is copied
            self._template = name
        return self._template

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) as the superuser."""
        import psycopg

        with psycopg.connect(host=str(self.sock), port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def stop(self) -> None:
        """A fast shutdown (SIGINT), then SIGKILL if it does not end within 20 s."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> "PostgresCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass
class Store:
    """The store a test runs on: ``kind`` is "sqlite" or "postgresql"."""

    kind: str
    cluster: PostgresCluster | None = None
    _made: dict[str, str] = field(default_factory=dict)  # folder -> database name

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgresql"

    def url_for(self, folder: Path, *, empty: bool = False) -> str | None:
        """The database URL of the hub whose files are in ``folder``: None on SQLite (the
        hub's default file there); on PostgreSQL the same fresh database for the same folder,
        already migrated unless ``empty`` (what a hub's start would do to it first)."""
        if self.cluster is None:
            return None
        key = str(Path(folder).resolve())
        if key not in self._made:
            name = _next_name()
            template = "template0" if empty else self.cluster.migrated_template()
            self.cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            self._made[key] = name
        return self.cluster.url(self._made[key])

    def url(self, folder: Path, file_name: str = "kagiban.db", *, empty: bool = False) -> str:
        """A URL for a store of its own: ``folder/file_name`` on SQLite (a new file), a fresh
        database on PostgreSQL (migrated unless ``empty``)."""
        pg = self.url_for(Path(folder) / file_name, empty=empty)
        return pg or f"sqlite:///{Path(folder) / file_name}"

    def database_section(self, folder: Path) -> dict[str, Any]:
        """The hub file's ``database`` section for a hub in ``folder`` ({} on SQLite)."""
        url = self.url_for(folder)
        return {"database": {"url": url}} if url else {}

    def drop_all(self) -> None:
        """Drop the databases this test made (connections still open are ended)."""
        if self.cluster is None:
            return
        for name in self._made.values():
            self.cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._made.clear()


_NAMES = [0]


def _next_name() -> str:
    _NAMES[0] += 1
    return f"t{os.getpid()}_{_NAMES[0]}"


_ACTIVE: list[Store] = []


def active() -> Store | None:
    """The store of the running hub test, if it asked for one."""
    return _ACTIVE[-1] if _ACTIVE else None


def activate(store: Store) -> None:
    _ACTIVE.append(store)


def deactivate() -> None:
    _ACTIVE.pop()


def database_section(folder: Path) -> dict[str, Any]:
    """The running test's store as a hub file's ``database`` section for ``folder``."""
    store = active()
    return store.database_section(folder) if store is not None else {}
