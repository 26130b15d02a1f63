"""Fixtures for every test: a real mosquitto per test session, a fresh topic prefix per test,
gpiozero mock pins restored after each test."""
from __future__ import annotations

import uuid

import pytest

from tests.support.mosquitto import Mosquitto


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
