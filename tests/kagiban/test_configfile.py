"""Reading a config mapping into msgspec Structs (the station's files) or pydantic models (the
hub's): every problem of a file at once, each naming its whole key and the reason in words a
person setting up a unit reads; a section both sides share reports its keys inside the hub's file."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import Meta

from kagiban.configfile import ConfigError, ConfigProblems, FieldProblem, Problem, convert, load_config


class _Inner(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    level: Literal["low", "high"] = "low"
    count: Annotated[int, Meta(ge=1, le=10)] = 1
    low: int = 0
    high: int = 0

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low is above high")


class _Key(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(pattern=r"^[a-z]+$")]

    def __post_init__(self) -> None:
        if self.name == "root":
            raise FieldProblem("name", "root is not a name")


class _Step(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="step"):
    pass


class _Go(_Step, tag="go"):
    go: Annotated[float, Meta(ge=0)]


class _Say(_Step, tag="say"):
    say: str


class _File(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    site: str
    inner: _Inner = msgspec.field(default_factory=_Inner)
    key: _Key | None = None
    folder: Path = Path("/var/lib/x")
    pins: dict[str, Annotated[int, Meta(ge=0, le=53)]] = {}
    steps: list[Union[_Go, _Say]] = []
    timeout: Annotated[float, Meta(gt=0, lt=60)] | None = None
    label: Annotated[str, Meta(min_length=2, max_length=8)] = "ab"
    either: int | str = 0
    sizes: list[Annotated[int, Meta(ge=1)]] = []
    span: tuple[int, int] = (0, 0)
    _loaded_from: Path = Path(".")


def _problems(raw) -> list[str]:
    with pytest.raises(ConfigProblems) as err:
        convert(raw, _File)
    return [str(p) for p in err.value.problems]


def test_a_good_mapping_reads_with_its_defaults_and_paths():
    got = convert({"site": "a", "folder": "data", "steps": [{"go": 1}, {"say": "hi"}]}, _File)
    assert got == _File(site="a", folder=Path("data"), steps=[_Go(go=1.0), _Say(say="hi")])
    assert got.inner == _Inner() and got.key is None and got._loaded_from == Path(".")


def test_every_problem_is_named_by_its_whole_key():
    assert _problems({"inner": {"level": "mid", "count": 11, "extra": 1}, "pins": {"door": 54}, "folder": 3}) == [
        "site: missing value",
        "inner.level: should be 'low' or 'high'",
        "inner.count: should be less than or equal to 10",
        "inner.extra: unknown key",
        "folder: should be a path (text)",
        "pins.door: should be less than or equal to 53",
    ]


@pytest.mark.parametrize("raw,problem", [
    ({"site": 5}, "site: should be text"),
    ({"site": "a", "inner": 3}, "inner: should be a mapping of keys"),
    ({"site": "a", "inner": {"count": "many"}}, "inner.count: should be an integer"),
    ({"site": "a", "inner": {"count": 0}}, "inner.count: should be greater than or equal to 1"),
    ({"site": "a", "key": {"name": "A"}}, "key.name: should match the pattern '^[a-z]+$'"),
    ({"site": "a", "key": {}}, "key.name: missing value"),
    ({"site": "a", "inner": {"low": 2, "high": 1}}, "inner: low is above high"),
    ({"site": "a", "key": {"name": "root"}}, "key.name: root is not a name"),
    ({"site": "a", "_loaded_from": "/etc"}, "_loaded_from: unknown key"),
    ({"site": "a", "steps": [{"go": -1}]}, "steps.0.go: should be greater than or equal to 0"),
    ({"site": "a", "steps": [{"go": 1}, {"jump": 1}]}, "steps.1: should hold one of the keys go or say"),
    ({"site": "a", "steps": [{"go": 1, "say": "x"}]}, "steps.0: should hold only one of go or say"),
    ({"site": "a", "steps": [{"say": "x", "loud": True}]}, "steps.0.loud: unknown key"),
    ({"site": "a", "steps": [{"step": "fly"}]}, "steps.0.step: should be 'go' or 'say'"),
    ({"site": "a", "steps": 5}, "steps: should be a list"),
    ({"site": "a", "pins": [17, 27]}, "pins: should be a mapping of keys"),
    ({"site": "a", "sizes": [2, 0]}, "sizes.1: should be greater than or equal to 1"),
    # An optional value is judged by what it would be when given: its own bounds, not "or null".
    ({"site": "a", "timeout": 0}, "timeout: should be greater than 0"),
    ({"site": "a", "timeout": 60}, "timeout: should be less than 60"),
    ({"site": "a", "timeout": "soon"}, "timeout: should be a number"),
    ({"site": "a", "either": [1]}, "either: should be an integer or text"),
    ({"site": "a", "label": "x"}, "label: should have at least 2 character(s)"),
    ({"site": "a", "label": "much too long"}, "label: should have at most 8 character(s)"),
    # Inside a part the walk does not take apart (a pair), msgspec's words at the item's key.
    ({"site": "a", "span": [1, "x"]}, "span.1: Expected `int`, got `str`"),
])
def test_each_kind_of_mistake_reads_as_its_key_and_reason(raw, problem):
    assert _problems(raw) == [problem]


def test_a_rule_across_fields_is_checked_only_once_each_field_is_right():
    # A wrong count is the problem; "low is above high" would only confuse until it is fixed.
    assert _problems({"site": "a", "inner": {"count": 0, "low": 2, "high": 1}}) == [
        "inner.count: should be greater than or equal to 1"]


@given(st.integers(-100, 100))
def test_a_number_is_refused_exactly_when_its_bound_is_crossed(count):
    raw = {"site": "a", "inner": {"count": count}}
    if 1 <= count <= 10:
        assert convert(raw, _File).inner.count == count
    else:
        words = "greater than or equal to 1" if count < 1 else "less than or equal to 10"
        assert _problems(raw) == [f"inner.count: should be {words}"]


def test_load_config_names_the_file_and_each_problem(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("inner: {count: 0}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, _File)
    assert str(err.value).splitlines() == [f"{path}: 2 problem(s)", "  site: missing value",
                                           "  inner.count: should be greater than or equal to 1"]


def test_a_problem_reads_as_key_and_reason_and_the_top_level_is_named():
    assert str(Problem("pins.door", "missing value")) == "pins.door: missing value"
    assert str(Problem("", "expected a mapping")) == "(top level): expected a mapping"


def test_a_hub_file_read_by_pydantic_names_its_keys_in_the_same_words(tmp_path):
    from pydantic import BaseModel, ConfigDict, PlainValidator

    def _station_section(value) -> _Inner:
        return value if isinstance(value, _Inner) else convert(value, _Inner)

    class _Hub(BaseModel):  # as hub.config: pydantic sections, and a section a station shares
        model_config = ConfigDict(extra="forbid")
        site: str
        port: int = 8080
        inner: Annotated[_Inner, PlainValidator(_station_section)] = _Inner()

    path = tmp_path / "hub.yaml"
    path.write_text("port: many\nlisten: 0.0.0.0\ninner: {count: 0, colour: red}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, _Hub)
    assert str(err.value).splitlines() == [
        f"{path}: 5 problem(s)",
        "  site: missing value",
        "  port: Input should be a valid integer, unable to parse string as an integer",
        "  inner.count: should be greater than or equal to 1",
        "  inner.colour: unknown key",
        "  listen: unknown key",
    ]
