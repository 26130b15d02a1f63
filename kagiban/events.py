"""Typed events: one model per event kind, for the ``data`` of a wire ``Event``.

The wire keeps ``Event.data`` an open JSON object (docs/protocol.md, "Event kinds"): a hub
stores every event it can parse as an ``Event``, whatever its kind and data. These models
define that object for both sides:

- ``data()`` gives the object that travels, with exactly the keys that were set; a station
  builds the same object without pydantic, from the twin of each model in device.event_data
  (same names, fields and ``data()``; tests/device/test_event_data.py holds them together);
- the hub reads a stored or received event with :func:`read`: its kind's model, or
  :class:`OtherEvent` for a kind this version does not know. Data that does not fit the model
  (a wrong type from an old or faulty station) never makes it fail: the offending values are
  left out (their fields keep their defaults) and the rest is read, so the event is still
  alerted on and shown, as it is stored.

Every field has a default, since the wire never required one; what a station always sends is
listed in docs/protocol.md. Unknown keys are kept (``extra="allow"``), as the wire keeps them.
Types are strict (``"5"`` is no number, ``1`` no boolean); times are ISO 8601 strings with an
offset on the wire and aware datetimes here.

A new kind is one model here (and one line in ``KindData``), its twin in device.event_data, one
row in docs/protocol.md's "Event kinds" (tests/kagiban/test_event_kinds.py holds the two
together), and, if it raises an alert, one entry in hub.alerting.rules.EVENT_RULES.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
)

from kagiban.protocol import (
    CLOCK_UNSYNCED,
    ERROR_CODE_PATTERN,
    KIND_PATTERN,
    MAX_HEALTH_DETAIL,
    STORAGE_CORRUPT,
    UUID_PATTERN,
    DecisionKind,
)

_LOG = logging.getLogger(__name__)

__all__ = ["CLOCK_UNSYNCED", "STORAGE_CORRUPT", "EventData", "OtherEvent", "MODELS", "read", "read_as", "KindData"]


def _iso(value: Any) -> Any:
    # Only ISO text (or a datetime from the station's own code): a number is no time here.
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


# A time inside ``data``: ISO 8601 text with an offset, written back as ``isoformat()`` (the
# form the stations have always sent, "+00:00" rather than "Z").
Time = Annotated[AwareDatetime, BeforeValidator(_iso), PlainSerializer(lambda t: t.isoformat(), return_type=str)]


# Seconds, minutes: an int stays an int and a float a float, so data() writes the number as the
# station had it (5 stays 5, never 5.0). Booleans are no numbers (strict).
Number = int | float


class EventData(BaseModel):
    """What every event's ``data`` may hold: the keys the station's agent adds to each event
    (docs/protocol.md, "event"). A kind's model adds its own fields after these."""

    # defer_build: built at first use; a station builds only the kinds it records.
    model_config = ConfigDict(extra="allow", frozen=True, strict=True, defer_build=True)

    KIND: ClassVar[str] = ""
    kind: str = Field(default="", exclude=True)
    # The policy version the station decided with.
    policy_version: int | None = None
    # Committed while the station had no connection to the broker.
    offline: bool | None = None
    # Revision 3: made while the station's clock was not synchronised (true when present).
    clock_unsynced: Literal[True] | None = None
    # Revision 6: decided from a policy past its expiry.
    policy_expired: bool | None = None

    def data(self) -> dict[str, Any]:
        """The JSON object for ``Event.data``: the keys that were set, in field order, then
        unknown keys as they came."""
        return self.model_dump(mode="json", exclude_unset=True)


def _kind(kind: str) -> Any:
    """The ``kind`` field of one model: its literal, excluded from ``data()``."""
    return Field(default=kind, exclude=True)


class OtherEvent(EventData):
    """An event of a kind this version does not know; its data are kept as they came."""

    kind: str = Field(default="", exclude=True)


# --- every station ---

class StationStarted(EventData):
    """``station.started``: the agent started (data: policy in force, outbox depth, door)."""

    KIND = "station.started"
    kind: Literal["station.started"] = _kind(KIND)
    outbox_depth: int | None = None
    door: Literal["open", "closed"] | None = None


class StorageCorrupt(EventData):
    """``storage.corrupt``: a store the station could not read at start was moved aside and
    replaced (``kagiban.protocol.StorageCorrupt`` is what the station fills in)."""

    KIND = STORAGE_CORRUPT
    kind: Literal["storage.corrupt"] = _kind(KIND)
    store: Literal["outbox", "policy"] = "outbox"
    moved_to: list[str] = Field(default_factory=list)
    error: str = ""
    previous_incarnation: str | None = None
    previous_next_seq: int | None = None
    previous_highest_seq: int | None = None
    previous_unsent: int | None = None


class StorageFailed(EventData):
    """``storage.failed``: the station could not write its records from ``since`` and kept
    ``kept`` events in memory; recorded once it can write again."""

    KIND = "storage.failed"
    kind: Literal["storage.failed"] = _kind(KIND)
    since: Time | None = None
    kept: int | None = None
    error: str = ""


class SnapshotFailed(EventData):
    """``snapshot.failed``: the photo event ``event_id`` (of kind ``for_kind``) asked for was
    not taken (``kagiban.protocol.SnapshotFailed`` is what the station fills in)."""

    KIND = "snapshot.failed"
    kind: Literal["snapshot.failed"] = _kind(KIND)
    event_id: str | None = Field(default=None, pattern=UUID_PATTERN)
    for_kind: str | None = Field(default=None, pattern=KIND_PATTERN, max_length=64)
    error: str | None = Field(default=None, pattern=ERROR_CODE_PATTERN)
    detail: str | None = Field(default=None, max_length=MAX_HEALTH_DETAIL)


class PolicyRejected(EventData):
    """``policy.rejected``: the station refused a policy offered to it and keeps its own."""

    KIND = "policy.rejected"
    kind: Literal["policy.rejected"] = _kind(KIND)
    reason: str = ""
    offered_version: int | None = None
    held_version: int | None = None


# --- badges ---

class BadgeGranted(EventData):
    """``badge.granted``: an allowed tap (``flagged``: allowed, but e.g. not designated)."""

    KIND = "badge.granted"
    kind: Literal["badge.granted"] = _kind(KIND)
    reason: str = ""
    flagged: bool = False
    unlock_s: Number | None = None  # cabinets and doors
    print_user: str | None = None  # printers
    decision: DecisionKind | None = None  # added by the agent: the policy's effective decision


class BadgeDenied(EventData):
    """``badge.denied``: a refused or unknown badge; nothing was unlocked."""

    KIND = "badge.denied"
    kind: Literal["badge.denied"] = _kind(KIND)
    reason: str = ""
    decision: DecisionKind | None = None


# --- doors (cabinets and restricted doors) ---

class DoorOpened(EventData):
    """``door.opened``: within an unlock window (``authorised``), or at a door without a
    reader (``authorised`` null, ``reader`` false)."""

    KIND = "door.opened"
    kind: Literal["door.opened"] = _kind(KIND)
    authorised: bool | None = None
    flagged: bool | None = None
    reader: bool | None = None


class DoorClosed(EventData):
    """``door.closed``: how long the door was open (null: the opening was not seen)."""

    KIND = "door.closed"
    kind: Literal["door.closed"] = _kind(KIND)
    authorised: bool | None = None
    open_s: Number | None = None
    opened_at: Time | None = None


class DoorForced(EventData):
    """``door.forced``: a cabinet door opened without an unlock window."""

    KIND = "door.forced"
    kind: Literal["door.forced"] = _kind(KIND)


class DoorIntrusion(EventData):
    """``door.intrusion``: a restricted door opened with nobody badged in."""

    KIND = "door.intrusion"
    kind: Literal["door.intrusion"] = _kind(KIND)
    authorised: bool | None = None


class DoorHeldOpen(EventData):
    """``door.held_open``: open for ``open_s``, past the station's ``limit_s``."""

    KIND = "door.held_open"
    kind: Literal["door.held_open"] = _kind(KIND)
    open_s: Number | None = None
    limit_s: Number | None = None
    authorised: bool | None = None


class KeyUsed(EventData):
    """``key.used``: one use of a key cabinet, from the tap to the door closing."""

    KIND = "key.used"
    kind: Literal["key.used"] = _kind(KIND)
    unlocked_at: Time | None = None
    opened_at: Time | None = None
    closed_at: Time | None = None
    duration_s: Number | None = None
    flagged: bool = False
    reason: str = ""


class UnlockExpired(EventData):
    """``unlock.expired``: an unlock window ended with the door never opened."""

    KIND = "unlock.expired"
    kind: Literal["unlock.expired"] = _kind(KIND)
    unlock_s: Number | None = None
    unlocked_at: Time | None = None
    flagged: bool = False


class UnlockEnded(EventData):
    """``unlock.ended``: another person's tap took the unlock window over (``superseded``)."""

    KIND = "unlock.ended"
    kind: Literal["unlock.ended"] = _kind(KIND)
    reason: str = ""
    unlocked_at: Time | None = None
    unlock_s: Number | None = None
    by_badge: str | None = None
    by_person: str | None = None
    flagged: bool = False


class KeyPurpose(EventData):
    """``key.purpose``: a purpose button pressed at the cabinet after a use: the work the key was
    for (作業内容, a code of the site's list), naming the use by its ``unlocked_at``."""

    KIND = "key.purpose"
    kind: Literal["key.purpose"] = _kind(KIND)
    purpose: str = ""
    unlocked_at: Time | None = None


# --- shredders ---

class ShredWaiting(EventData):
    """``shred.waiting``: the first person waits ``window_s`` for a second."""

    KIND = "shred.waiting"
    kind: Literal["shred.waiting"] = _kind(KIND)
    window_s: Number | None = None


class ShredRefused(EventData):
    """``shred.refused``: the pair could not start the shredder (``reason``)."""

    KIND = "shred.refused"
    kind: Literal["shred.refused"] = _kind(KIND)
    reason: str = ""
    first_badge: str | None = None
    first_person: str | None = None
    window_s: Number | None = None


class ShredStarted(EventData):
    """``shred.started``: two different authorised people switched the power on."""

    KIND = "shred.started"
    kind: Literal["shred.started"] = _kind(KIND)
    people: list[str | None] = Field(default_factory=list)
    badges: list[str | None] = Field(default_factory=list)
    flagged: list[bool] = Field(default_factory=list)
    max_s: Number | None = None
    paired_s: Number | None = None


class ShredEnded(EventData):
    """``shred.ended``: a session ended (``ended_by``: tap, stop_button, max_length, bin_opened)."""

    KIND = "shred.ended"
    kind: Literal["shred.ended"] = _kind(KIND)
    people: list[str | None] = Field(default_factory=list)
    badges: list[str | None] = Field(default_factory=list)
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
    kind: Literal["bin.opened"] = _kind(KIND)
    during_session: bool | None = None


class BinClosed(EventData):
    """``bin.closed``: the shredder's bin door closed."""

    KIND = "bin.closed"
    kind: Literal["bin.closed"] = _kind(KIND)


# --- printers ---

class PrintJob(BaseModel):
    """A print job as events list it (``user``: its owner, in ``print.expired``)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, defer_build=True)

    id: int | None = None
    title: str = ""
    pages: int | None = None
    user: str | None = None


class PrintedJob(BaseModel):
    """A released job CUPS has finished (``state``: completed, canceled, aborted)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, defer_build=True)

    id: int | None = None
    state: str | None = None
    pages: int | None = None


class PrintReleased(EventData):
    """``print.released``: a tap released ``user``'s held jobs."""

    KIND = "print.released"
    kind: Literal["print.released"] = _kind(KIND)
    user: str | None = None
    jobs: list[PrintJob] = Field(default_factory=list)
    count: int | None = None
    not_released: list[PrintJob] = Field(default_factory=list)


class PrintReleaseFailed(EventData):
    """``print.release_failed``: a tap released nothing (no_jobs, no_print_user, cups_down, ...)."""

    KIND = "print.release_failed"
    kind: Literal["print.release_failed"] = _kind(KIND)
    user: str | None = None
    reason: str = ""
    still_held: int | None = None


class PrintPrinted(EventData):
    """``print.printed``: released jobs CUPS has printed, with the pages it counted."""

    KIND = "print.printed"
    kind: Literal["print.printed"] = _kind(KIND)
    jobs: list[PrintedJob] = Field(default_factory=list)
    count: int | None = None


class PrintQueue(EventData):
    """``print.queue``: the holding queue looked at: ``held`` jobs, the oldest ``oldest_s`` old."""

    KIND = "print.queue"
    kind: Literal["print.queue"] = _kind(KIND)
    held: int | None = None
    oldest_s: Number | None = None


class PrintExpired(EventData):
    """``print.expired``: held jobs cancelled unprinted after ``limit_s``."""

    KIND = "print.expired"
    kind: Literal["print.expired"] = _kind(KIND)
    jobs: list[PrintJob] = Field(default_factory=list)
    count: int | None = None
    limit_s: Number | None = None


class CupsDown(EventData):
    """``cups.down``: the print server cannot be reached."""

    KIND = "cups.down"
    kind: Literal["cups.down"] = _kind(KIND)
    reason: str = ""


class CupsUp(EventData):
    """``cups.up``: the print server can be reached again."""

    KIND = "cups.up"
    kind: Literal["cups.up"] = _kind(KIND)


class TrayUncollected(EventData):
    """``tray.uncollected``: printouts lay in the tray ``minutes`` (since ``since``)."""

    KIND = "tray.uncollected"
    kind: Literal["tray.uncollected"] = _kind(KIND)
    minutes: Number | None = None
    since: Time | None = None
    limit_s: Number | None = None


class TrayCollected(EventData):
    """``tray.collected``: the tray is empty again, after ``lay_s``."""

    KIND = "tray.collected"
    kind: Literal["tray.collected"] = _kind(KIND)
    lay_s: Number | None = None
    after_alert: bool | None = None


# --- annunciators ---

class AnnunciatorSilenced(EventData):
    """``annunciator.silenced``: the silence button stopped the buzzer for the open critical
    ``alerts`` (ids; the lamp stays lit, the alerts stay open: silencing is no acknowledgement)."""

    KIND = "annunciator.silenced"
    kind: Literal["annunciator.silenced"] = _kind(KIND)
    alerts: list[int] | None = None
    count: int | None = None


# --- roll-call units ---

class RollcallTap(EventData):
    """``rollcall.tap``: a badge tapped at a roll-call unit (recorded, never unlocking
    anything); ``session`` is the session its policy had open (None: none), ``answer`` what the
    unit showed (present, late, unexpected, no_session). The hub decides what the tap counts
    as from its time and the session's window, not from ``answer``."""

    KIND = "rollcall.tap"
    kind: Literal["rollcall.tap"] = _kind(KIND)
    session: int | None = None
    answer: str | None = None


KindData = Annotated[
    Union[
        StationStarted, StorageCorrupt, StorageFailed, SnapshotFailed, PolicyRejected,
        BadgeGranted, BadgeDenied,
        DoorOpened, DoorClosed, DoorForced, DoorIntrusion, DoorHeldOpen, KeyUsed, UnlockExpired, UnlockEnded,
        KeyPurpose,
        ShredWaiting, ShredRefused, ShredStarted, ShredEnded, BinOpened, BinClosed,
        PrintReleased, PrintReleaseFailed, PrintPrinted, PrintQueue, PrintExpired, CupsDown, CupsUp,
        TrayUncollected, TrayCollected,
        AnnunciatorSilenced,
        RollcallTap,
    ],
    Field(discriminator="kind"),
]
"""Every known kind's model, discriminated on ``kind``."""

# Built at its first use (a station never uses it; see kagiban.protocol._Strict on defer_build).
KIND_DATA: TypeAdapter[Any] = TypeAdapter(KindData, config=ConfigDict(defer_build=True))
# kind -> its model, from the union (one place: a new kind is one class and one line above).
MODELS: dict[str, type[EventData]] = {m.KIND: m for m in KindData.__origin__.__args__}  # type: ignore[attr-defined]

# How often read() leaves out what did not fit before it gives up on a kind's fields.
_SALVAGE_ROUNDS = 8


D = TypeVar("D", bound="EventData")


def read(kind: str, data: Any) -> EventData:
    """The typed ``data`` of an event of ``kind``: never raises.

    A kind not in MODELS gives an OtherEvent with the data as they are. Values that do not fit
    the kind's model are left out (each such field keeps its default) and logged at debug level;
    ``data`` that is not an object reads as empty.
    """
    model = MODELS.get(kind)
    if model is None:
        return _salvage(OtherEvent, kind, {**(data if isinstance(data, dict) else {}), "kind": kind})
    return read_as(model, data)


def read_as(model: type[D], data: Any) -> D:
    """``data`` read as ``model`` (a kind's model), the way :func:`read` reads it."""
    if not isinstance(data, dict):
        data = {}
    return _salvage(model, model.KIND, {k: v for k, v in data.items() if k != "kind"})


def _salvage(model: type[D], kind: str, candidate: dict[str, Any]) -> D:
    for _ in range(_SALVAGE_ROUNDS):
        try:
            return model.model_validate(candidate)
        except ValidationError as exc:
            _LOG.debug("event %s: data do not fit its model (%s); reading the rest", kind, exc.errors()[0]["loc"])
            candidate = _without(candidate, [err["loc"] for err in exc.errors()])
    # Still not: the kind's own fields keep their defaults; the unknown keys are kept.
    keep = {k: v for k, v in candidate.items() if k not in model.model_fields}
    return model.model_validate({**keep, "kind": kind} if model is OtherEvent else keep)


def _without(data: dict[str, Any], locations: list[tuple]) -> dict[str, Any]:
    """A copy of ``data`` without the values at ``locations`` (pydantic error locations): the
    deepest value each location reaches is dropped from its object or list."""
    out = _copy(data)
    drops: list[tuple[Any, Any]] = []
    for loc in locations:
        parent: Any = None
        key: Any = None
        node: Any = out
        for step in loc:
            if isinstance(node, dict) and isinstance(step, str) and step in node:
                parent, key, node = node, step, node[step]
            elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
                parent, key, node = node, step, node[step]
            else:
                break
        if parent is not None and (id(parent), key) not in {(id(p), k) for p, k in drops}:
            drops.append((parent, key))
    # Lists lose their items from the back, so the indexes of the others stay right.
    for parent, key in sorted(drops, key=lambda d: d[1] if isinstance(d[1], int) else -1, reverse=True):
        if isinstance(parent, dict):
            parent.pop(key, None)
        else:
            parent[key] = _DROP
    return _prune(out)


_DROP = object()


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_prune(v) for v in value if v is not _DROP]
    return value
