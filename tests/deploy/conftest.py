"""Fixtures for the deployment checks: the repository's own broker config and ACL, run by a real
mosquitto on loopback (tests/support/deployment.py), one broker for the whole session."""
from __future__ import annotations

import uuid

import pytest

from tests.support.deployment import Deployment, peer_factory, require_broker_tools, start_deployment


@pytest.fixture(scope="session")
def deployment(tmp_path_factory) -> Deployment:
    """mosquitto running config/mosquitto/kagiban.conf with config/mosquitto/acl."""
    require_broker_tools()
    dep = start_deployment(tmp_path_factory.mktemp("deploy"))
    yield dep
    dep.broker.stop()


@pytest.fixture
def peers(deployment):
    """Make connected clients for a test and close them all afterwards."""
    with peer_factory(deployment) as make:
        yield make


@pytest.fixture
def site() -> str:
    """A site id no other test uses, so retained messages never leak between tests."""
    return "site-" + uuid.uuid4().hex[:10]
