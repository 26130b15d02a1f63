"""Wire protocol v1 between stations and the hub: topics, payloads, limits.

Both sides import this module and nothing else of each other. Every payload is JSON
with a protocol version ``v``; docs/protocol.md describes the same in prose.

Topic tree (``prefix`` is configurable, ``kagiban`` by default)::

    {prefix}/{site}/{station}/event       station -> hub   QoS 1  one audit event
    {prefix}/{site}/{station}/snapshot    station -> hub   QoS 1  a JPEG linked to an event id
    {prefix}/{site}/{station}/status      station -> all   QoS 1  retained online/offline (last will)/stopped
    {prefix}/{site}/{station}/heartbeat   station -> hub   QoS 0  every N seconds
    {prefix}/{site}/{station}/ack         hub -> station   QoS 1  what the hub has committed
    {prefix}/{site}/{station}/policy      hub -> station   QoS 1  retained signed access policy
    {prefix}/{site}/{station}/alert       hub -> all       QoS 1  alerts raised by the hub's rules
    {prefix}/{site}/alarm                 hub -> site      QoS 1  retained open critical alerts (SiteAlarm)

A broker ACL can therefore confine a station (username = station id) to
``{prefix}/+/<station>/#`` with write access only to event, snapshot, status and heartbeat.
"""
from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from datetime import date, datetime
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from kagiban.hours import in_hours
# The names both sides share (kagiban.wire), re-exported: the hub imports them from here.
from kagiban.wire import (
    VERSION as VERSION,
    REVISION as REVISION,
    DEFAULT_PREFIX as DEFAULT_PREFIX,
    STATION_CHANNELS as STATION_CHANNELS,
    HUB_CHANNELS as HUB_CHANNELS,
    CHANNELS as CHANNELS,
    MAX_EVENT_BYTES as MAX_EVENT_BYTES,
    MAX_SNAPSHOT_BYTES as MAX_SNAPSHOT_BYTES,
    MAX_HEARTBEAT_BYTES as MAX_HEARTBEAT_BYTES,
    MAX_STATUS_BYTES as MAX_STATUS_BYTES,
    MAX_ALARM_BYTES as MAX_ALARM_BYTES,
    ID_PATTERN as ID_PATTERN,
    UUID_PATTERN as UUID_PATTERN,
    MAX_SEQ as MAX_SEQ,
    MAX_ACK_SPAN as MAX_ACK_SPAN,
    KIND_PATTERN as KIND_PATTERN,
    INCARNATION_PATTERN as INCARNATION_PATTERN,
    KEY_ID_PATTERN as KEY_ID_PATTERN,
    SIGNATURE_PATTERN as SIGNATURE_PATTERN,
    StationKind as StationKind,
    ProtocolError as ProtocolError,
    check_id as check_id,
    topic as topic,
    alarm_topic as alarm_topic,
    subscription as subscription,
    parse_topic as parse_topic,
    MAX_UTC_OFFSET as MAX_UTC_OFFSET,
    check_instant as check_instant,
    decide_entry,
    strict_json,
    CLOCK_UNSYNCED as CLOCK_UNSYNCED,
    Peripheral as Peripheral,
    PeripheralState as PeripheralState,
    MAX_HEALTH_DETAIL as MAX_HEALTH_DETAIL,
    ERROR_CODE_PATTERN as ERROR_CODE_PATTERN,
    SignalState as SignalState,
    STORAGE_CORRUPT as STORAGE_CORRUPT,
    DecisionKind as DecisionKind,
    Weekday as Weekday,
    HHMM_PATTERN as HHMM_PATTERN,
    MAX_ROLLCALL_EXPECTED as MAX_ROLLCALL_EXPECTED,
    RollCallAnswer as RollCallAnswer,
    canonical_json as canonical_json,
    MAX_ALARM_IDS as MAX_ALARM_IDS,
    ranges as ranges,
    now_local as now_local,
)

M = TypeVar("M", bound=BaseModel)



def _supported_version(value: int) -> int:
    if value != VERSION:
        raise ValueError(f"protocol version {VERSION} only")
    return value


# A JSON integer equal to VERSION: not 1.0, not true, not "1" (strict Literal[1] takes 1.0 and
# true, since they compare equal to 1), so one parse can tell a bad version from a bad payload.
Version = Annotated[int, Strict(), AfterValidator(_supported_version)]

# Checked by the walk over every parsed payload (_walk): a validator per field costs several
# microseconds an event in pydantic, the walk well under one.
Instant = AwareDatetime


class _Strict(BaseModel):
    # defer_build: a model's validator and serializer are made at its first use, not at import.
    # A station uses a handful of these messages (its own, the ack, the policy, the site alarm);
    # building all of them cost it about 5 MiB and a tenth of a second at start
    # (docs/performance.md, "Station footprint"). Subclasses inherit it.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    # Optional fields added by a revision of v1: left out of the JSON when None (dumps()), so
    # a peer that predates them (its models forbid unknown fields) still reads the message.
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset()




class Event(_Strict):
    """One audit event, as committed to the station's outbox and stored by the hub.

    ``incarnation`` names the outbox the event was committed to (made when the outbox was
    created): ``seq`` counts within it, so a station whose storage was replaced starts again at
    1 under a new incarnation. None: an outbox made before incarnations existed.

    ``key_id`` and ``sig``: the station's signature over the payload's bytes without them; they
    are always its last two members (kagiban.event_signing). None: an unenrolled station.
    """

    OMIT_IF_NONE = frozenset({"incarnation", "key_id", "sig"})

    v: Version = VERSION
    id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    seq: int = Field(ge=1, le=MAX_SEQ)
    site: str = Field(pattern=ID_PATTERN)
    station: str = Field(pattern=ID_PATTERN)
    kind: str = Field(pattern=KIND_PATTERN, max_length=64)
    at: Instant
    badge: str | None = Field(default=None, pattern=r"^[0-9A-F]{8,32}$")
    person: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)
    incarnation: str | None = Field(default=None, pattern=INCARNATION_PATTERN)
    key_id: str | None = Field(default=None, pattern=KEY_ID_PATTERN)
    sig: str | None = Field(default=None, pattern=SIGNATURE_PATTERN)

    @field_validator("data")
    @classmethod
    def _clock_flag(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Revision 3: present only on events made while the station's clock was unsynchronised.
        if CLOCK_UNSYNCED in value and value[CLOCK_UNSYNCED] is not True:
            raise ValueError(f"data.{CLOCK_UNSYNCED} is true when present")
        return value

    @property
    def clock_unsynced(self) -> bool:
        """Whether the station's clock was not synchronised when it made this event."""
        return self.data.get(CLOCK_UNSYNCED) is True


class Snapshot(_Strict):
    """A camera frame taken for an event; the image travels base64-encoded.

    ``key_id`` and ``sig``: the station's signature over
    ``kagiban.event_signing.snapshot_statement`` (event id, station, sha256 of the image).

    ``taken_at`` is the station's clock (device.clock), as its events' times are;
    ``clock_unsynced`` (revision 5) is true when that clock was not synchronised, and left out
    otherwise.
    """

    OMIT_IF_NONE = frozenset({"clock_unsynced", "key_id", "sig"})

    v: Version = VERSION
    event_id: str = Field(pattern=UUID_PATTERN)
    site: str = Field(pattern=ID_PATTERN)
    station: str = Field(pattern=ID_PATTERN)
    taken_at: Instant
    content_type: Literal["image/jpeg"] = "image/jpeg"
    image: str  # base64
    clock_unsynced: Literal[True] | None = None
    key_id: str | None = Field(default=None, pattern=KEY_ID_PATTERN)
    sig: str | None = Field(default=None, pattern=SIGNATURE_PATTERN)

    def image_bytes(self) -> bytes:
        """The decoded image; ProtocolError if it is not base64 or not a JPEG."""
        try:
            raw = base64.b64decode(self.image, validate=True)
        except ValueError as exc:
            raise ProtocolError("bad_image", str(exc)) from exc
        if not raw.startswith(b"\xff\xd8"):
            raise ProtocolError("bad_image", "not a JPEG")
        return raw


class Status(_Strict):
    """Retained online/offline state; the offline form is the last will. ``stopped``: the unit
    says so on a clean stop (shutdown, maintenance) before it disconnects, so the hub shows it
    stopped and raises no offline alert."""

    v: Version = VERSION
    site: str = Field(pattern=ID_PATTERN)
    station: str = Field(pattern=ID_PATTERN)
    state: Literal["online", "offline", "stopped"]
    at: Instant | None = None
    kind: StationKind | None = None




class PeripheralHealth(_Strict):
    """How one peripheral is doing: ``ok``; ``failed`` (there, but it errs or hangs); ``absent``
    (not found or unplugged). ``error`` is a code the hub's page translates (e.g. ``not_found``,
    ``capture_timeout``), ``detail`` the adapter's own words; ``since`` when this state began."""

    state: PeripheralState
    error: str | None = Field(default=None, pattern=ERROR_CODE_PATTERN)
    detail: str | None = Field(default=None, max_length=MAX_HEALTH_DETAIL)
    since: Instant




class Heartbeat(_Strict):
    """Periodic liveness and health figures from a station."""

    OMIT_IF_NONE = frozenset({"incarnation", "clock_synced", "policy_expired", "policy_refused", "signal"})

    v: Version = VERSION
    site: str = Field(pattern=ID_PATTERN)
    station: str = Field(pattern=ID_PATTERN)
    kind: StationKind
    at: Instant
    uptime_s: float = Field(ge=0)
    next_seq: int = Field(ge=1)
    outbox_depth: int = Field(ge=0)
    outbox_capacity: int = Field(ge=1)
    policy_version: int | None = None
    door: Literal["open", "closed", "unknown"] = "unknown"
    locked: bool | None = None
    # Events that happened but could not be written to the outbox (disk full), and why.
    unrecorded: int = Field(default=0, ge=0)
    storage_error: str | None = Field(default=None, max_length=300)
    # The incarnation of the outbox ``next_seq`` counts in (None: an outbox without one).
    incarnation: str | None = Field(default=None, pattern=INCARNATION_PATTERN)
    # Each configured peripheral's health; None from stations older than this field.
    peripherals: dict[Peripheral, PeripheralHealth] | None = None
    # Revision 3: whether the station's clock is synchronised (adjtimex: no TIME_ERROR, no
    # STA_UNSYNC); None: the station cannot tell, or predates the field.
    clock_synced: bool | None = None
    # Revision 6: the policy in force is past its expiry or older than the station allows
    # (device config policy.max_age_h); the station flags (or denies) every decision meanwhile.
    policy_expired: bool | None = None
    # Revision 6: why the last policy offered was refused (a reason code, e.g. version_ahead),
    # until a policy is accepted again.
    policy_refused: str | None = Field(default=None, pattern=ERROR_CODE_PATTERN)
    # Revision 7: an annunciator's lamp and buzzer (None: a station without them).
    signal: SignalState | None = None


class SnapshotFailed(_Strict):
    """``data`` of a ``snapshot.failed`` event: the photo an event asked for was not taken.

    ``event_id`` and ``for_kind`` name that event; ``error`` is a code (``camera_absent``,
    ``camera_failed``, ``capture_failed``, ``capture_timeout``, ``camera_hung``, ``bad_frame``),
    ``detail`` the camera's words.
    """

    model_config = ConfigDict(extra="allow", frozen=True)  # the agent adds policy_version, offline

    event_id: str = Field(pattern=UUID_PATTERN)
    for_kind: str = Field(pattern=KIND_PATTERN, max_length=64)
    error: str = Field(pattern=ERROR_CODE_PATTERN)
    detail: str | None = Field(default=None, max_length=MAX_HEALTH_DETAIL)


class Ack(_Strict):
    """The hub has committed these sequence numbers (inclusive ranges) and snapshots.

    ``seqs`` count in the outbox ``incarnation`` names (None: events that carried none); a
    station applies them only if that is its own outbox's, so an ack for seq 5 of a replaced
    outbox never deletes seq 5 of the new one. Snapshot ids are unique on their own.
    """

    OMIT_IF_NONE = frozenset({"incarnation"})

    # Snapshot ids are unique: pydantic-core's process-wide JSON string cache would keep each
    # one (up to 16,384, ~2 MiB) in a station that must stay under 60 MB. Keys are still cached.
    model_config = ConfigDict(cache_strings="keys")

    v: Version = VERSION
    station: str = Field(pattern=ID_PATTERN)
    seqs: list[tuple[int, int]] = Field(default_factory=list)
    snapshots: list[str] = Field(default_factory=list)
    incarnation: str | None = Field(default=None, pattern=INCARNATION_PATTERN)

    @model_validator(mode="after")
    def _sane_ranges(self) -> "Ack":
        total = 0
        for lo, hi in self.seqs:
            if not 1 <= lo <= hi <= MAX_SEQ:
                raise ValueError(f"bad range [{lo}, {hi}]")
            total += hi - lo + 1
        if total > MAX_ACK_SPAN:
            raise ValueError(f"ack covers {total} seqs, more than {MAX_ACK_SPAN}")
        return self

    def seq_set(self) -> set[int]:
        """Every acknowledged sequence number."""
        out: set[int] = set()
        for lo, hi in self.seqs:
            out.update(range(lo, hi + 1))
        return out


class StorageCorrupt(BaseModel):
    """``data`` of a ``storage.corrupt`` event: a store the station could not read at start was
    moved aside (kept, never deleted) and replaced by a fresh one.

    ``store`` is ``outbox`` (the event is then the first of a new incarnation) or ``policy``.
    ``moved_to`` are the names the damaged files were given, in the station's storage folder.
    The ``previous_*`` fields are what could still be read from the damaged outbox (None: not
    readable). Unknown keys are ignored when read back: the agent adds ``policy_version`` and
    ``offline`` to every event's data.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    store: Literal["outbox", "policy"]
    moved_to: list[str] = Field(default_factory=list)
    error: str = Field(max_length=300)
    previous_incarnation: str | None = None
    previous_next_seq: int | None = None
    previous_highest_seq: int | None = None
    # Events found in the damaged outbox that the hub had not acknowledged (readable ones).
    previous_unsent: int | None = None




_WORKWEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


class PolicyEntry(_Strict):
    """What a station does when this badge is tapped.

    ``decision``/``reason`` are what the hub decided for the badge; ``decide`` then applies the
    time rules at the moment of the tap: before ``valid_from`` the badge is denied
    ``not_yet_valid``; from ``valid_until`` on it is denied with ``expiry_reason``; outside the
    policy's hours ``after_hours`` says whether it is still allowed, flagged or denied.
    Reasons: allow: designated_holder, stand_in, allowed; allow_flag and deny: not_designated,
    untrained, training_expired, outside_hours, revoked, inactive, unknown, not_yet_valid,
    badge_expired, unconfirmed_procedure.
    """

    person: str | None = None
    name: str | None = None
    decision: DecisionKind
    reason: str = ""
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    expiry_reason: str = "expired"
    after_hours: Literal["allow", "flag", "deny"] = "deny"
    # Printers: the person's user name at the print server (CUPS job owner); None: ``person``.
    print_user: str | None = Field(default=None, min_length=1, max_length=64)


class Hours(_Strict):
    """Business hours of a policy: on these weekdays from start to end (local "HH:MM").

    ``end`` earlier than ``start`` runs past midnight; the part after midnight belongs to the
    previous day's window. ``start == end`` is a whole 24 hours from ``start``.
    """

    days: list[Weekday] = Field(default_factory=lambda: list(_WORKWEEK))
    start: str = Field(default="08:30", pattern=HHMM_PATTERN)
    end: str = Field(default="17:15", pattern=HHMM_PATTERN)


def _deny_like(entry: PolicyEntry, decision: DecisionKind, reason: str) -> PolicyEntry:
    return entry.model_copy(update={"decision": decision, "reason": reason})




class RollCall(_Strict):
    """The roll-call session open at a station (revision 8), in the station's signed policy.

    A tap from ``opens_at`` on checks the person in: ``present`` up to ``late_after``,
    ``late`` from then on; a person not in ``expected`` (staff numbers) is ``unexpected``. The
    session ends when a policy without it arrives; the hub, not the station, decides what each
    tap counts as (from the tap's time), so this only sets the unit's LED and buzzer.
    """

    session: int = Field(ge=1)
    title: str = Field(default="", max_length=128)
    opens_at: Instant
    late_after: Instant
    expected: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=MAX_ROLLCALL_EXPECTED)

    def answer(self, person: str | None, at: datetime) -> RollCallAnswer:
        """What a tap by ``person`` (a staff number; None: a badge nobody holds) at ``at`` is."""
        if at < self.opens_at:
            return "no_session"
        if person is None or person not in self.expected:
            return "unexpected"
        return "present" if at <= self.late_after else "late"


class Policy(_Strict):
    """Per-station access policy, published (signed) by the hub and cached on disk."""

    v: Version = VERSION
    version: int = Field(ge=1)
    issued_at: Instant
    site: str = Field(pattern=ID_PATTERN)
    station: str = Field(pattern=ID_PATTERN)
    time_zone: str = "Asia/Tokyo"
    # None: always business time (holidays then do not apply either).
    hours: Hours | None = None
    # Whole days outside hours (local dates in time_zone).
    holidays: list[date] = Field(default_factory=list)
    badges: dict[str, PolicyEntry] = Field(default_factory=dict)
    # Revision 6: from this instant on the station treats the policy as expired (flags or
    # denies every decision, as its config says). None: a policy from before expiry existed.
    expires_at: Instant | None = None
    # Revision 8: the roll-call session open at this station (a ``rollcall`` unit); None: none.
    rollcall: RollCall | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def zone(self) -> ZoneInfo:
        """The zone hours and holidays are judged in."""
        return ZoneInfo(self.time_zone)

    def in_hours(self, now: datetime) -> bool:
        """True if ``now`` (aware) is business time under this policy."""
        if self.hours is None:
            return True
        return in_hours(now, self.hours, self.holidays, self.zone())

    def decide(self, badge: str, now: datetime) -> PolicyEntry:
        """The effective entry for ``badge`` at ``now`` (aware); an unknown badge is denied.

        A stored ``deny`` stays as it is; otherwise valid_from, valid_until and then the hours
        may turn it into a deny (or, outside hours, an allow_flag): kagiban.wire.decide_entry,
        by which the station decides too.
        """
        return decide_entry(self.badges.get(badge), now, self.in_hours,
                            lambda: PolicyEntry(decision="deny", reason="unknown"), _deny_like)


class SignedPolicy(_Strict):
    """What travels retained on the policy topic and what the station keeps on disk.

    ``signature`` is the base64 Ed25519 signature over ``canonical_json`` of the ``policy``
    JSON object exactly as received (kagiban.signing verifies it on the raw object, before the
    object is read as a Policy); ``key_id`` names the signing key (see kagiban.signing.key_id).
    """

    v: Version = VERSION
    policy: Policy
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    signature: str = Field(min_length=1)


class PolicyKeyChange(_Strict):
    """A new policy key for one station, announced under the key it holds now.

    Signed (kagiban.signing.sign_control) with the *old* key; the station takes ``new_key``
    (base64 Ed25519 public key) only if the signature checks with the key it has pinned.
    """

    type: Literal["key_change"] = "key_change"
    site: str = Field(pattern=ID_PATTERN)
    station: str = Field(pattern=ID_PATTERN)
    new_key: str = Field(min_length=40, max_length=60)
    issued_at: Instant
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")


class PolicyReset(_Strict):
    """Lets one station take the next valid policy whatever version it holds (a station pinned
    by a wrong version). Signed with the current policy key; ``nonce`` and ``issued_at`` make a
    copy of it useless once taken."""

    type: Literal["policy_reset"] = "policy_reset"
    site: str = Field(pattern=ID_PATTERN)
    station: str = Field(pattern=ID_PATTERN)
    issued_at: Instant
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")


class SignedControl(_Strict):
    """What travels on the ``policy-control`` topic: a key change (retained) or a reset (once),
    signed over ``canonical_json(control)`` (kagiban.signing.sign_control)."""

    v: Version = VERSION
    control: Annotated[Union[PolicyKeyChange, PolicyReset], Field(discriminator="type")]
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    signature: str = Field(min_length=1)




class Alert(_Strict):
    """An alert raised by the hub's rules."""

    v: Version = VERSION
    id: int
    site: str = Field(pattern=ID_PATTERN)
    station: str = Field(pattern=ID_PATTERN)
    rule: str
    severity: Literal["info", "warning", "critical"] = "warning"
    at: Instant
    message: str
    event_id: str | None = None




class SiteAlarm(_Strict):
    """The hub's retained state of a site's open critical alerts, on ``alarm_topic``.

    Published whenever the set changes (a critical alert raised, acknowledged or closed) and
    when the hub starts; an annunciator lights while ``count`` > 0 and sounds for ids it has
    not been silenced for. ``alerts``: the newest ``MAX_ALARM_IDS`` ids, ascending.
    """

    v: Version = VERSION
    site: str = Field(pattern=ID_PATTERN)
    at: Instant
    count: int = Field(ge=0)
    alerts: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list, max_length=MAX_ALARM_IDS)

    @model_validator(mode="after")
    def _count_covers_ids(self) -> "SiteAlarm":
        if self.count < len(self.alerts):
            raise ValueError("count is less than the alerts listed")
        return self




def parse_hub_message(model: type[M], payload: bytes, limit: int = 1024 * 1024) -> M:
    """Validate an ack or policy a station received; ProtocolError says why it is refused."""
    if len(payload) > limit:
        raise ProtocolError("oversized", f"{len(payload)} bytes > {limit}")
    return _validate_json(model, payload)


def _validate_json(model: type[M], payload: bytes) -> M:
    """``payload`` parsed once, strictly, into ``model``; ProtocolError (bad_json, bad_version,
    bad_schema, bad_offset, bad_time, bad_number, duplicate_key) says why not. Strict: "1" is
    not a seq, true is not a number; ISO strings still parse as times."""
    parsed = _parse_model(model, payload)
    # One walk of what was parsed: NaN/Infinity refused, and its keys counted. Every key in the
    # bytes is a string followed by ':', so ``'":'`` occurs at least once per key (more only
    # inside strings); when that count equals the keys parsed, no key was repeated. Otherwise
    # (or with whitespace before a ':') the payload is parsed again to tell for sure.
    keys = _walk(parsed)
    if (payload.count(b'":') != keys or b'" ' in payload or b'"\n' in payload or b'"\t' in payload
            or b'"\r' in payload):
        # The slow, exact check: duplicate_key (or bad_json where pydantic read what the
        # standard library does not, lone surrogates).
        strict_json(payload)
    return parsed


def _walk(value: Any) -> int:
    """The number of object keys in a parsed payload (model fields given plus dict keys, at any
    depth); ProtocolError("bad_number") for a NaN or infinite number anywhere in it."""
    values: Iterable[Any]
    if type(value) is dict:
        count, values = len(value), value.values()
    elif isinstance(value, BaseModel):
        # Only the fields that can hold a float or a container are looked at (Event: data).
        fields = _open_fields(type(value))
        attrs = value.__dict__
        count, values = len(value.model_fields_set), [attrs[name] for name in fields]
    else:  # a list or tuple
        count, values = 0, value
    for item in values:
        kind = type(item)
        if kind in _LEAVES:
            continue
        if kind is datetime:
            check_instant(item)
        elif kind is float:
            if item - item != 0.0:  # NaN and +-Infinity only
                raise ProtocolError("bad_number", f"{item!r} is not a JSON number")
        elif kind is dict or kind is list or kind is tuple or isinstance(item, BaseModel):
            count += _walk(item)
    return count


_LEAVES = frozenset({str, int, bool, type(None)})
_SIMPLE_TYPES = (str, int, bool, type(None), datetime, date)
_OPEN_FIELDS: dict[type, tuple[str, ...]] = {}


def _simple(annotation: Any) -> bool:
    """Whether a field of this type holds only strings, integers, booleans, times or None."""
    if annotation in _SIMPLE_TYPES:
        return True
    origin = get_origin(annotation)
    if origin is Literal:
        return all(type(a) in (str, int, bool) for a in get_args(annotation))
    if origin is Annotated:
        return _simple(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return all(_simple(a) for a in get_args(annotation))
    return False


def _open_fields(model: type[BaseModel]) -> tuple[str, ...]:
    found = _OPEN_FIELDS.get(model)
    if found is None:
        found = _OPEN_FIELDS[model] = tuple(
            name for name, info in model.model_fields.items() if not _simple(info.annotation))
    return found


def _parse_model(model: type[M], payload: bytes) -> M:
    try:
        parsed = model.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        if first["type"] == "json_invalid":
            raise ProtocolError("bad_json", first["msg"][:200]) from exc
        if first["type"] == "model_type":
            raise ProtocolError("bad_schema", "payload is not a JSON object") from exc
        # Another version's payload fails the schema too: the version is the reason to give.
        for err in errors:
            if err["loc"][:1] == ("v",):
                raise ProtocolError("bad_version", f"v={err['input']!r}") from exc
        if not _has_version_key(payload):  # only refused payloads are read twice
            raise ProtocolError("bad_version", "v=None") from exc
        for err in errors:
            value = err.get("input")
            if type(value) is float and not math.isfinite(value):  # NaN failing ge=0, say
                raise ProtocolError("bad_number", f"{value!r} is not a JSON number") from exc
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise ProtocolError("bad_schema", f"{where}: {first['msg']}") from exc
    if "v" not in parsed.model_fields_set:  # the models default v for the sending side
        raise ProtocolError("bad_version", "v=None")
    return parsed


def dumps(model: BaseModel) -> bytes:
    """Compact JSON bytes of a payload model (``null`` fields included, except the optional
    revision fields a model names in OMIT_IF_NONE)."""
    omit = [name for name in getattr(model, "OMIT_IF_NONE", ()) if getattr(model, name) is None]
    if omit:
        return model.model_dump_json(exclude_none=False, exclude=set(omit)).encode()
    return model.model_dump_json(exclude_none=False).encode()


_LIMITS = {
    "event": MAX_EVENT_BYTES,
    "snapshot": MAX_SNAPSHOT_BYTES,
    "heartbeat": MAX_HEARTBEAT_BYTES,
    "status": MAX_STATUS_BYTES,
}
_MODELS: dict[str, type[BaseModel]] = {
    "event": Event,
    "snapshot": Snapshot,
    "heartbeat": Heartbeat,
    "status": Status,
}


def _has_version_key(payload: bytes) -> bool:
    try:
        value = json.loads(payload)
    except ValueError:
        return True  # not for this check to decide
    return not isinstance(value, dict) or "v" in value


def parse_station_message(prefix: str, topic_name: str, payload: bytes) -> tuple[str, BaseModel]:
    """Validate a message a station published; return (channel, model).

    Raises ProtocolError with one of the reasons: bad_topic, not_station_channel, oversized,
    bad_json, bad_version, bad_schema, bad_offset, bad_time, bad_number, duplicate_key,
    forged_origin, bad_image.
    """
    site, station, channel = parse_topic(prefix, topic_name)
    return channel, parse_station_payload(site, station, channel, payload)


def parse_station_payload(site: str, station: str, channel: str, payload: bytes) -> BaseModel:
    """The payload of a station message whose topic parse_topic() has already split."""
    if channel not in _MODELS:
        raise ProtocolError("not_station_channel", channel)
    if len(payload) > _LIMITS[channel]:
        raise ProtocolError("oversized", f"{len(payload)} bytes > {_LIMITS[channel]}")
    model = _validate_json(_MODELS[channel], payload)
    if model.site != site or model.station != station:  # type: ignore[attr-defined]
        raise ProtocolError(
            "forged_origin",
            f"topic says {site}/{station}, payload says "
            f"{model.site}/{model.station}",  # type: ignore[attr-defined]
        )
    if isinstance(model, Snapshot):
        model.image_bytes()
    return model


