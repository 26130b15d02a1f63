"""The station directory: one answer everywhere to "what is this station called" and "which
stations are shredders", from the hub config first and what stations reported second."""
from __future__ import annotations

from sqlalchemy import insert

from hub.config import HubConfig
from hub.stations.directory import display_name, site_name, stations_of_kind
from hub.store.schema import stations


def _cfg() -> HubConfig:
    return HubConfig.model_validate({
        "sites": {"ward-a": {"name": "区役所 本庁舎"}},
        "stations": [
            {"id": "cabinet-1", "site": "ward-a", "kind": "cabinet", "name": "キーボックス1"},
            {"id": "shredder-1", "site": "ward-a", "kind": "shredder"},
            # Listed as a printer although it once reported itself as a cabinet: the list wins.
            {"id": "printer-1", "site": "ward-b", "kind": "printer"},
        ],
    })


def _report(engine, station: str, site: str, kind: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(insert(stations).values(station=station, site=site, kind=kind, state="online"))


def test_a_station_is_called_by_its_configured_name_else_its_id():
    cfg = _cfg()
    assert display_name(cfg, "cabinet-1") == "キーボックス1"
    assert display_name(cfg, "shredder-1") == "shredder-1"  # listed without a name
    assert display_name(cfg, "door-9") == "door-9"  # not listed at all


def test_a_site_is_called_by_its_configured_name_else_its_id():
    cfg = _cfg()
    assert site_name(cfg, "ward-a") == "区役所 本庁舎"
    assert site_name(cfg, "ward-z") == "ward-z"


def test_stations_of_a_kind_come_from_the_config_first_then_from_what_they_reported(engine):
    cfg = _cfg()
    _report(engine, "printer-1", "ward-b", "cabinet")
    _report(engine, "cabinet-2", "ward-b", "cabinet")  # not listed: its report decides
    _report(engine, "door-1", "ward-a", "door")
    assert stations_of_kind(engine, cfg, "cabinet") == ["cabinet-1", "cabinet-2"]
    assert stations_of_kind(engine, cfg, "printer") == ["printer-1"]
    assert stations_of_kind(engine, cfg, "door") == ["door-1"]


def test_stations_of_a_kind_can_be_limited_to_one_site(engine):
    cfg = _cfg()
    _report(engine, "cabinet-2", "ward-b", "cabinet")
    assert stations_of_kind(engine, cfg, "cabinet", "ward-a") == ["cabinet-1"]
    assert stations_of_kind(engine, cfg, "cabinet", "ward-b") == ["cabinet-2"]


def test_a_station_of_unknown_kind_is_in_every_ledger_until_it_says_what_it_is(engine):
    cfg = _cfg()
    _report(engine, "unit-7", "ward-a", None)
    assert "unit-7" in stations_of_kind(engine, cfg, "cabinet")
    assert "unit-7" in stations_of_kind(engine, cfg, "shredder", "ward-a")
    assert "unit-7" not in stations_of_kind(engine, cfg, "shredder", "ward-b")
