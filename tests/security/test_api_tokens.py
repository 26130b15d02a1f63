"""Personal API tokens against the real hub's own web server (issue 12, "Web sign-in"): Prometheus
scrapes /metrics with a token file made by ``kagiban hub token add``; the token answers in a
fraction of the time an argon2-checked HTTP Basic request takes (both measured here, in the same
run); revoking it, or deactivating its user, refuses it on the very next request."""
from __future__ import annotations

import base64
import http.client
import statistics
import time

import pytest

from hub import config as hub_config
from hub.service import Hub
from hub.accounts.users import add_user, deactivate
from kagiban.cli import main
from tests.hub.helpers import write_hub_config

PASSWORD = "correct horse 01"
ROUNDS = 15


@pytest.fixture
def hub(broker, prefix, tmp_path):
    path = write_hub_config(tmp_path / "hub", broker, prefix)
    h = Hub(hub_config.load(path))
    h.start()
    add_user(h.engine, "prometheus", PASSWORD, "auditor")
    h.config_path = path
    yield h
    h.stop()


def _get(port: int, path: str, authorization: str) -> tuple[int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": authorization})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


def test_prometheus_scrapes_with_a_token_file_faster_than_basic_until_revoked(hub, tmp_path, capsys):
    token_file = tmp_path / "kagiban-token"
    assert main(["hub", "token", "add", "--config", str(hub.config_path), "--username", "prometheus",
                 "--name", "prometheus", "--file", str(token_file)]) == 0
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    bearer = f"Bearer {token}"
    basic = "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    port = hub.web.port

    times: dict[str, list[float]] = {"bearer": [], "basic": []}
    for _ in range(ROUNDS):  # alternated, so both see the same load on the machine
        for kind, header in (("bearer", bearer), ("basic", basic)):
            status, took = _get(port, "/metrics", header)
            assert status == 200, kind
            times[kind].append(took)
    medians = {k: statistics.median(v) for k, v in times.items()}
    with capsys.disabled():
        print(f"\n/metrics over HTTP, median of {ROUNDS}: token {medians['bearer'] * 1000:.1f} ms, "
              f"HTTP Basic (argon2) {medians['basic'] * 1000:.1f} ms")
    assert medians["bearer"] * 5 < medians["basic"]

    # Listed (never the token itself), then revoked: the next scrape is refused.
    assert main(["hub", "token", "list", "--config", str(hub.config_path), "--username", "prometheus"]) == 0
    listing = capsys.readouterr().out
    key_id = token.split("_")[1]
    assert f"kgb_{key_id}_" in listing and "prometheus" in listing and token not in listing
    assert main(["hub", "token", "revoke", "--config", str(hub.config_path), "--key-id", key_id]) == 0
    assert _get(port, "/metrics", bearer)[0] == 401
    assert _get(port, "/api/events", bearer)[0] == 401


def test_a_deactivated_users_token_is_refused_on_the_next_request(hub, capsys):
    assert main(["hub", "token", "add", "--config", str(hub.config_path), "--username", "prometheus",
                 "--name", "grafana"]) == 0
    token = capsys.readouterr().out.strip()
    assert _get(hub.web.port, "/api/stations", f"Bearer {token}")[0] == 200
    assert deactivate(hub.engine, "prometheus")
    assert _get(hub.web.port, "/api/stations", f"Bearer {token}")[0] == 401


def test_deactivating_a_user_revokes_their_tokens_for_good(hub, capsys, monkeypatch):
    assert main(["hub", "token", "add", "--config", str(hub.config_path), "--username", "prometheus",
                 "--name", "prometheus"]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["hub", "user", "deactivate", "--config", str(hub.config_path), "--username", "prometheus"]) == 0
    assert "1 API token(s) revoked" in capsys.readouterr().err
    # The account comes back (a new password): its old token does not.
    monkeypatch.setenv("KAGIBAN_TEST_PASSWORD", PASSWORD)
    assert main(["hub", "user", "add", "--config", str(hub.config_path), "--username", "prometheus",
                 "--role", "auditor", "--password-env", "KAGIBAN_TEST_PASSWORD", "--replace"]) == 0
    assert _get(hub.web.port, "/api/stations", f"Bearer {token}")[0] == 401
    basic = "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    assert _get(hub.web.port, "/api/stations", basic)[0] == 200
