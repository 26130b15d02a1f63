"""Load a YAML file into a typed config model, with errors that name the file and the key.

Both the device agent and the hub use this. A station's models are ``msgspec.Struct`` types
(``forbid_unknown_fields=True``, ``msgspec.Meta`` constraints, ``__post_init__`` for rules
across fields): a started station never imports pydantic (issue 17: ~18 MiB). The hub's models
are pydantic (``extra="forbid"``); pydantic is imported here only when ``load_config`` is given
one. Either way an unknown key is an error rather than a silent typo, and every problem of a
file is reported at once, each as ``key.path: reason`` (``pins.power_relay: missing value``).

msgspec stops at a file's first problem and words it its own way, so :func:`convert` walks the
mapping along the model first and collects each problem with its key; msgspec then builds the
value. Two rules of the walk beyond msgspec's own:

- A field whose name starts with ``_`` is set by the loader (``_config_dir``), never read from
  the file: in a file it is an unknown key.
- A union of tagged Structs (a scenario's steps) reads a mapping without the tag field as the
  member whose tag is one of its keys: ``{wait: 2}`` is the step tagged ``wait``.
"""
from __future__ import annotations

import os
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Sequence, TypeVar, Union, get_args, get_origin, overload

import msgspec
import yaml
from msgspec import inspect as mi

if TYPE_CHECKING:
    from pydantic import BaseModel

S = TypeVar("S", bound=msgspec.Struct)
M = TypeVar("M", bound="BaseModel")

# How deep a file's mappings and lists are walked: deeper than any model here (a unit file is 3).
_MAX_DEPTH = 32


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file, the key and the reason."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config: the dotted key (``""``: the top level) and the reason."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key or '(top level)'}: {self.reason}"


class FieldProblem(ValueError):
    """Raised by a Struct's ``__post_init__`` about one of its own keys: reported at that key
    (``policy.public_key``) rather than at the section (``policy``)."""

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


class ConfigProblems(ValueError):
    """A value :func:`convert` could not read as its model: every problem, each with its key."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@overload
def load_config(path: str | os.PathLike, model: type[S]) -> S: ...


@overload
def load_config(path: str | os.PathLike, model: type[M]) -> M: ...


def load_config(path: str | os.PathLike, model: type[Any]) -> Any:
    """Read ``path`` as YAML and validate it against ``model`` (a msgspec Struct or, on the hub,
    a pydantic model); ConfigError names the file and each key that is wrong."""
    path = Path(path)
    raw = read_yaml(path)
    if issubclass(model, msgspec.Struct):
        try:
            return convert(raw, model)
        except ConfigProblems as exc:
            raise config_error(path, exc.problems) from exc
    from pydantic import ValidationError  # only the hub's models are pydantic

    try:
        return model.model_validate(raw, context={"config_dir": path.parent})
    except ValidationError as exc:
        raise config_error(path, pydantic_problems(exc.errors())) from exc


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


def config_error(path: str | os.PathLike, problems: Sequence[Problem]) -> ConfigError:
    """A ConfigError naming ``path`` and, for each problem, its key and reason."""
    lines = [f"{path}: {len(problems)} problem(s)"]
    lines.extend(f"  {problem}" for problem in problems)
    return ConfigError("\n".join(lines))


def pydantic_problems(errors: Sequence[Any]) -> list[Problem]:
    """The problems of a pydantic ValidationError's ``errors()``, in this module's words; a
    section the hub reads with :func:`convert` (``broker``) gives each of its own problems."""
    problems: list[Problem] = []
    for err in errors:
        key = ".".join(str(p) for p in err["loc"])
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, ConfigProblems):
            problems.extend(Problem(_join(key, p.key), p.reason) for p in inner.problems)
            continue
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key"
        elif err["type"] == "missing":
            reason = "missing value"
        problems.append(Problem(key, reason))
    return problems


def convert(raw: Any, model: type[S]) -> S:
    """``raw`` (a mapping read from YAML) as ``model``, a msgspec Struct; ConfigProblems with
    every problem found, each naming its key (dotted, relative to ``raw``)."""
    problems: list[Problem] = []
    prepared = _walk(raw, model, "", problems, 0)
    if problems:
        raise ConfigProblems(problems)
    try:  # the whole, and its own rules across fields (the walk checked each part below it)
        return msgspec.convert(prepared, model, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigProblems([_problem("", exc, model, prepared)]) from exc


class _NotRead(TypeError):
    """A value _dec_hook cannot read as the type asked for (msgspec reports it at its key)."""


def _dec_hook(kind: type, value: Any) -> Any:
    """What msgspec does not read by itself: a path from text, as pydantic did."""
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise _NotRead(f"expected {kind.__name__}, got {type(value).__name__}")


def _join(key: str, sub: str | int) -> str:
    return f"{key}.{sub}" if key and sub != "" else (key or str(sub))


def _walk(value: Any, ann: Any, key: str, problems: list[Problem], depth: int) -> Any:
    """Check ``value`` against the annotation ``ann`` part by part, appending each problem;
    return it with the tags of tagged unions filled in."""
    before = len(problems)
    target = _unwrap(ann, value)
    if depth < _MAX_DEPTH:
        if isinstance(target, type) and issubclass(target, msgspec.Struct) and isinstance(value, dict):
            value = _walk_struct(value, target, key, problems, depth)
        elif _is_union(target) and isinstance(value, dict):
            member = _tagged_member(value, target, key, problems)
            if member is not None:
                tag_field, tag = _tag_of(member)
                value = _walk_struct({tag_field: tag, **value}, member, key, problems, depth)
        elif get_origin(target) is list and isinstance(value, list):
            (item,) = get_args(target) or (Any,)
            value = [_walk(v, item, _join(key, i), problems, depth + 1) for i, v in enumerate(value)]
        elif get_origin(target) is dict and isinstance(value, dict):
            _, item = get_args(target) or (Any, Any)
            value = {k: _walk(v, item, _join(key, k), problems, depth + 1) for k, v in value.items()}
    if len(problems) == before and depth > 0:
        # The part as a whole: its type and constraints, and a Struct's rules across fields.
        try:
            msgspec.convert(value, ann, strict=False, dec_hook=_dec_hook)
        except msgspec.ValidationError as exc:
            problems.append(_problem(key, exc, ann, value))
    return value


def _walk_struct(value: dict, model: type[msgspec.Struct], key: str, problems: list[Problem], depth: int) -> dict:
    """A mapping read as the Struct ``model``: unknown and missing keys, then each field."""
    fields = {f.encode_name: f for f in msgspec.structs.fields(model) if not f.name.startswith("_")}
    tag_field, _ = _tag_of(model)
    out: dict[Any, Any] = {}
    for name, field in fields.items():
        if name in value:
            out[name] = _walk(value[name], field.type, _join(key, name), problems, depth + 1)
        elif field.required:
            problems.append(Problem(_join(key, name), "missing value"))
    for name in value:
        if name == tag_field and tag_field is not None:
            out[name] = value[name]
        elif name not in fields:
            problems.append(Problem(_join(key, str(name)), "unknown key"))
    return out


def _unwrap(ann: Any, value: Any) -> Any:
    """The type to walk ``value`` by: without ``Annotated``, and without ``None`` of an optional
    (``TLSConfig | None`` holding a mapping walks as TLSConfig)."""
    while get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    if _is_union(ann) and value is not None:
        rest = [a for a in get_args(ann) if a is not type(None)]
        if len(rest) == 1:
            return _unwrap(rest[0], value)
    return ann


def _is_union(ann: Any) -> bool:
    return get_origin(ann) in (Union, types.UnionType)


def _tag_of(model: type[msgspec.Struct]) -> tuple[str | None, Any]:
    config = model.__struct_config__
    return config.tag_field, config.tag


def _tagged_member(value: dict, union: Any, key: str, problems: list[Problem]) -> type[msgspec.Struct] | None:
    """The member of a union of tagged Structs that the mapping ``value`` is: by its tag field,
    else the member whose tag is one of its keys; None (after a problem) if not one."""
    members = [m for m in get_args(union) if isinstance(m, type) and issubclass(m, msgspec.Struct)]
    tags = {_tag_of(m)[1]: m for m in members if _tag_of(m)[0] is not None}
    if not tags or len(tags) != len(get_args(union)):
        return None  # not a union of tagged Structs: msgspec says what it wants
    tag_field = _tag_of(members[0])[0]
    if tag_field in value:
        chosen = tags.get(value[tag_field])
        if chosen is None:
            problems.append(Problem(_join(key, str(tag_field)), "should be " + _or([repr(t) for t in tags])))
        return chosen
    held = [t for t in tags if t in value]
    if len(held) != 1:
        which = "one of the keys " + _or(list(map(str, tags))) if not held else "only one of " + " or ".join(held)
        problems.append(Problem(key, f"should hold {which}"))
        return None
    return tags[held[0]]


# "... - at `$.pins.door`", "... - at `$[0]`", "... - at `$['key']`": where inside a part.
_AT = re.compile(r" - at `\$(.*)`$")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")


def _problem(key: str, exc: msgspec.ValidationError, ann: Any, value: Any) -> Problem:
    """msgspec's error about ``value`` (at ``key``) as a Problem in this module's words."""
    cause = exc.__cause__
    if isinstance(cause, FieldProblem):
        return Problem(_join(key, cause.key), cause.reason)
    if isinstance(cause, (ValueError, TypeError)) and not isinstance(cause, _NotRead):
        return Problem(key, str(cause))  # a rule of __post_init__, in its own words
    message = str(exc)
    at = _AT.search(message)
    if at and at.group(1):  # inside the part (a constraint on a whole list): msgspec's words
        for m in _STEP.finditer(at.group(1)):
            key = _join(key, next(g for g in m.groups() if g is not None))
        return Problem(key, message[: at.start()])
    return Problem(key, _reason(value, mi.type_info(ann), _literal_order(ann)))


def _literal_order(ann: Any) -> dict[Any, int]:
    """The values of the Literal in ``ann`` in the order written (msgspec.inspect sorts them)."""
    while get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    if get_origin(ann) is Literal:
        return {v: i for i, v in enumerate(get_args(ann))}
    if _is_union(ann):
        for member in get_args(ann):
            order = _literal_order(member)
            if order:
                return order
    return {}


def _reason(value: Any, info: mi.Type, order: dict[Any, int]) -> str:
    """Why ``value`` is not ``info``, as the file's reader would say it."""
    if isinstance(info, mi.UnionType):
        options = [t for t in info.types if not isinstance(t, mi.NoneType)] if value is not None else info.types
        if len(options) == 1:
            return _reason(value, options[0], order)
        return "should be " + _or([_noun(t, order) for t in options])
    if isinstance(info, (mi.IntType, mi.FloatType)):
        number = _number(value)
        if number is not None:
            for bound, words in (("gt", "greater than"), ("ge", "greater than or equal to"),
                                 ("lt", "less than"), ("le", "less than or equal to")):
                limit = getattr(info, bound)
                if limit is not None and not _holds(number, bound, limit):
                    return f"should be {words} {_show(limit)}"
    if isinstance(info, mi.StrType) and isinstance(value, str):
        if info.min_length is not None and len(value) < info.min_length:
            return f"should have at least {info.min_length} character(s)"
        if info.max_length is not None and len(value) > info.max_length:
            return f"should have at most {info.max_length} character(s)"
        if info.pattern is not None:
            return f"should match the pattern {info.pattern!r}"
    return f"should be {_noun(info, order)}"


def _noun(info: mi.Type, order: dict[Any, int]) -> str:
    if isinstance(info, mi.LiteralType):
        return _or([repr(v) for v in sorted(info.values, key=lambda v: order.get(v, len(order)))])
    nouns = {mi.IntType: "an integer", mi.FloatType: "a number", mi.StrType: "text", mi.BoolType: "true or false",
             mi.NoneType: "empty (null)", mi.ListType: "a list", mi.DictType: "a mapping of keys",
             mi.StructType: "a mapping of keys"}
    if isinstance(info, mi.CustomType) and info.cls is Path:
        return "a path (text)"
    return nouns.get(type(info), "valid")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):  # strict=False reads "17" as 17, as pydantic did
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _holds(number: float, bound: str, limit: float) -> bool:
    return {"gt": number > limit, "ge": number >= limit, "lt": number < limit, "le": number <= limit}[bound]


def _show(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else str(limit)


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


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
