"""The station's event data (device.event_data) are the hub's event models (kagiban.events)
without pydantic: every kind the hub knows, with the same fields (names, types, constraints,
defaults, order); what a station builds, the hub reads back as the values it meant; ``data()``
writes exactly what the hub's model writes for the same values, byte for byte on the wire; and
the module loads without pydantic."""
from __future__ import annotations

import json
import subprocess
import sys
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, ValidationError

from device import event_data as station
from kagiban import events as hub
from kagiban import protocol
from kagiban.wire import ERROR_CODE_PATTERN, KIND_PATTERN

_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 3, 10, 0, tzinfo=timezone(timedelta(hours=9)))
KINDS = sorted(hub.MODELS)
# The nested records: a job as events list it, a job CUPS finished.
NESTED = ["PrintJob", "PrintedJob"]


# --- what a field is: its type, as both sides can say it ---

def _shape(tp: Any, constraints: tuple = ()) -> Any:
    """A comparable description of a field's type: class names, union and literal members, and
    the constraints on a text or a time (pydantic's and msgspec's spellings alike)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        base, *meta = args
        if base is AwareDatetime:  # the hub's Time: its validator and serializer are the form
            return ("datetime", ("tz", True))
        found = [(k, getattr(m, k)) for m in meta if isinstance(m, msgspec.Meta)
                 for k in ("pattern", "max_length", "tz") if getattr(m, k) is not None]
        return _shape(base, tuple(sorted(found)))
    if origin in (Union, types.UnionType):
        return ("union", *(_shape(a, () if a is type(None) else constraints) for a in args))
    if origin is list:
        return ("list", _shape(args[0]))
    if origin is Literal:
        return ("literal", *args)
    if tp is type(None):
        return "None"
    return (tp.__name__, *constraints)


def _hub_fields(model: type) -> dict[str, tuple]:
    """name -> (type, default) of a hub model, in field order (``kind`` is no data key)."""
    out = {}
    for name, info in model.model_fields.items():
        if name == "kind":
            continue
        found = [(k, getattr(m, k)) for m in info.metadata for k in ("pattern", "max_length")
                 if getattr(m, k, None) is not None]
        out[name] = (_shape(info.annotation, tuple(sorted(found))), info.get_default(call_default_factory=True))
    return out


def _station_fields(cls: type) -> dict[str, tuple]:
    """name -> (type, default) of a station record, in field order."""
    hints = get_type_hints(cls, include_extras=True)
    empty = cls()
    return {name: (_shape(hints[name]), getattr(empty, name)) for name in cls.FIELDS}


def _pairs() -> list[tuple[type, type]]:
    pairs = [(station.MODELS[k], hub.MODELS[k]) for k in KINDS]
    return pairs + [(getattr(station, n), getattr(hub, n)) for n in ["EventData", *NESTED]]


def test_the_station_has_every_kind_the_hub_knows_by_the_same_names():
    assert sorted(station.MODELS) == KINDS
    assert {k: m.__name__ for k, m in station.MODELS.items()} == {k: m.__name__ for k, m in hub.MODELS.items()}
    assert all(station.MODELS[k]().kind == k for k in KINDS)


@pytest.mark.parametrize("mine, theirs", _pairs(), ids=lambda m: m.__name__)
def test_each_record_has_the_hub_model_s_fields_types_defaults_in_order(mine, theirs):
    assert list(_station_fields(mine).items()) == list(_hub_fields(theirs).items())


@pytest.mark.parametrize("mine", [m for m, _ in _pairs()], ids=lambda m: m.__name__)
def test_a_list_default_is_new_for_each_record(mine):
    lists = [n for n in mine.FIELDS if isinstance(getattr(mine(), n), list)]
    a, b = mine(), mine()
    assert all(getattr(a, n) is not getattr(b, n) for n in lists)


def test_the_field_comparison_sees_a_difference_in_type_default_order_or_constraint():
    # The comparison above must be able to fail: one record that drifted in each way.
    class Reordered(station.EventData):
        reason: str = ""
        purpose: str = ""
        unlocked_at: station.Time | None = None

    class Retyped(station.EventData):
        purpose: str = ""
        unlocked_at: datetime | None = None  # no tz: the hub refuses a naive time

    class Redefaulted(station.EventData):
        purpose: str | None = None
        unlocked_at: station.Time | None = None

    class Unconstrained(station.EventData):
        event_id: str | None = None
        for_kind: Annotated[str, msgspec.Meta(pattern=KIND_PATTERN)] | None = None
        error: Annotated[str, msgspec.Meta(pattern=ERROR_CODE_PATTERN)] | None = None
        detail: Annotated[str, msgspec.Meta(max_length=200)] | None = None

    for drifted in (Reordered, Retyped, Redefaulted):
        assert _station_fields(drifted) != _hub_fields(hub.KeyPurpose)
    assert _station_fields(Unconstrained) != _hub_fields(hub.SnapshotFailed)


# --- values a station may build: what each field's type allows ---

# UTC and Japan's offset often (UTC is where "+00:00" and "Z" differ), any other now and then.
_OFFSETS = st.sampled_from([timezone.utc, timezone(timedelta(hours=9))]) | st.integers(-14 * 60, 14 * 60).map(
    lambda m: timezone(timedelta(minutes=m)))
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=8)
                     | st.floats(allow_nan=False, allow_infinity=False),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=6)


def _values(tp: Any) -> st.SearchStrategy:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        base, meta = args[0], args[1]
        if base is datetime:
            return st.datetimes(timezones=_OFFSETS)
        if meta.pattern is not None:
            found = st.from_regex(meta.pattern, fullmatch=True)
            return found.filter(lambda s: len(s) <= meta.max_length) if meta.max_length else found
        return st.text(max_size=meta.max_length)
    if origin in (Union, types.UnionType):
        return st.one_of(*(_values(a) for a in args))
    if origin is list:
        return st.lists(_values(args[0]), max_size=3)
    if origin is Literal:
        return st.sampled_from(args)
    if tp is type(None):
        return st.none()
    if isinstance(tp, type) and issubclass(tp, station.Record):
        return _records(tp)
    return {bool: st.booleans(), int: st.integers(-2**63, 2**63 - 1), str: st.text(max_size=20),
            float: st.floats(allow_nan=False, allow_infinity=False)}[tp]


@st.composite
def _kwargs(draw: Any, cls: type) -> dict[str, Any]:
    """Keywords for ``cls``: some of its fields, sometimes unknown keys, in any order."""
    hints = get_type_hints(cls, include_extras=True)
    chosen = draw(st.fixed_dictionaries({}, optional={n: _values(hints[n]) for n in cls.FIELDS}))
    names = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True).filter(lambda k: k not in cls.FIELDS and k != "kind")
    extra = draw(st.dictionaries(names, _JSON, max_size=2) | st.just({}))
    items = draw(st.permutations(list({**chosen, **extra}.items())))
    return dict(items)


def _records(cls: type) -> st.SearchStrategy:
    return _kwargs(cls).map(lambda kw: cls(**kw))


def _same(value: Any) -> Any:
    """What a value is, strictly: a time with its offset, an int no float, a record its fields."""
    if isinstance(value, datetime):
        return ("datetime", value.isoformat())
    if isinstance(value, list):
        return [_same(v) for v in value]
    if isinstance(value, dict):
        return {k: _same(v) for k, v in value.items()}
    if isinstance(value, (station.Record, BaseModel)):
        names = value.FIELDS if isinstance(value, station.Record) else [n for n in type(value).model_fields if n != "kind"]
        extra = value.extra if isinstance(value, station.Record) else value.model_extra
        return {"fields": {n: _same(getattr(value, n)) for n in names}, "extra": _same(extra)}
    return (type(value).__name__, value)


def _to_hub(value: Any) -> Any:
    """The same values as the hub's model of the same name."""
    if isinstance(value, station.Record):
        named = {n: _to_hub(getattr(value, n)) for n in value.fields_set}
        return getattr(hub, type(value).__name__)(**named, **value.extra)
    if isinstance(value, list):
        return [_to_hub(v) for v in value]
    return value


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_the_hub_reads_back_what_the_station_built(kind, data):
    built = data.draw(_records(station.MODELS[kind]))
    sent = json.loads(json.dumps(built.data()))  # as it travels
    read = hub.read(kind, sent)
    assert type(read) is hub.MODELS[kind]
    assert _same(read) == _same(built)
    # Nothing was salvaged away: every key the station set was taken as it was.
    assert read.model_fields_set - {"kind"} == built.fields_set | set(built.extra)
    assert read.data() == built.data()


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_data_is_what_the_hub_model_writes_for_the_same_values_byte_for_byte(kind, data):
    kwargs = data.draw(_kwargs(station.MODELS[kind]))
    mine = station.MODELS[kind](**kwargs)
    theirs = hub.MODELS[kind](**{k: _to_hub(v) for k, v in kwargs.items()})
    assert json.dumps(mine.data(), ensure_ascii=False) == json.dumps(theirs.data(), ensure_ascii=False)

    def event(data: dict) -> bytes | str:
        try:
            return protocol.dumps(protocol.Event(id="0190d2a4-0000-7000-8000-000000000001", seq=1,
                                                 site="ward-a", station="cabinet-1", kind=kind, at=T0, data=data))
        except ValidationError:  # e.g. clock_unsynced present but not true: the wire's own rule
            return "refused"

    assert event(mine.data()) == event(theirs.data())


def test_a_key_use_is_written_as_the_cabinet_has_always_sent_it():
    used = station.KeyUsed(duration_s=27, reason="designated_holder", flagged=False, unlocked_at=T0,
                           closed_at=T0 + timedelta(seconds=28.5))
    # Set keys in field order, whatever the keywords' order; a default that was set is written
    # (flagged), one that was not is left out (opened_at); 27 stays an int; times keep +09:00.
    assert json.dumps(used.data()) == (
        '{"unlocked_at": "2026-12-03T10:00:00+09:00", "closed_at": "2026-12-03T10:00:28.500000+09:00", '
        '"duration_s": 27, "flagged": false, "reason": "designated_holder"}')
    assert (used.kind, used.opened_at, used.fields_set) == (
        "key.used", None, {"unlocked_at", "closed_at", "duration_s", "flagged", "reason"})


def test_jobs_in_a_release_are_written_with_the_keys_each_job_was_given():
    released = station.PrintReleased(user="u0012", count=2, jobs=[
        station.PrintJob(id=7, title="住民票", pages=2), station.PrintJob(id=8)])
    assert released.data() == {"user": "u0012", "jobs": [{"id": 7, "title": "住民票", "pages": 2}, {"id": 8}],
                               "count": 2}


def test_unknown_keys_follow_the_fields_and_must_be_json():
    started = station.StationStarted(firmware="1.2", door="closed", policy_version=3)
    assert list(started.data().items()) == [("policy_version", 3), ("door", "closed"), ("firmware", "1.2")]
    assert started.extra == {"firmware": "1.2"}
    with pytest.raises(TypeError, match="StationStarted: unknown key 'since' must hold a JSON value"):
        station.StationStarted(since=T0)
    with pytest.raises(TypeError, match="unknown key 'ratio'"):
        station.StationStarted(ratio=float("nan"))


def _nested(levels: int) -> Any:
    """A JSON value ``levels`` containers deep, lists and objects in turn."""
    value: Any = "職員0012"
    for level in range(levels):
        value = [value] if level % 2 else {"in": value}
    return value


def test_an_unknown_key_may_hold_sixteen_levels_of_json_and_no_more():
    # Deeper (or a list that holds itself) is a bug in the caller: refused when built, naming
    # the key, rather than a RecursionError when the event is written.
    assert station.StationStarted(note=_nested(16)).data() == {"note": _nested(16)}
    with pytest.raises(TypeError, match="StationStarted: unknown key 'note' must hold a JSON value, not dict"):
        station.StationStarted(note=_nested(17))
    itself: list[Any] = []
    itself.append(itself)
    with pytest.raises(TypeError, match="unknown key 'note' must hold a JSON value, not list"):
        station.StationStarted(note=itself)


def test_a_record_is_frozen_and_its_lists_are_its_own():
    people = ["職員0012", "職員0034"]
    started = station.ShredStarted(people=people)
    people.append("職員0056")
    assert started.people == ["職員0012", "職員0034"]
    with pytest.raises(AttributeError, match="ShredStarted is frozen: cannot set 'max_s'"):
        started.max_s = 600  # type: ignore[misc]


def test_kind_is_the_event_s_and_never_a_key_of_its_data():
    assert station.DoorForced(kind="door.forced").data() == {}
    with pytest.raises(TypeError, match="DoorForced: kind must be 'door.forced'"):
        station.DoorForced(kind="door.opened")
    # A job has no kind: there it is a key like any other, as in the hub's model.
    hub_job = hub.PrintJob(id=1, kind="x").model_dump(mode="json", exclude_unset=True)
    assert station.PrintJob(id=1, kind="x").data() == hub_job == {"id": 1, "kind": "x"}


def test_equal_records_have_equal_values_whichever_were_given():
    # As the hub's models: flagged=False given or left at its default is the same record.
    assert station.KeyUsed(flagged=False) == station.KeyUsed()
    assert station.KeyUsed(flagged=True) != station.KeyUsed()
    assert station.KeyUsed() != station.UnlockExpired()


def test_a_field_without_a_default_is_refused_when_the_class_is_made():
    with pytest.raises(TypeError, match="Broken.purpose: every field needs a default"):
        class Broken(station.EventData):
            purpose: str


_LOADS = """
import json, sys
from datetime import datetime, timezone
from device import event_data
at = datetime.now(timezone.utc)
built = [cls().data() for cls in event_data.MODELS.values()]
built.append(event_data.KeyUsed(unlocked_at=at, duration_s=3).data())
built.append(event_data.PrintReleased(jobs=[event_data.PrintJob(id=1)]).data())
print(json.dumps({"built": len(built), "pydantic": sorted(m for m in sys.modules if m.split(".")[0] == "pydantic")}))
"""


def test_the_station_s_event_data_load_and_build_without_pydantic():
    # Only this module (device.stations' package still loads its unit models: another part of
    # issue 17; the whole station's test comes with all of them).
    done = subprocess.run([sys.executable, "-c", _LOADS], capture_output=True, text=True, timeout=60, cwd=_ROOT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"built": len(KINDS) + 2, "pydantic": []}
