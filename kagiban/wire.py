"""The wire protocol's names, limits and topics, and the rule a policy decides a badge by: what
both sides share that needs no validator.

kagiban.protocol builds the message models (pydantic, the hub's strict reading) on these; a
station imports this module and its own light message types (device.wire), so it never loads
pydantic. docs/protocol.md describes the same in prose.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

VERSION = 1
# Revisions of version 1 add optional fields only: a station or hub that leaves them out speaks
# the same v1 (docs/protocol.md, "Versions"). 2: ``incarnation`` on Event, Heartbeat and Ack.
# 3: ``clock_synced`` on Heartbeat, ``data.clock_unsynced`` on events; a strict wire (duplicate
# keys, NaN/Infinity and offsets beyond +-14:00 refused).
# 4: ``key_id`` and ``sig`` on Event and Snapshot (the station's signature, kagiban.event_signing).
# 5: ``clock_unsynced`` on Snapshot (its taken_at from the station's clock).
# 6: ``expires_at`` on Policy; ``policy_expired`` and ``policy_refused`` on Heartbeat; the
# ``policy-control`` channel (signed key changes and resets, kagiban.signing).
# 7: station kind ``annunciator``; ``signal`` on Heartbeat; the retained per-site ``alarm`` topic
# (SiteAlarm), which annunciators follow.
# 8: station kind ``rollcall``; ``rollcall`` on Policy (the open roll-call session a unit checks
# people in for), the event ``rollcall.tap``.
REVISION = 8
DEFAULT_PREFIX = "kagiban"

# Channels a station publishes on, and channels the hub publishes on.
STATION_CHANNELS = ("event", "snapshot", "status", "heartbeat")
HUB_CHANNELS = ("ack", "policy", "alert", "policy-control")
CHANNELS = STATION_CHANNELS + HUB_CHANNELS

MAX_EVENT_BYTES = 16 * 1024
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024
MAX_HEARTBEAT_BYTES = 8 * 1024
MAX_STATUS_BYTES = 2 * 1024
MAX_ALARM_BYTES = 8 * 1024

# Identifiers appear in topics, so they must not contain MQTT wildcards or separators.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MAX_SEQ = 2**63 - 1  # what a signed 64-bit column holds
# An ack covers at most this many sequence numbers (a station sends fewer per window).
MAX_ACK_SPAN = 1_000_000
KIND_PATTERN = r"^[a-z][a-z_]*\.[a-z][a-z_]*$"
# An incarnation id: the UUIDv7 an outbox gets when it is created (lower-case hex).
INCARNATION_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
# A signing key's id (kagiban.signing.key_id) and a base64 Ed25519 signature (64 bytes).
KEY_ID_PATTERN = r"^[0-9a-f]{16}$"
SIGNATURE_PATTERN = r"^[A-Za-z0-9+/]{86}==$"
_ID_RE = re.compile(ID_PATTERN)

StationKind = Literal["cabinet", "shredder", "printer", "door", "annunciator", "rollcall"]


class ProtocolError(ValueError):
    """A message that does not follow the wire protocol; ``reason`` says why."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is usable as a site or station id in a topic, else raise."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValueError(f"{what} {value!r} must match {ID_PATTERN}")
    return value


def topic(prefix: str, site: str, station: str, channel: str) -> str:
    """The topic of one station's channel."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    return f"{prefix}/{site}/{station}/{channel}"


def alarm_topic(prefix: str, site: str) -> str:
    """The site's retained alarm state (SiteAlarm): not a station's channel, one per site."""
    check_id(site, "site")
    return f"{prefix}/{site}/alarm"


def subscription(prefix: str, channel: str) -> str:
    """A wildcard subscription for one channel across all sites and stations."""
    return f"{prefix}/+/+/{channel}"


def parse_topic(prefix: str, value: str) -> tuple[str, str, str]:
    """Split a topic into (site, station, channel); ProtocolError if it is not ours."""
    parts = value.split("/")
    head = prefix.split("/")
    if parts[: len(head)] != head or len(parts) != len(head) + 3:
        raise ProtocolError("bad_topic", value)
    site, station, channel = parts[len(head):]
    if channel not in CHANNELS or not _ID_RE.match(site) or not _ID_RE.match(station):
        raise ProtocolError("bad_topic", value)
    return site, station, channel



# UTC offsets in use on Earth run from -12:00 to +14:00; ISO 8601 allows up to 23:59.
MAX_UTC_OFFSET = timedelta(hours=14)


def check_instant(value: datetime) -> None:
    """ProtocolError unless ``value`` has an offset within +-14:00 (``bad_offset``) and can be
    expressed in UTC (``bad_time``: 0001-01-01T00:00+09:00 is in year 0)."""
    offset = value.utcoffset()
    if offset is None or not -MAX_UTC_OFFSET <= offset <= MAX_UTC_OFFSET:
        raise ProtocolError("bad_offset", f"UTC offset {offset} of {value.isoformat()} is beyond +-14:00")
    if value.year in (1, 9999):  # only these years can leave the range when moved to UTC
        try:
            value.astimezone(timezone.utc)
        except OverflowError:
            raise ProtocolError("bad_time", f"{value.isoformat()} cannot be expressed in UTC") from None


# A time on the wire: ISO 8601 with an offset within +-14:00, expressible in UTC (years 1-9999).


# ``data`` key of an event made while the station's clock was not synchronised (revision 3).
CLOCK_UNSYNCED = "clock_unsynced"


# The peripherals a station reports on, and the text a health detail may hold.
Peripheral = Literal["pins", "reader", "camera", "print_server"]
PeripheralState = Literal["ok", "failed", "absent"]
MAX_HEALTH_DETAIL = 200
ERROR_CODE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


# An annunciator's outputs: lamp and buzzer off; lamp lit, buzzer silenced; lamp lit and sounding.
SignalState = Literal["off", "lit", "sounding"]


STORAGE_CORRUPT = "storage.corrupt"


DecisionKind = Literal["allow", "allow_flag", "deny"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


HHMM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


# A roll call lists at most this many expected people (a section's whole staff fits).
MAX_ROLLCALL_EXPECTED = 2000
RollCallAnswer = Literal["present", "late", "unexpected", "no_session"]


def canonical_json(obj: Any) -> bytes:
    """The one byte form of a JSON value that is signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# Open critical alerts a SiteAlarm lists by id at most (``count`` says how many there are).
MAX_ALARM_IDS = 200


def ranges(numbers: set[int] | list[int]) -> list[tuple[int, int]]:
    """Compress sequence numbers into sorted inclusive ranges: {1,2,3,7} -> [(1,3),(7,7)]."""
    out: list[tuple[int, int]] = []
    for n in sorted(set(numbers)):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def now_local() -> datetime:
    """The current time with the machine's UTC offset (events carry their offset)."""
    return datetime.now().astimezone()


class EntryLike(Protocol):
    """What the decision reads of a policy entry (the hub's pydantic one, the station's msgspec one)."""

    @property
    def decision(self) -> str: ...
    @property
    def valid_from(self) -> datetime | None: ...
    @property
    def valid_until(self) -> datetime | None: ...
    @property
    def expiry_reason(self) -> str: ...
    @property
    def after_hours(self) -> str: ...


E = TypeVar("E", bound=EntryLike)


def decide_entry(entry: E | None, now: datetime, in_hours: Callable[[datetime], bool],
                 unknown: Callable[[], E], like: Callable[[E, DecisionKind, str], E]) -> E:
    """The effective entry of a badge at ``now`` (aware), the one rule both sides decide by: an
    unknown badge (``entry`` None) is ``unknown()``; a stored ``deny`` stays as it is; otherwise
    valid_from, valid_until and then the hours may turn it into a deny (or, outside hours, an
    allow_flag), made by ``like(entry, decision, reason)``."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: a policy decides at an instant with an offset")
    if entry is None:
        return unknown()
    if entry.decision == "deny":
        return entry
    if entry.valid_from is not None and now < entry.valid_from:
        return like(entry, "deny", "not_yet_valid")
    if entry.valid_until is not None and now >= entry.valid_until:
        return like(entry, "deny", entry.expiry_reason)
    if entry.after_hours != "allow" and not in_hours(now):
        if entry.after_hours == "flag":
            return like(entry, "allow_flag", "outside_hours")
        return like(entry, "deny", "outside_hours")
    return entry


class _Refused(ValueError):
    """A duplicate key or a non-finite number met by json.loads's hooks."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _Refused("duplicate_key", f"key {key!r} appears twice in one object")
            seen.add(key)
    return out


def _no_constant(name: str) -> Any:
    raise _Refused("bad_number", f"{name} is not a JSON number")


def strict_json(payload: bytes) -> Any:
    """``payload`` read by the standard library's JSON parser, refusing what it would otherwise
    take: a key twice in one object (ProtocolError ``duplicate_key``; it keeps the last) and
    NaN or Infinity (``bad_number``); anything else not JSON is ``bad_json``. Both sides' strict
    reading of a message (kagiban.protocol, device.wire) goes through here."""
    try:
        return json.loads(payload, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Refused as exc:
        raise ProtocolError(exc.reason, str(exc)[:200]) from None
    except ValueError as exc:  # includes UnicodeDecodeError
        raise ProtocolError("bad_json", str(exc)[:200]) from None
