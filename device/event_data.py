"""The ``data`` of the events a station records, built without pydantic.

kagiban.events holds the hub's definition of each event kind's ``data`` (pydantic models: the
hub reads what arrives strictly, salvages what fits and keeps unknown keys). A station only
*builds* data, and pydantic would cost it ~18 MiB (its import and its first model build), so the
station builds them here: one class per kind, with the same name, fields (names, types,
defaults, order) and keyword constructor as the hub's model, and ``data()`` writing the same
object the hub's ``data()`` writes for the same values:

- the keys that were set (passed to the constructor, even at their default), in field order,
  then unknown keys in the order they came (JSON values only);
- times as ``isoformat()`` (with their offset: "+00:00", never "Z"); numbers as they were given
  (5 stays 5, never 5.0); nested jobs as their own ``data()``.

A twin, not one definition: the hub's reading (values that do not fit left out by pydantic's
error locations, unknown keys kept on the model, strict types) is pydantic's, and a msgspec
Struct can neither keep unknown keys nor tell a key set at its default from one left out.

The classes are plain, frozen records (``dataclass_transform`` lets mypy check every
constructor's keywords and types); no value is validated when built: the station's own code is
typed, and the tests hold each station-built kind to the hub's strict model
(tests/device/test_event_data.py: the fields match, the hub reads back what the station built,
the bytes are the same). A kind added to kagiban.events is added here too (with its line in
``MODELS``); that test fails until it is.
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Callable, ClassVar, Literal, dataclass_transform

from msgspec import Meta

from kagiban.wire import (
    ERROR_CODE_PATTERN,
    KIND_PATTERN,
    MAX_HEALTH_DETAIL,
    STORAGE_CORRUPT,
    UUID_PATTERN,
    DecisionKind,
)

__all__ = ["EventData", "MODELS", "Record", "field"]

# A time inside ``data``: aware (the hub refuses a naive one), written as ``isoformat()``.
Time = Annotated[datetime, Meta(tz=True)]

# Seconds, minutes: an int stays an int and a float a float (as kagiban.events.Number).
Number = int | float


class _Factory:
    """A field's default made anew for each record (a list must not be shared)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], Any]) -> Any:
    """A field whose default is made by ``default_factory`` (as ``dataclasses.field``)."""
    return _Factory(default_factory)


def _json(value: Any) -> Any:
    """``value`` as it goes into ``data``: the form pydantic's ``model_dump(mode="json")`` of the
    hub's model gives for the same value."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Record):
        return value.data()
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def _is_json(value: Any, depth: int = 0) -> bool:
    """True for a JSON value (what an unknown key may hold), nested at most 16 deep."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth >= 16:
        return False
    if isinstance(value, list):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class Record:
    """A frozen record built by keywords; it remembers which fields were set.

    A subclass declares its fields as annotated class attributes, each with a default (the wire
    never required a key); they follow the fields of the classes it builds on.
    """

    FIELDS: ClassVar[tuple[str, ...]] = ()
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = list(cls.FIELDS)
        defaults = dict(cls.DEFAULTS)
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if str(annotation).startswith("ClassVar"):
                continue
            if name not in cls.__dict__:
                raise TypeError(f"{cls.__name__}.{name}: every field needs a default")
            if name not in defaults:
                names.append(name)
            defaults[name] = cls.__dict__[name]
            delattr(cls, name)  # read from the instance only
        cls.FIELDS, cls.DEFAULTS = tuple(names), defaults

    def __init__(self, **values: Any) -> None:
        kind = getattr(type(self), "KIND", None)  # an event's kind: not a key of its data
        if kind is not None and "kind" in values and values.pop("kind") != kind:
            raise TypeError(f"{type(self).__name__}: kind must be {kind!r}")
        given = tuple(name for name in self.FIELDS if name in values)
        own = {}
        for name in self.FIELDS:
            if name in values:
                value = values.pop(name)
                own[name] = list(value) if isinstance(value, list) else value  # a copy, as pydantic
            else:
                default = self.DEFAULTS[name]
                own[name] = default.make() if isinstance(default, _Factory) else default
        for key, value in values.items():  # what is left: unknown keys
            if not _is_json(value):
                raise TypeError(f"{type(self).__name__}: unknown key {key!r} must hold a JSON value, "
                                f"not {type(value).__name__}")
        vars(self).update(own, _set=given, _extra=dict(values))

    def data(self) -> dict[str, Any]:
        """The JSON object of the record: the keys that were set, in field order, then unknown
        keys as they came (what the hub's ``data()`` gives for the same values)."""
        mine = vars(self)
        out = {name: _json(mine[name]) for name in mine["_set"]}
        out.update(mine["_extra"])
        return out

    @property
    def extra(self) -> dict[str, Any]:
        """Unknown keys given to the constructor (kept and written after the fields)."""
        return dict(vars(self)["_extra"])

    @property
    def fields_set(self) -> frozenset[str]:
        """The fields given to the constructor (what ``data()`` writes)."""
        return frozenset(vars(self)["_set"])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        mine, theirs = vars(self), vars(other)
        # As the hub's models: the values and the unknown keys, not which fields were given.
        return all(mine[n] == theirs[n] for n in self.FIELDS) and mine["_extra"] == theirs["_extra"]

    __hash__ = None  # type: ignore[assignment]  # holds lists, as the hub's models do

    def __repr__(self) -> str:
        mine = vars(self)
        shown = ", ".join(f"{n}={mine[n]!r}" for n in mine["_set"])
        extra = "".join(f", {k}={v!r}" for k, v in mine["_extra"].items())
        return f"{type(self).__name__}({shown}{extra})"


class EventData(Record):
    """What every event's ``data`` may hold: the keys the station's agent adds to each event
    (docs/protocol.md, "event"). A kind's class adds its own fields after these."""

    KIND: ClassVar[str] = ""
    # The policy version the station decided with.
    policy_version: int | None = None
    # Committed while the station had no connection to the broker.
    offline: bool | None = None
    # Revision 3: made while the station's clock was not synchronised (true when present).
    clock_unsynced: Literal[True] | None = None
    # Revision 6: decided from a policy past its expiry.
    policy_expired: bool | None = None

    @property
    def kind(self) -> str:
        """The event's kind (``Event.kind``), never a key of its data."""
        return self.KIND


# --- every station ---

class StationStarted(EventData):
    """``station.started``: the agent started (data: policy in force, outbox depth, door)."""

    KIND = "station.started"
    outbox_depth: int | None = None
    door: Literal["open", "closed"] | None = None


class StorageCorrupt(EventData):
    """``storage.corrupt``: a store the station could not read at start was moved aside and
    replaced."""

    KIND = STORAGE_CORRUPT
    store: Literal["outbox", "policy"] = "outbox"
    moved_to: list[str] = field(default_factory=list)
    error: str = ""
    previous_incarnation: str | None = None
    previous_next_seq: int | None = None
    previous_highest_seq: int | None = None
    previous_unsent: int | None = None


class StorageFailed(EventData):
    """``storage.failed``: the station could not write its records from ``since`` and kept
    ``kept`` events in memory; recorded once it can write again."""

    KIND = "storage.failed"
    since: Time | None = None
    kept: int | None = None
    error: str = ""


class SnapshotFailed(EventData):
    """``snapshot.failed``: the photo event ``event_id`` (of kind ``for_kind``) asked for was
    not taken."""

    KIND = "snapshot.failed"
    event_id: Annotated[str, Meta(pattern=UUID_PATTERN)] | None = None
    for_kind: Annotated[str, Meta(pattern=KIND_PATTERN, max_length=64)] | None = None
    error: Annotated[str, Meta(pattern=ERROR_CODE_PATTERN)] | None = None
    detail: Annotated[str, Meta(max_length=MAX_HEALTH_DETAIL)] | None = None


class PolicyRejected(EventData):
    """``policy.rejected``: the station refused a policy offered to it and keeps its own."""

    KIND = "policy.rejected"
    reason: str = ""
    offered_version: int | None = None
    held_version: int | None = None


# --- badges ---

class BadgeGranted(EventData):
    """``badge.granted``: an allowed tap (``flagged``: allowed, but e.g. not designated)."""

    KIND = "badge.granted"
    reason: str = ""
    flagged: bool = False
    unlock_s: Number | None = None  # cabinets and doors
    print_user: str | None = None  # printers
    decision: DecisionKind | None = None  # added by the agent: the policy's effective decision


class BadgeDenied(EventData):
    """``badge.denied``: a refused or unknown badge; nothing was unlocked."""

    KIND = "badge.denied"
    reason: str = ""
    decision: DecisionKind | None = None


# --- doors (cabinets and restricted doors) ---

class DoorOpened(EventData):
    """``door.opened``: within an unlock window (``authorised``), or at a door without a
    reader (``authorised`` null, ``reader`` false)."""

    KIND = "door.opened"
    authorised: bool | None = None
    flagged: bool | None = None
    reader: bool | None = None


class DoorClosed(EventData):
    """``door.closed``: how long the door was open (null: the opening was not seen)."""

    KIND = "door.closed"
    authorised: bool | None = None
    open_s: Number | None = None
    opened_at: Time | None = None


class DoorForced(EventData):
    """``door.forced``: a cabinet door opened without an unlock window."""

    KIND = "door.forced"


class DoorIntrusion(EventData):
    """``door.intrusion``: a restricted door opened with nobody badged in."""

    KIND = "door.intrusion"
    authorised: bool | None = None


class DoorHeldOpen(EventData):
    """``door.held_open``: open for ``open_s``, past the station's ``limit_s``."""

    KIND = "door.held_open"
    open_s: Number | None = None
    limit_s: Number | None = None
    authorised: bool | None = None


class KeyUsed(EventData):
    """``key.used``: one use of a key cabinet, from the tap to the door closing."""

    KIND = "key.used"
    unlocked_at: Time | None = None
    opened_at: Time | None = None
    closed_at: Time | None = None
    duration_s: Number | None = None
    flagged: bool = False
    reason: str = ""


class UnlockExpired(EventData):
    """``unlock.expired``: an unlock window ended with the door never opened."""

    KIND = "unlock.expired"
    unlock_s: Number | None = None
    unlocked_at: Time | None = None
    flagged: bool = False


class UnlockEnded(EventData):
    """``unlock.ended``: another person's tap took the unlock window over (``superseded``)."""

    KIND = "unlock.ended"
    reason: str = ""
    unlocked_at: Time | None = None
    unlock_s: Number | None = None
    by_badge: str | None = None
    by_person: str | None = None
    flagged: bool = False


class KeyPurpose(EventData):
    """``key.purpose``: a purpose button pressed at the cabinet after a use (作業内容, a code
    of the site's list), naming the use by its ``unlocked_at``."""

    KIND = "key.purpose"
    purpose: str = ""
    unlocked_at: Time | None = None


# --- shredders ---

class ShredWaiting(EventData):
    """``shred.waiting``: the first person waits ``window_s`` for a second."""

    KIND = "shred.waiting"
    window_s: Number | None = None


class ShredRefused(EventData):
    """``shred.refused``: the pair could not start the shredder (``reason``)."""

    KIND = "shred.refused"
    reason: str = ""
    first_badge: str | None = None
    first_person: str | None = None
    window_s: Number | None = None


class ShredStarted(EventData):
    """``shred.started``: two different authorised people switched the power on."""

    KIND = "shred.started"
    people: list[str | None] = field(default_factory=list)
    badges: list[str | None] = field(default_factory=list)
    flagged: list[bool] = field(default_factory=list)
    max_s: Number | None = None
    paired_s: Number | None = None


class ShredEnded(EventData):
    """``shred.ended``: a session ended (``ended_by``: tap, stop_button, max_length, bin_opened)."""

    KIND = "shred.ended"
    people: list[str | None] = field(default_factory=list)
    badges: list[str | None] = field(default_factory=list)
    started_at: Time | None = None
    ended_at: Time | None = None
    duration_s: Number | None = None
    ended_by: str = ""
    max_s: Number | None = None
    ended_by_badge: str | None = None
    ended_by_person: str | None = None


class BinOpened(EventData):
    """``bin.opened``: the shredder's bin door opened (``during_session``: it ended one)."""

    KIND = "bin.opened"
    during_session: bool | None = None


class BinClosed(EventData):
    """``bin.closed``: the shredder's bin door closed."""

    KIND = "bin.closed"


# --- printers ---

class PrintJob(Record):
    """A print job as events list it (``user``: its owner, in ``print.expired``)."""

    id: int | None = None
    title: str = ""
    pages: int | None = None
    user: str | None = None


class PrintedJob(Record):
    """A released job CUPS has finished (``state``: completed, canceled, aborted)."""

    id: int | None = None
    state: str | None = None
    pages: int | None = None


class PrintReleased(EventData):
    """``print.released``: a tap released ``user``'s held jobs."""

    KIND = "print.released"
    user: str | None = None
    jobs: list[PrintJob] = field(default_factory=list)
    count: int | None = None
    not_released: list[PrintJob] = field(default_factory=list)


class PrintReleaseFailed(EventData):
    """``print.release_failed``: a tap released nothing (no_jobs, no_print_user, cups_down, ...)."""

    KIND = "print.release_failed"
    user: str | None = None
    reason: str = ""
    still_held: int | None = None


class PrintPrinted(EventData):
    """``print.printed``: released jobs CUPS has printed, with the pages it counted."""

    KIND = "print.printed"
    jobs: list[PrintedJob] = field(default_factory=list)
    count: int | None = None


class PrintQueue(EventData):
    """``print.queue``: the holding queue looked at: ``held`` jobs, the oldest ``oldest_s`` old."""

    KIND = "print.queue"
    held: int | None = None
    oldest_s: Number | None = None


class PrintExpired(EventData):
    """``print.expired``: held jobs cancelled unprinted after ``limit_s``."""

    KIND = "print.expired"
    jobs: list[PrintJob] = field(default_factory=list)
    count: int | None = None
    limit_s: Number | None = None


class CupsDown(EventData):
    """``cups.down``: the print server cannot be reached."""

    KIND = "cups.down"
    reason: str = ""


class CupsUp(EventData):
    """``cups.up``: the print server can be reached again."""

    KIND = "cups.up"


class TrayUncollected(EventData):
    """``tray.uncollected``: printouts lay in the tray ``minutes`` (since ``since``)."""

    KIND = "tray.uncollected"
    minutes: Number | None = None
    since: Time | None = None
    limit_s: Number | None = None


class TrayCollected(EventData):
    """``tray.collected``: the tray is empty again, after ``lay_s``."""

    KIND = "tray.collected"
    lay_s: Number | None = None
    after_alert: bool | None = None


# --- annunciators ---

class AnnunciatorSilenced(EventData):
    """``annunciator.silenced``: the silence button stopped the buzzer for the open critical
    ``alerts`` (ids; silencing is no acknowledgement)."""

    KIND = "annunciator.silenced"
    alerts: list[int] | None = None
    count: int | None = None


# --- roll-call units ---

class RollcallTap(EventData):
    """``rollcall.tap``: a badge tapped at a roll-call unit; ``session`` is the session its
    policy had open (None: none), ``answer`` what the unit showed."""

    KIND = "rollcall.tap"
    session: int | None = None
    answer: str | None = None


# kind -> its class: every kind of kagiban.events.MODELS (tests/device/test_event_data.py).
MODELS: dict[str, type[EventData]] = {m.KIND: m for m in (
    StationStarted, StorageCorrupt, StorageFailed, SnapshotFailed, PolicyRejected,
    BadgeGranted, BadgeDenied,
    DoorOpened, DoorClosed, DoorForced, DoorIntrusion, DoorHeldOpen, KeyUsed, UnlockExpired, UnlockEnded,
    KeyPurpose,
    ShredWaiting, ShredRefused, ShredStarted, ShredEnded, BinOpened, BinClosed,
    PrintReleased, PrintReleaseFailed, PrintPrinted, PrintQueue, PrintExpired, CupsDown, CupsUp,
    TrayUncollected, TrayCollected,
    AnnunciatorSilenced,
    RollcallTap,
)}
