"""The station's side of wire protocol v1: the messages it sends and receives, without pydantic.

kagiban.protocol holds the hub's strict reading of every message (pydantic models); a station
that loaded pydantic for them would spend about 18 MiB on it (docs/performance.md, issue 17). So
the station keeps its own twins here, as ``msgspec.Struct`` types: the same field names, types,
defaults and order as the hub's models (tests/device/test_wire.py compares them field by field),
so what :func:`dumps` makes is the bytes ``kagiban.protocol.dumps`` makes of the same values,
and :func:`parse_hub_message` refuses what ``kagiban.protocol.parse_hub_message`` refuses, with
the same reason codes.

Building a Struct checks nothing (msgspec validates when it decodes): :func:`dumps` therefore
reads its own bytes back with the type's constraints, so an event the hub would refuse by its
schema is never committed to the outbox (as pydantic refused it when it was built).
"""
from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta

from kagiban.hours import in_hours
from kagiban.wire import (
    CLOCK_UNSYNCED,
    ERROR_CODE_PATTERN,
    HHMM_PATTERN,
    ID_PATTERN,
    INCARNATION_PATTERN,
    KEY_ID_PATTERN,
    KIND_PATTERN,
    MAX_ACK_SPAN,
    MAX_ALARM_IDS,
    MAX_HEALTH_DETAIL,
    MAX_ROLLCALL_EXPECTED,
    MAX_SEQ,
    SIGNATURE_PATTERN,
    UUID_PATTERN,
    VERSION,
    DecisionKind,
    Peripheral,
    PeripheralState,
    ProtocolError,
    RollCallAnswer,
    SignalState,
    StationKind,
    Weekday,
    check_instant,
    decide_entry,
    strict_json,
)

# A JSON integer equal to VERSION (1): msgspec takes neither 1.0 nor true nor "1" for it.
Version = Literal[1]
# An aware time (ISO 8601 with an offset); its offset's range is checked when received.
Instant = Annotated[datetime, Meta(tz=True)]
Id = Annotated[str, Meta(pattern=ID_PATTERN)]
EventId = Annotated[str, Meta(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")]
Uuid = Annotated[str, Meta(pattern=UUID_PATTERN)]
Kind = Annotated[str, Meta(pattern=KIND_PATTERN, max_length=64)]
Incarnation = Annotated[str, Meta(pattern=INCARNATION_PATTERN)]
KeyId = Annotated[str, Meta(pattern=KEY_ID_PATTERN)]
Signature = Annotated[str, Meta(pattern=SIGNATURE_PATTERN)]
ErrorCode = Annotated[str, Meta(pattern=ERROR_CODE_PATTERN)]
Detail = Annotated[str, Meta(max_length=MAX_HEALTH_DETAIL)]
Nonce = Annotated[str, Meta(pattern=r"^[0-9a-f]{32}$")]
HhMm = Annotated[str, Meta(pattern=HHMM_PATTERN)]

S = TypeVar("S", bound=msgspec.Struct)


class Message(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A wire message (kagiban.protocol._Strict's twin): unknown keys refused, immutable."""

    # Optional fields added by a revision of v1: left out of the JSON when None (dumps()), so
    # a peer that predates them (its models forbid unknown fields) still reads the message.
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset()


# ---- what a station sends -------------------------------------------------------------------


class Event(Message, kw_only=True, frozen=True):
    """One audit event, as committed to the outbox (kagiban.protocol.Event)."""

    OMIT_IF_NONE = frozenset({"incarnation", "key_id", "sig"})

    v: Version = 1
    id: EventId
    seq: Annotated[int, Meta(ge=1, le=MAX_SEQ)]
    site: Id
    station: Id
    kind: Kind
    at: Instant
    badge: Annotated[str, Meta(pattern=r"^[0-9A-F]{8,32}$")] | None = None
    person: Annotated[str, Meta(max_length=64)] | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    incarnation: Incarnation | None = None
    key_id: KeyId | None = None
    sig: Signature | None = None

    def __post_init__(self) -> None:
        # Revision 3: present only on events made while the station's clock was unsynchronised.
        if CLOCK_UNSYNCED in self.data and self.data[CLOCK_UNSYNCED] is not True:
            raise ValueError(f"data.{CLOCK_UNSYNCED} is true when present")


class Snapshot(Message, kw_only=True, frozen=True):
    """A camera frame taken for an event, base64 (kagiban.protocol.Snapshot)."""

    OMIT_IF_NONE = frozenset({"clock_unsynced", "key_id", "sig"})

    v: Version = 1
    event_id: Uuid
    site: Id
    station: Id
    taken_at: Instant
    content_type: Literal["image/jpeg"] = "image/jpeg"
    image: str  # base64
    clock_unsynced: Literal[True] | None = None
    key_id: KeyId | None = None
    sig: Signature | None = None

    def image_bytes(self) -> bytes:
        """The decoded image; ProtocolError if it is not base64 or not a JPEG."""
        try:
            raw = base64.b64decode(self.image, validate=True)
        except ValueError as exc:
            raise ProtocolError("bad_image", str(exc)) from exc
        if not raw.startswith(b"\xff\xd8"):
            raise ProtocolError("bad_image", "not a JPEG")
        return raw


class Status(Message, kw_only=True, frozen=True):
    """Retained online/offline/stopped state (kagiban.protocol.Status)."""

    v: Version = 1
    site: Id
    station: Id
    state: Literal["online", "offline", "stopped"]
    at: Instant | None = None
    kind: StationKind | None = None


class PeripheralHealth(Message, kw_only=True, frozen=True):
    """How one peripheral is doing (kagiban.protocol.PeripheralHealth)."""

    state: PeripheralState
    error: ErrorCode | None = None
    detail: Detail | None = None
    since: Instant


class Heartbeat(Message, kw_only=True, frozen=True):
    """Periodic liveness and health figures (kagiban.protocol.Heartbeat)."""

    OMIT_IF_NONE = frozenset({"incarnation", "clock_synced", "policy_expired", "policy_refused", "signal"})

    v: Version = 1
    site: Id
    station: Id
    kind: StationKind
    at: Instant
    uptime_s: Annotated[float, Meta(ge=0)]
    next_seq: Annotated[int, Meta(ge=1)]
    outbox_depth: Annotated[int, Meta(ge=0)]
    outbox_capacity: Annotated[int, Meta(ge=1)]
    policy_version: int | None = None
    door: Literal["open", "closed", "unknown"] = "unknown"
    locked: bool | None = None
    unrecorded: Annotated[int, Meta(ge=0)] = 0
    storage_error: Annotated[str, Meta(max_length=300)] | None = None
    incarnation: Incarnation | None = None
    peripherals: dict[Peripheral, PeripheralHealth] | None = None
    clock_synced: bool | None = None
    policy_expired: bool | None = None
    policy_refused: ErrorCode | None = None
    signal: SignalState | None = None


class SnapshotFailed(Message, kw_only=True, frozen=True):
    """``data`` of a ``snapshot.failed`` event (kagiban.protocol.SnapshotFailed); the agent adds
    policy_version and offline when it records it, so the hub's model allows more keys."""

    event_id: Uuid
    for_kind: Kind
    error: ErrorCode
    detail: Detail | None = None


class StorageCorrupt(msgspec.Struct, kw_only=True, frozen=True):
    """``data`` of a ``storage.corrupt`` event (kagiban.protocol.StorageCorrupt): unknown keys
    ignored when read back, as the agent adds ``policy_version`` and ``offline``."""

    store: Literal["outbox", "policy"]
    moved_to: list[str] = msgspec.field(default_factory=list)
    error: Annotated[str, Meta(max_length=300)]
    previous_incarnation: str | None = None
    previous_next_seq: int | None = None
    previous_highest_seq: int | None = None
    previous_unsent: int | None = None


# ---- what a station receives ----------------------------------------------------------------


class Ack(Message, kw_only=True, frozen=True):
    """The hub has committed these seqs (inclusive ranges) and snapshots (kagiban.protocol.Ack)."""

    OMIT_IF_NONE = frozenset({"incarnation"})

    v: Version = 1
    station: Id
    seqs: list[tuple[int, int]] = msgspec.field(default_factory=list)
    snapshots: list[str] = msgspec.field(default_factory=list)
    incarnation: Incarnation | None = None

    def __post_init__(self) -> None:
        total = 0
        for lo, hi in self.seqs:
            if not 1 <= lo <= hi <= MAX_SEQ:
                raise ValueError(f"bad range [{lo}, {hi}]")
            total += hi - lo + 1
        if total > MAX_ACK_SPAN:
            raise ValueError(f"ack covers {total} seqs, more than {MAX_ACK_SPAN}")

    def seq_set(self) -> set[int]:
        """Every acknowledged sequence number."""
        out: set[int] = set()
        for lo, hi in self.seqs:
            out.update(range(lo, hi + 1))
        return out


_WORKWEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


class PolicyEntry(Message, kw_only=True, frozen=True):
    """What a station does when this badge is tapped (kagiban.protocol.PolicyEntry; its
    docstring lists the reasons)."""

    person: str | None = None
    name: str | None = None
    decision: DecisionKind
    reason: str = ""
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    expiry_reason: str = "expired"
    after_hours: Literal["allow", "flag", "deny"] = "deny"
    print_user: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class Hours(Message, kw_only=True, frozen=True):
    """Business hours of a policy (kagiban.protocol.Hours)."""

    days: list[Weekday] = msgspec.field(default_factory=lambda: list(_WORKWEEK))
    start: HhMm = "08:30"
    end: HhMm = "17:15"


def _deny_like(entry: PolicyEntry, decision: DecisionKind, reason: str) -> PolicyEntry:
    return msgspec.structs.replace(entry, decision=decision, reason=reason)


class RollCall(Message, kw_only=True, frozen=True):
    """The roll-call session open at a station (kagiban.protocol.RollCall)."""

    session: Annotated[int, Meta(ge=1)]
    title: Annotated[str, Meta(max_length=128)] = ""
    opens_at: Instant
    late_after: Instant
    expected: Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]],
                        Meta(max_length=MAX_ROLLCALL_EXPECTED)] = msgspec.field(default_factory=list)

    def answer(self, person: str | None, at: datetime) -> RollCallAnswer:
        """What a tap by ``person`` (a staff number; None: a badge nobody holds) at ``at`` is."""
        if at < self.opens_at:
            return "no_session"
        if person is None or person not in self.expected:
            return "unexpected"
        return "present" if at <= self.late_after else "late"


class Policy(Message, kw_only=True, frozen=True):
    """Per-station access policy (kagiban.protocol.Policy), read after its signature checked."""

    v: Version = 1
    version: Annotated[int, Meta(ge=1)]
    issued_at: Instant
    site: Id
    station: Id
    time_zone: str = "Asia/Tokyo"
    hours: Hours | None = None
    holidays: list[date] = msgspec.field(default_factory=list)
    badges: dict[str, PolicyEntry] = msgspec.field(default_factory=dict)
    expires_at: Instant | None = None
    rollcall: RollCall | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.time_zone!r}") from exc

    def zone(self) -> ZoneInfo:
        """The zone hours and holidays are judged in."""
        return ZoneInfo(self.time_zone)

    def in_hours(self, now: datetime) -> bool:
        """True if ``now`` (aware) is business time under this policy."""
        if self.hours is None:
            return True
        return in_hours(now, self.hours, self.holidays, self.zone())

    def decide(self, badge: str, now: datetime) -> PolicyEntry:
        """The effective entry for ``badge`` at ``now`` (aware); an unknown badge is denied
        (kagiban.wire.decide_entry, the hub's rule too)."""
        return decide_entry(self.badges.get(badge), now, self.in_hours,
                            lambda: PolicyEntry(decision="deny", reason="unknown"), _deny_like)


class SignedPolicy(Message, kw_only=True, frozen=True):
    """The policy envelope (kagiban.protocol.SignedPolicy); kagiban.signing checks it by hand,
    on the raw object, before the policy is read."""

    v: Version = 1
    policy: Policy
    key_id: KeyId
    signature: Annotated[str, Meta(min_length=1)]


# Tagged: ``type`` is written first, as the hub's models (whose first field it is) write it.
class PolicyKeyChange(Message, kw_only=True, frozen=True, tag_field="type", tag="key_change"):
    """A new policy key, announced under the one held now (kagiban.protocol.PolicyKeyChange)."""

    site: Id
    station: Id
    new_key: Annotated[str, Meta(min_length=40, max_length=60)]
    issued_at: Instant
    nonce: Nonce

    @property
    def type(self) -> Literal["key_change"]:
        return "key_change"


class PolicyReset(Message, kw_only=True, frozen=True, tag_field="type", tag="policy_reset"):
    """Take the next valid policy whatever version is held (kagiban.protocol.PolicyReset)."""

    site: Id
    station: Id
    issued_at: Instant
    nonce: Nonce

    @property
    def type(self) -> Literal["policy_reset"]:
        return "policy_reset"


class SignedControl(Message, kw_only=True, frozen=True):
    """The policy-control envelope (kagiban.protocol.SignedControl)."""

    v: Version = 1
    control: Union[PolicyKeyChange, PolicyReset]
    key_id: KeyId
    signature: Annotated[str, Meta(min_length=1)]


class SiteAlarm(Message, kw_only=True, frozen=True):
    """The site's open critical alerts, retained (kagiban.protocol.SiteAlarm)."""

    v: Version = 1
    site: Id
    at: Instant
    count: Annotated[int, Meta(ge=0)]
    alerts: Annotated[list[Annotated[int, Meta(ge=1)]], Meta(max_length=MAX_ALARM_IDS)] = msgspec.field(
        default_factory=list)

    def __post_init__(self) -> None:
        if self.count < len(self.alerts):
            raise ValueError("count is less than the alerts listed")


# ---- encoding and decoding ------------------------------------------------------------------

_ENCODER = msgspec.json.Encoder()
_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


def _decoder(kind: type[S]) -> msgspec.json.Decoder[S]:
    found = _DECODERS.get(kind)
    if found is None:
        found = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return found


def dumps(message: msgspec.Struct) -> bytes:
    """Compact JSON bytes of a message (``null`` fields included, except the revision fields
    its type names in OMIT_IF_NONE), as kagiban.protocol.dumps writes them; ValueError if the
    message breaks its type's constraints (a pattern, a bound, an aware time)."""
    omit = [name for name in getattr(message, "OMIT_IF_NONE", ()) if getattr(message, name) is None]
    if omit:
        fields = msgspec.structs.asdict(message)
        for name in omit:
            del fields[name]
        payload = _ENCODER.encode(fields)
    else:
        payload = _ENCODER.encode(message)
    try:
        _decoder(type(message)).decode(payload)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{type(message).__name__}: {exc}") from None
    return payload


def loads(kind: type[S], payload: bytes) -> S:
    """A stored message of ours read back (the outbox's own payloads); msgspec.ValidationError
    (a ValueError) if it does not fit ``kind``."""
    return _decoder(kind).decode(payload)


def to_data(message: msgspec.Struct) -> dict[str, Any]:
    """A message's fields as JSON-ready values, None fields left out (event data)."""
    return {k: v for k, v in msgspec.to_builtins(message).items() if v is not None}


def parse_hub_message(kind: type[S], payload: bytes, limit: int = 1024 * 1024) -> S:
    """Validate an ack, site alarm or control message a station received, as
    kagiban.protocol.parse_hub_message does; ProtocolError with reason oversized, bad_json,
    duplicate_key, bad_number, bad_schema, bad_version, bad_offset or bad_time."""
    if len(payload) > limit:
        raise ProtocolError("oversized", f"{len(payload)} bytes > {limit}")
    # The standard library's reading first: msgspec keeps the last of two equal keys and cannot
    # tell a NaN from broken JSON. A hub message is small, so reading it twice costs little.
    raw = strict_json(payload)
    if not isinstance(raw, dict):
        raise ProtocolError("bad_schema", "payload is not a JSON object")
    version = raw.get("v")
    if type(version) is not int or version != VERSION:
        raise ProtocolError("bad_version", f"v={version!r}")
    try:
        message = _decoder(kind).decode(payload)
    except msgspec.ValidationError as exc:
        raise ProtocolError("bad_schema", str(exc)[:200]) from None
    except msgspec.DecodeError as exc:  # JSON json.loads took (a lone surrogate, say)
        raise ProtocolError("bad_json", str(exc)[:200]) from None
    _check_times(message)
    return message


def _check_times(value: Any) -> None:
    """check_instant on every time in a decoded message (bad_offset, bad_time)."""
    items: Iterable[Any]
    if isinstance(value, msgspec.Struct):
        items = (getattr(value, name) for name in value.__struct_fields__)
    elif isinstance(value, dict):
        items = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return
    for item in items:
        if type(item) is datetime:
            check_instant(item)
        elif isinstance(item, (msgspec.Struct, dict, list, tuple)):
            _check_times(item)


def read_policy(message: bytes) -> Policy:
    """The Policy in a policy object's JSON (kagiban.signing.Verifier's reader on a station);
    msgspec.ValidationError or DecodeError (ValueErrors) if it is not one."""
    return _decoder(Policy).decode(message)


CONTROLS: dict[str, type[PolicyKeyChange] | type[PolicyReset]] = {
    "key_change": PolicyKeyChange, "policy_reset": PolicyReset}


def read_control(kind: str, message: bytes) -> PolicyKeyChange | PolicyReset:
    """The key change or reset in a control object's JSON (kagiban.signing.check_control's
    reader on a station); KeyError for a type it does not know, ValueError if not that type's
    form."""
    return _decoder(CONTROLS[kind]).decode(message)
