"""Reading a unit's YAML file as the model of its station kind.

Each kind's module ``device/stations/<kind>.py`` defines its unit model (``UNIT``, on
device.stations.base.StationUnit: the pins it cannot work without, and the logic it builds).
This module finds them by the kinds kagiban.protocol.StationKind lists, so a new kind needs
no line here, and reads a file as a discriminated union on ``station.kind``. A wrong file
stops the agent at start with the file, the key and the reason (kagiban.configfile), e.g.
``pins.power_relay: missing value``.

The station modules never import this one (they build on device.config and
device.stations.base), so the lookup by name closes no import circle.
"""
from __future__ import annotations

import importlib
import logging
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Union, get_args

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from device.config import DeviceConfig
from device.stations.base import StationUnit
from kagiban.configfile import config_error, read_yaml
from kagiban.protocol import StationKind

_LOG = logging.getLogger(__name__)

_UNKNOWN = "unknown-kind"


class _UnknownKindUnit(DeviceConfig):
    """Picked when ``station.kind`` is missing or not a kind: validating it reports that key."""


@cache
def unit_models() -> dict[str, type[StationUnit]]:
    """Each station kind's unit model, from ``device.stations.<kind>.UNIT``."""
    found: dict[str, type[StationUnit]] = {}
    for kind in get_args(StationKind):
        model = getattr(importlib.import_module(f"device.stations.{kind}"), "UNIT", None)
        if not (isinstance(model, type) and issubclass(model, StationUnit) and model.KIND == kind):
            raise TypeError(f"device/stations/{kind}.py must define UNIT, a StationUnit with KIND {kind!r}")
        found[kind] = model
    return found


def _unit_kind(data: Any) -> str:
    station = data.get("station") if isinstance(data, dict) else getattr(data, "station", None)
    kind = station.get("kind") if isinstance(station, dict) else getattr(station, "kind", None)
    return kind if isinstance(kind, str) and kind in unit_models() else _UNKNOWN


@cache
def _adapter() -> TypeAdapter[DeviceConfig]:
    members = tuple(Annotated[model, Tag(kind)] for kind, model in unit_models().items())
    union = Union[(*members, Annotated[_UnknownKindUnit, Tag(_UNKNOWN)])]  # type: ignore[valid-type]
    return TypeAdapter(Annotated[union, Discriminator(_unit_kind)])


def load(path: str | Path) -> StationUnit:
    """Load and validate a unit file; ConfigError names the file, key and reason."""
    raw = read_yaml(path)
    try:
        cfg = _adapter().validate_python(raw)
    except ValidationError as exc:
        # The union's tag (the kind) leads each error's location: the key starts after it.
        tags = (*unit_models(), _UNKNOWN)
        errors = [{**e, "loc": e["loc"][1:]} if e["loc"] and e["loc"][0] in tags else e for e in exc.errors()]
        raise config_error(path, errors) from exc
    cfg._config_dir = Path(path).resolve().parent
    return cfg  # type: ignore[return-value]
