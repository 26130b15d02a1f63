"""For operators: Prometheus metrics behind the sign-in (own registry per app), /healthz
without it, and the session key that never sits in the YAML file."""
from __future__ import annotations

import base64
import stat

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from hub.config import load
from hub.web.app import create_app
from hub.web.app import SECRET_KEY_FILE_NAME, load_secret_key
from kagiban.configfile import ConfigError
from tests.hub.helpers import heartbeat
from tests.support.web_app import PASSWORD, store, write_config


def samples(body: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_ingest_alerts_and_stations(as_auditor, alert_center, engine):
    store(engine, [("heartbeat", heartbeat("cabinet-1"))])
    for rule in ("forced", "forced", "held_open"):
        alert_center.raise_alert(site="ward-a", station="cabinet-1", rule=rule, severity="warning",
                                 message=rule, params={})
    alert_center.acknowledge(1, "sup-01", "ok")
    response = as_auditor.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    got = samples(response.get_data(as_text=True))
    assert got[("kagiban_events_ingested_total", ())] == 7  # from the stats callable
    assert got[("kagiban_quarantined_total", ())] == 2
    assert got[("kagiban_alerts_total", (("rule", "forced"),))] == 2
    assert got[("kagiban_alerts_total", (("rule", "held_open"),))] == 1
    assert got[("kagiban_alerts_open", ())] == 2
    assert got[("kagiban_stations_online", ())] == 1
    assert got[("kagiban_broker_connected", ())] == 1


def test_prometheus_scrapes_with_basic_auth(client, users):
    token = base64.b64encode(f"{users['auditor']}:{PASSWORD}".encode()).decode()
    response = client.get("/metrics", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200 and b"kagiban_alerts_open" in response.data


def test_two_apps_have_their_own_registries(engine, cfg, bus):
    one = create_app(engine, cfg, bus=bus, stats=lambda: {"ingested": 1})
    two = create_app(engine, cfg, bus=bus, stats=lambda: {"ingested": 2})
    assert one.extensions["kagiban"].registry is not two.extensions["kagiban"].registry


def test_without_stats_the_totals_come_from_the_store(engine, cfg, bus, users):
    from tests.hub.helpers import event

    store(engine, [("event", event("cabinet-1", n)) for n in (1, 2, 3)])
    client = create_app(engine, cfg, bus=bus, overrides={"TESTING": True}).test_client()
    token = base64.b64encode(f"{users['auditor']}:{PASSWORD}".encode()).decode()
    got = samples(client.get("/metrics", headers={"Authorization": f"Basic {token}"}).get_data(as_text=True))
    assert got[("kagiban_events_ingested_total", ())] == 3


def test_healthz_reports_a_store_that_cannot_be_opened_as_503(tmp_path, cfg, bus):
    (tmp_path / "not-a-file.db").mkdir()  # SQLite cannot open a folder
    broken = create_engine(f"sqlite:///{tmp_path / 'not-a-file.db'}")
    client = create_app(broken, cfg, bus=bus, stats=lambda: {"broker_connected": False}).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "db": False, "broker": False}


def _figures_fail() -> dict:
    raise RuntimeError("the hub's state cannot be read")


@pytest.mark.parametrize("stats, broker", [
    (lambda: {"broker_connected": True}, True),
    (lambda: {"broker_connected": False}, False),
    (lambda: {"ingested": 3}, False),  # the hub has not said yet: not connected
    (_figures_fail, False),
    (None, False),  # a web app without a hub behind it has no broker connection
], ids=["connected", "disconnected", "not-said", "unreadable", "no-hub"])
def test_healthz_reports_the_broker_connection_as_the_hub_sees_it(engine, cfg, bus, stats, broker):
    client = create_app(engine, cfg, bus=bus, stats=stats).test_client()
    response = client.get("/healthz")
    # The broker may be away for a while (stations keep their events): the store answers, so 200.
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "db": True, "broker": broker}


def test_session_key_is_made_once_with_mode_600(cfg):
    first = load_secret_key(cfg)
    path = cfg.data_path() / SECRET_KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret_key(cfg) == first and len(first) >= 32


def test_session_key_from_the_environment_or_a_file(tmp_path, monkeypatch):
    cfg = load(write_config(tmp_path / "a", web={"port": 0, "secret_key_env": "KAGIBAN_TEST_KEY"}))
    monkeypatch.setenv("KAGIBAN_TEST_KEY", "k" * 40)
    assert load_secret_key(cfg) == "k" * 40
    monkeypatch.delenv("KAGIBAN_TEST_KEY")
    with pytest.raises(ConfigError, match="KAGIBAN_TEST_KEY"):
        load_secret_key(cfg)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "web.key").write_text("f" * 40 + "\n")
    cfg = load(write_config(tmp_path / "b", web={"port": 0, "secret_key_file": "web.key"}))
    assert load_secret_key(cfg) == "f" * 40
    assert not (cfg.data_path() / SECRET_KEY_FILE_NAME).exists()
