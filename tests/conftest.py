"""Fixtures for every test: a real mosquitto per test session, a fresh topic prefix per test,
gpiozero mock pins restored after each test; the store a hub test runs on (SQLite and a
private PostgreSQL, tests/support/postgres.py)."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.support import postgres
from tests.support.mosquitto import Mosquitto


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--stores", default=os.environ.get("KAGIBAN_TEST_STORES", ",".join(postgres.STORE_KINDS)),
        help="the stores a test that uses `store` runs on: sqlite, postgresql or both, comma-"
             "separated (default: $KAGIBAN_TEST_STORES, else both)")


def _store_kinds(config) -> list[str]:
    kinds = [k.strip() for k in config.getoption("--stores").split(",") if k.strip()]
    unknown = set(kinds) - set(postgres.STORE_KINDS)
    if unknown or not kinds:
        raise pytest.UsageError(f"--stores: {', '.join(sorted(unknown)) or 'empty'}: "
                                f"choose from {', '.join(postgres.STORE_KINDS)}")
    return kinds


def pytest_generate_tests(metafunc) -> None:
    # Every test whose fixtures reach `store` runs once per store; the others (pure logic) once;
    # a test marked sqlite_only (SQLite's file, its pragmas, its query planner) on SQLite only.
    if "store" in metafunc.fixturenames:
        only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("store", ["sqlite"] if only_sqlite else _store_kinds(metafunc.config), indirect=True)


@pytest.fixture(scope="session")
def pg_cluster() -> postgres.PostgresCluster:
    """A private PostgreSQL for the session, started on first use; fails loudly if it cannot.
    Its folder is outside pytest's (that one is mode 700 for root, and the server runs as
    postgres); removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="kagiban-pg-"))
    try:
        with postgres.PostgresCluster(folder) as cluster:
            yield cluster
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def store(request) -> postgres.Store:
    """The store this test runs on (parametrized: sqlite, postgresql); while the test runs,
    hub files written by the test helpers use it. PostgreSQL databases are dropped after."""
    kind = getattr(request, "param", "sqlite")
    made = postgres.Store(kind, request.getfixturevalue("pg_cluster") if kind == "postgresql" else None)
    postgres.activate(made)
    yield made
    postgres.deactivate()
    made.drop_all()


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Mosquitto:
    """A mosquitto shared by the session; tests keep apart through their own topic prefix."""
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as m:
        yield m


@pytest.fixture
def own_broker(tmp_path) -> Mosquitto:
    """A mosquitto for one test, free to be stopped, killed and restarted."""
    m = Mosquitto(tmp_path / "mosquitto").start()
    yield m
    m.stop()


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses, so retained messages never leak between tests."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def mock_factory():
    """gpiozero's MockFactory as the default pin factory, reset after the test."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    saved = Device.pin_factory
    factory = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = saved
