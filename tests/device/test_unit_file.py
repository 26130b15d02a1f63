"""A unit file is read as the model its station kind's own module defines; every kind has one,
and the kind modules build on device.config without importing the loader back."""
import ast
from pathlib import Path
from typing import get_args

import pytest

from device import unit_file
from device.stations import make_logic
from device.stations.annunciator import AnnunciatorLogic, AnnunciatorUnit
from device.stations.base import StationUnit
from kagiban.configfile import ConfigError
from kagiban.protocol import StationKind

ROOT = Path(__file__).resolve().parents[2]
KEY = "VXGbZ1gWydvXB5k2i7wTpHIpEDR0Le9x4emQ+q0VYXw="
ANNUNCIATOR = "site: s\nstation: {id: a1, kind: annunciator}\n" + f"policy: {{public_key: '{KEY}'}}\n"


def test_every_station_kind_has_its_unit_model_in_its_own_module():
    models = unit_file.unit_models()
    assert set(models) == set(get_args(StationKind))
    for kind, model in models.items():
        assert issubclass(model, StationUnit) and model.KIND == kind
        assert model.__module__ == f"device.stations.{kind}"


def test_no_station_module_imports_the_loader_or_the_agent():
    for path in (ROOT / "device" / "stations").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not names & {"device.unit_file", "device.agent", "device.hardware"}, path.name


def test_the_annunciator_example_loads_and_builds_its_logic():
    cfg = unit_file.load(ROOT / "config" / "annunciator.example.yaml")
    assert isinstance(cfg, AnnunciatorUnit)
    assert (cfg.pins.lamp, cfg.pins.buzzer, cfg.pins.silence_button) == (5, 6, 13)
    assert isinstance(make_logic(cfg), AnnunciatorLogic)


@pytest.mark.parametrize("pins,missing", [
    ("pins: {buzzer: 6, silence_button: 13}\n", "pins.lamp"),
    ("pins: {lamp: 5, silence_button: 13}\n", "pins.buzzer"),
    ("pins: {lamp: 5, buzzer: 6}\n", "pins.silence_button"),
])
def test_an_annunciator_without_a_pin_it_needs_is_refused_naming_the_pin_and_the_file(tmp_path, pins, missing):
    f = tmp_path / "annunciator.yaml"
    f.write_text(ANNUNCIATOR + pins)
    with pytest.raises(ConfigError) as err:
        unit_file.load(f)
    assert f"{missing}: missing value" in str(err.value)
    assert str(f) in str(err.value)
