"""Reading a unit's YAML file as the model of its station kind.

Each kind's module ``device/stations/<kind>.py`` defines its unit model (``UNIT``, on
device.stations.base.StationUnit: the pins it cannot work without, and the logic it builds).
This module finds a kind's module by the kind's name (one of kagiban.wire.StationKind), so
a new kind needs no line here, and reads a file as the model of its ``station.kind``. A wrong
file stops the agent at start with the file, the key and the reason (kagiban.configfile), e.g.
``pins.power_relay: missing value``.

The station modules never import this one (they build on device.config and
device.stations.base), so the lookup by name closes no import circle.
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any, get_args

from device.config import DeviceConfig
from device.stations.base import StationUnit
from kagiban.configfile import ConfigProblems, config_error, convert, read_yaml
from kagiban.wire import StationKind

_LOG = logging.getLogger(__name__)


class _UnknownKindUnit(DeviceConfig, kw_only=True):
    """Used when ``station.kind`` is missing or not a kind: validating it reports that key."""


def unit_model(kind: str) -> type[StationUnit]:
    """The unit model of ``kind`` (one of StationKind), from ``device.stations.<kind>.UNIT``.

    Only that kind's module is imported: a unit loads the code of its own kind, not of every
    kind (a cabinet never imports the print-server code)."""
    if kind not in get_args(StationKind):
        raise ValueError(f"not a station kind: {kind!r}")
    model = getattr(importlib.import_module(f"device.stations.{kind}"), "UNIT", None)
    if not (isinstance(model, type) and issubclass(model, StationUnit) and model.KIND == kind):
        raise TypeError(f"device/stations/{kind}.py must define UNIT, a StationUnit with KIND {kind!r}")
    return model


def unit_models() -> dict[str, type[StationUnit]]:
    """Every station kind's unit model (imports every kind's module)."""
    return {kind: unit_model(kind) for kind in get_args(StationKind)}


def _model_of(raw: Any) -> type[DeviceConfig]:
    """The model a file's content is read as: its ``station.kind``'s, else one that reports
    that key (missing, or not a kind) along with everything else wrong."""
    station = raw.get("station") if isinstance(raw, dict) else None
    kind = station.get("kind") if isinstance(station, dict) else None
    if isinstance(kind, str) and kind in get_args(StationKind):
        return unit_model(kind)
    return _UnknownKindUnit


def load(path: str | Path) -> StationUnit:
    """Load and validate a unit file as the model of its kind; ConfigError names the file, key
    and reason."""
    raw = read_yaml(path)
    if "pins" not in raw:
        # No pins section at all: name the pins the kind requires, not just "pins".
        raw = {**raw, "pins": {}}
    try:
        cfg = convert(raw, _model_of(raw))
    except ConfigProblems as exc:
        raise config_error(path, exc.problems) from exc
    cfg._config_dir = Path(path).resolve().parent
    return cfg  # type: ignore[return-value]
