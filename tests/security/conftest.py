"""Fixtures of the security replays: a real hub with chosen ``web`` settings, and the HTTP
receiver that stands for ward-a's supervisor."""
from __future__ import annotations

import pytest
import yaml

from hub.config import load
from hub.service import Hub
from hub.accounts.users import add_user
from tests.support.sinks import HttpSink
from tests.security.web_hub import PASSWORD, USER
from tests.support.stack import write_hub_config


@pytest.fixture
def sink():
    s = HttpSink()
    yield s
    s.close()


@pytest.fixture
def hub_with(tmp_path, broker, prefix, sink):
    """Start a real hub with the given ``web`` settings; ward-a's supervisor is ``sink``."""
    started: list[Hub] = []

    def start(**web) -> Hub:
        path = write_hub_config(tmp_path / f"hub{len(started)}", broker.port, prefix)
        body = yaml.safe_load(path.read_text())
        body["web"].update(web)
        body["sites"] = {"ward-a": {"name": "Ward A", "supervisors": [
            {"url": f"json://127.0.0.1:{sink.port}/", "label": "section chief"}]}}
        path.write_text(yaml.safe_dump(body))
        hub = Hub(load(path))
        started.append(hub)
        hub.start()
        assert hub.web_url, "the hub's web page did not start"
        add_user(hub.engine, USER, PASSWORD, "supervisor")
        add_user(hub.engine, "aud-01", PASSWORD, "auditor")
        hub.config_path = path
        return hub

    yield start
    for hub in started:
        hub.stop()
