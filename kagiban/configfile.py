"""Load a YAML file into a typed config model, with errors that name the file and the key.

Both the device agent and the hub use this; each defines its own pydantic models with
``extra="forbid"`` so an unknown key is an error rather than a silent typo.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file, the key and the reason."""


def load_config(path: str | os.PathLike, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it against ``model``."""
    path = Path(path)
    raw = read_yaml(path)
    try:
        cfg = model.model_validate(raw, context={"config_dir": path.parent})
    except ValidationError as exc:
        raise config_error(path, exc.errors()) from exc
    return cfg


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping at the top of the YAML file ``path``; ConfigError if there is none."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return raw


def config_error(path: str | os.PathLike, errors: Sequence[Any]) -> ConfigError:
    """A ConfigError naming ``path`` and, for each pydantic error, its key and reason."""
    lines = [f"{path}: {len(errors)} problem(s)"]
    for err in errors:
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key"
        elif err["type"] == "missing":
            reason = "missing value"
        lines.append(f"  {key}: {reason}")
    return ConfigError("\n".join(lines))


def read_secret(env: str | None, file: str | None, what: str) -> str | None:
    """A secret from an environment variable or a file (systemd credentials), never YAML.

    ``file`` may use ``$CREDENTIALS_DIRECTORY`` and other environment variables.
    """
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"{what}: environment variable {env} is not set")
        return value
    if file:
        resolved = Path(os.path.expandvars(file))
        try:
            return resolved.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read secret file {resolved}: {exc.strerror}") from exc
    return None
