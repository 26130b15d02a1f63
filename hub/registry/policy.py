"""Access policies: compiled per station, versioned in the store, signed, and published
retained so every station can decide locally with the hub or the network down.

The source is the registry (hub.registry, kept on the admin pages) unless the hub config
names a staff file, the simpler source for a trial with a few people. The staff file is YAML::

    people:
      - {id: staff-001, name: Staff 001, badges: ["012E4CD2A5B71F03"], stations: ["*"]}

or CSV with the header ``person,name,badges,stations`` (and optionally ``decision``), badges
and stations separated by spaces or semicolons. A badge in no entry for a station is unknown
there, and the station denies it.

A station's policy keeps its version while its content is unchanged; a change gets
max(stored + 1, unix time in ms), so versions only grow even if the store is rebuilt.

Every published policy is signed with the hub's Ed25519 key (kagiban.signing); the stored
``payload`` is the signed envelope as published. The compile step is pluggable
(``PolicyPublisher(compile=...)``: the hub passes the registry's unless a staff file is set).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import threading
import time as time_mod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal


import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, insert, select, update

from hub.store.chain import canonical_json
from hub.store.db import begin_write
from hub.registry.policy_control import publish_pending
from hub.store.schema import policies, stations
from hub.store.timestamps import now_utc, utc_text
from kagiban.ed25519 import PrivateKey
from kagiban.badge_id import normalise_badge_id
from kagiban.configfile import ConfigError
from kagiban.protocol import ID_PATTERN, Hours, Policy, PolicyEntry, RollCall, check_id, dumps, topic
from kagiban.signing import envelope_policy, key_id, load_or_create_private_key, public_key_b64, sign

_LOG = logging.getLogger(__name__)

ALL_STATIONS = "*"
RETRY_S = 5.0  # wait before compiling again after a compile failed
# Stations refuse a version beyond its issue time (unix ms) by more than their slack (an hour
# by default); a stored version further ahead than this is not continued.
VERSION_SLACK_MS = 60_000
CSV_COLUMNS = ("person", "name", "badges", "stations")


def _text(value: Any, what: str) -> Any:
    # YAML reads 0123... or 1234... as numbers, silently changing a badge or staff number.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"write the {what} in quotes: YAML read it as the number {value!r}")
    return value


def _badge(value: Any) -> str:
    # The one rule for badge ids (kagiban.badge_id): separators, case and full width as the
    # registry's form takes them; lengths no card has are refused.
    return normalise_badge_id(_text(value, "badge id"))


def _station_ref(value: Any) -> str:
    value = _text(value, "station id")
    if value == ALL_STATIONS:
        return value
    return check_id(value, "station id")


class StaffEntry(BaseModel):
    """One person: who they are, their badges, and where those badges work."""

    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, BeforeValidator(lambda v: _text(v, "person id"))] = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=128)
    badges: list[Annotated[str, BeforeValidator(_badge)]] = Field(min_length=1)
    stations: list[Annotated[str, BeforeValidator(_station_ref)]] = Field(min_length=1)
    decision: Literal["allow", "allow_flag"] = "allow"

    def covers(self, station: str) -> bool:
        """True if this person's badges work at ``station``."""
        return ALL_STATIONS in self.stations or station in self.stations


class _StaffFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    people: list[StaffEntry]


def load_staff(path: str | Path) -> list[StaffEntry]:
    """Read a YAML or CSV (by suffix) staff file; ConfigError names file, line, key, reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a BOM into CSV
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    people = _parse_csv(path, text) if path.suffix.lower() == ".csv" else _parse_yaml(path, text)
    _check_unique(path, people)
    return [entry for entry, _where in people]


def _parse_yaml(path: Path, text: str) -> list[tuple[StaffEntry, str]]:
    try:
        raw = yaml.safe_load(text)
        tree = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with the key 'people'")
    try:
        staff = _StaffFile.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {len(exc.errors())} problem(s)"]
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  line {_yaml_line(tree, err['loc'])}: {key}: {_reason(err)}")
        raise ConfigError("\n".join(lines)) from exc
    return [
        (entry, f"line {_yaml_line(tree, ('people', n))}: people.{n}")
        for n, entry in enumerate(staff.people)
    ]


def _yaml_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The line of the deepest YAML node on the path ``loc`` (1-based)."""
    if node is None:
        return 1
    for key in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            child = node.value[key]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _reason(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "missing value"
    return str(err["msg"]).removeprefix("Value error, ")


def _parse_csv(path: Path, text: str) -> list[tuple[StaffEntry, str]]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    allowed = CSV_COLUMNS + ("decision",)
    if header[: len(CSV_COLUMNS)] != list(CSV_COLUMNS) or not set(header) <= set(allowed):
        raise ConfigError(f"{path}: line 1: the header must be {','.join(CSV_COLUMNS)}[,decision]")
    out: list[tuple[StaffEntry, str]] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ConfigError(f"{path}: line {line}: {len(cells)} columns, the header has {len(header)}")
        raw: dict[str, Any] = dict(zip(header, (c.strip() for c in cells)))
        raw["id"] = raw.pop("person")
        raw["badges"] = _split(raw["badges"])
        raw["stations"] = _split(raw["stations"])
        if not raw.get("decision"):
            raw.pop("decision", None)
        try:
            entry = StaffEntry.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            column = {"id": "person"}.get(str(err["loc"][0]), str(err["loc"][0]))
            raise ConfigError(f"{path}: line {line}: {column}: {_reason(err)}") from exc
        out.append((entry, f"line {line}"))
    return out


def _split(cell: str) -> list[str]:
    return [part for part in cell.replace(";", " ").split() if part]


def _check_unique(path: Path, people: list[tuple[StaffEntry, str]]) -> None:
    ids: dict[str, str] = {}
    badges: dict[str, str] = {}
    for entry, where in people:
        if entry.id in ids:
            raise ConfigError(f"{path}: {where}: person {entry.id} is already listed at {ids[entry.id]}")
        ids[entry.id] = where
        for badge in entry.badges:
            # One badge, one person: otherwise the ledger could not say who it was.
            if badge in badges and badges[badge] != entry.id:
                raise ConfigError(f"{path}: {where}: badge {badge} also belongs to {badges[badge]}")
            badges[badge] = entry.id


def compile_policies(
    people: list[StaffEntry], targets: Mapping[str, str]
) -> dict[str, tuple[str, dict[str, PolicyEntry]]]:
    """For each target station (id -> site): its site and the badges that work there.

    The staff file knows no hours or trainings: its ``allow`` is an entry with reason
    ``allowed``, its ``allow_flag`` one with reason ``not_designated``, both at any hour.
    """
    out: dict[str, tuple[str, dict[str, PolicyEntry]]] = {}
    for station, site in targets.items():
        badges = {
            badge: PolicyEntry(
                person=p.id, name=p.name, decision=p.decision,
                reason="allowed" if p.decision == "allow" else "not_designated", after_hours="allow",
            )
            for p in people
            if p.covers(station)
            for badge in p.badges
        }
        out[station] = (site, dict(sorted(badges.items())))
    return out


@dataclass(frozen=True)
class Compiled:
    """What a compile step says about one station; the publisher adds version and issue time
    and signs it. ``time_zone`` None: the site's zone."""

    site: str
    badges: Mapping[str, PolicyEntry]
    time_zone: str | None = None
    hours: Hours | None = None
    holidays: Sequence[date] = ()
    # The roll-call session open at the station (hub.rollcall), if any.
    rollcall: RollCall | None = None


# A compile step: given the current instant (aware), every station's policy content. A value
# may be a Compiled, a (site, badges) pair, or a mapping of Policy fields (site, badges and
# optionally time_zone, hours, holidays, rollcall; entries and hours as models or plain dicts).
CompiledValue = Compiled | tuple[str, Mapping[str, PolicyEntry]] | Mapping[str, Any]
CompileFn = Callable[[datetime], Mapping[str, CompiledValue]]

_COMPILED_FIELDS = {"site", "badges", "time_zone", "hours", "holidays", "rollcall"}


def as_compiled(value: CompiledValue) -> Compiled:
    """One compile result in the Compiled form; ValueError if it is none of the known forms."""
    if isinstance(value, Compiled):
        return value
    if isinstance(value, tuple):
        site, badges = value
        return Compiled(site=site, badges=badges)
    if isinstance(value, Mapping):
        unknown = set(value) - _COMPILED_FIELDS
        if unknown:
            raise ValueError(f"unknown policy fields {sorted(unknown)}")
        badges = {b: e if isinstance(e, PolicyEntry) else PolicyEntry.model_validate(e)
                  for b, e in value["badges"].items()}
        hours = value.get("hours")
        if hours is not None and not isinstance(hours, Hours):
            hours = Hours.model_validate(hours)
        rollcall = value.get("rollcall")
        if rollcall is not None and not isinstance(rollcall, RollCall):
            rollcall = RollCall.model_validate(rollcall)
        return Compiled(site=value["site"], badges=badges, time_zone=value.get("time_zone"),
                        hours=hours, holidays=tuple(value.get("holidays") or ()), rollcall=rollcall)
    raise ValueError(f"not a compiled policy: {type(value).__name__}")


def _content(station: str, c: Compiled) -> dict[str, Any]:
    """The Policy fields of a compiled policy, leaving out v, version and issue time."""
    body: dict[str, Any] = {"site": c.site, "station": station, "badges": dict(sorted(c.badges.items()))}
    if c.time_zone is not None:
        body["time_zone"] = c.time_zone
    if c.hours is not None:
        body["hours"] = c.hours
    if c.holidays:
        body["holidays"] = sorted(set(c.holidays))
    if c.rollcall is not None:
        body["rollcall"] = c.rollcall
    return body


def content_sha256(site: str, station: str, badges: Mapping[str, PolicyEntry], **rest: Any) -> str:
    """The digest of what a policy says, leaving out its version and issue time.

    ``rest``: time_zone, hours, holidays, rollcall (as in Compiled).
    """
    probe = Policy(version=1, issued_at=datetime(2000, 1, 1, tzinfo=timezone.utc),
                   **_content(station, Compiled(site=site, badges=badges, **rest)))
    content = probe.model_dump(mode="json", exclude={"v", "version", "issued_at", "expires_at"})
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def store_policies(
    engine: Engine,
    compiled: Mapping[str, CompiledValue],
    *,
    now: datetime | None = None,
    tz: tzinfo = timezone.utc,
    key: PrivateKey | None = None,
    validity: timedelta | None = None,
) -> set[str]:
    """Give each changed policy a new version in ``policies``; return the changed stations.

    With ``key`` the stored payload is the signed envelope that is published; without, the bare
    policy (``PolicyPublisher.publish`` signs it before sending). With ``validity`` each new
    policy expires that long after ``now``, and an unchanged one is issued again (new version
    and times) once half of its validity has passed or if it has no expiry.
    """
    now = now or now_utc()
    now_ms = int(now.timestamp() * 1000)
    changed: dict[str, int] = {}
    with begin_write(engine) as conn:
        stored = {r.station: r for r in conn.execute(select(policies))}
        for station, value in compiled.items():
            c = as_compiled(value)
            site = c.site
            digest = content_sha256(site, station, c.badges, time_zone=c.time_zone, hours=c.hours,
                                    holidays=c.holidays, rollcall=c.rollcall)
            old = stored.get(station)
            if old is not None and old.content_sha256 == digest and not _due(old.payload, now, validity):
                continue
            previous = old.version if old is not None else 0
            if previous > now_ms + VERSION_SLACK_MS:
                # A version no station would take (beyond its issue time): start from the clock.
                _LOG.error("stored policy version %d of %s is beyond this clock; versions go on from %d",
                           previous, station, now_ms)
                previous = 0
            version = max(previous + 1, now_ms)
            expires = (now + validity).astimezone(tz) if validity is not None else None
            policy = Policy(version=version, issued_at=now.astimezone(tz), expires_at=expires,
                            **_content(station, c))
            payload = sign(policy, key) if key is not None else dumps(policy)
            values = {"site": site, "version": version, "content_sha256": digest,
                      "payload": payload.decode("utf-8"), "published_at": utc_text(now)}
            if old is None:
                conn.execute(insert(policies).values(station=station, **values))
            else:
                conn.execute(update(policies).where(policies.c.station == station).values(**values))
            changed[station] = version
    for station, version in sorted(changed.items()):
        _LOG.info("policy for %s is now version %d", station, version)
    return set(changed)


def _due(payload: str, now: datetime, validity: timedelta | None) -> bool:
    """True if the stored policy should be issued again: half its validity has passed, or it
    has no expiry while policies now have one."""
    if validity is None:
        return False
    try:
        held = _stored_policy(payload)
    except (ValueError, ValidationError):
        return True
    return held.expires_at is None or now >= held.issued_at + validity / 2


def _stored_policy(payload: str) -> Policy:
    obj = envelope_policy(payload.encode("utf-8"))
    if obj is None:
        raise ValueError("stored policy is not a JSON object")
    return Policy.model_validate_json(canonical_json(obj))


def stored_policies(engine: Engine) -> dict[str, Policy]:
    """Every stored policy by station (read from the stored envelope, not verified)."""
    with engine.connect() as conn:
        return {r.station: _stored_policy(r.payload) for r in conn.execute(select(policies))}


def load_signing_key(path: Path) -> PrivateKey:
    """The hub's policy signing key, created with mode 600 if the file is missing;
    ConfigError if the file cannot be read or holds no Ed25519 key."""
    try:
        return load_or_create_private_key(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"policy.signing_key_file: {path}: {exc}") from exc


def next_midnight(now: datetime, zone: tzinfo) -> datetime:
    """The first local midnight in ``zone`` after ``now`` (aware)."""
    day = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(day, time(0, 0), tzinfo=zone)


def _zone_name(zone: tzinfo) -> str | None:
    key = getattr(zone, "key", None)
    if key:
        return key
    return "UTC" if zone == timezone.utc else None


class PolicyPublisher:
    """Keeps the published policies in step with their source and the known stations.

    The source is ``compile(now)`` (e.g. the registry's), or the staff file when none is given.
    Every policy is signed with ``signing_key`` and published retained (``publish(topic,
    payload)`` must send retained at QoS 1). A thread recompiles when

    - ``request_recompile()`` is called (coalesced: at most one compile per ``min_interval_s``),
    - the staff file's modification time changes, or the set of stations does (polled every
      ``poll_s`` seconds),
    - local midnight passes in a site's zone (the date changes what compile says; then every
      policy is published again),

    and ``request_publish`` (at broker connect) sends every policy again.
    """

    def __init__(
        self,
        engine: Engine,
        staff_path: Path | None = None,
        *,
        prefix: str,
        configured: Mapping[str, str] | None,
        publish: Callable[[str, bytes], None],
        signing_key: PrivateKey,
        compile: CompileFn | None = None,
        poll_s: float = 2.0,
        tz: tzinfo = timezone.utc,
        site_zone: Callable[[str], tzinfo] | None = None,
        min_interval_s: float = 0.5,
        validity: timedelta | None = None,
        control_dir: Path | None = None,
        publish_once: Callable[[str, bytes], None] | None = None,
    ):
        self._engine = engine
        self._validity = validity
        self._control_dir = control_dir
        self._publish_once = publish_once or publish
        self._controls_sent: set[tuple[Path, int]] = set()
        self._staff_path = staff_path
        self._prefix = prefix
        self._configured = dict(configured or {})
        self._publish = publish
        self._key = signing_key
        self.key_id = key_id(signing_key.public_key())
        self._compile: CompileFn | None = compile
        self._poll_s = poll_s
        self._tz = tz
        self._site_zone = site_zone or (lambda _site: tz)
        self._min_interval_s = min_interval_s
        self._stamp: tuple[int, int] | None = None
        self._targets: dict[str, str] = {}
        self._sites: set[str] = set()  # the sites of the last compile
        self._lock = threading.Lock()  # the request flags
        self._work = threading.RLock()  # one compile or publish at a time
        self._recompile_asked = False
        self._publish_asked = False
        self._not_before = 0.0  # monotonic: no compile before this
        self._failing = False  # the last compile raised (other than a bad staff file)
        self._midnight_at: datetime | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kagiban-policy", daemon=True)

    @property
    def _uses_staff_file(self) -> bool:
        return self._compile is None and self._staff_path is not None

    @property
    def active(self) -> bool:
        """True if there is a source of policies (a compile step or a staff file)."""
        return self._compile is not None or self._staff_path is not None

    def public_key(self) -> str:
        """The base64 public key stations must be configured with."""
        return public_key_b64(self._key)

    def use_compile(self, compile: CompileFn) -> None:
        """Take policies from ``compile`` from now on (instead of the staff file)."""
        self._compile = compile
        self.request_recompile()

    def targets(self) -> dict[str, str]:
        """Stations that get a policy (id -> site): the configured ones and all seen ones."""
        with self._engine.connect() as conn:
            seen = {r.station: r.site for r in conn.execute(select(stations.c.station, stations.c.site))}
        return {**seen, **self._configured}

    def _compile_staff(self, _now: datetime) -> dict[str, tuple[str, dict[str, PolicyEntry]]]:
        assert self._staff_path is not None
        self._stamp = self._file_stamp()
        people = load_staff(self._staff_path)
        configured = set(self._configured)
        for person in people:
            unknown = set(person.stations) - configured - {ALL_STATIONS}
            if configured and unknown:
                _LOG.warning("staff %s names stations not in the hub config: %s",
                             person.id, ", ".join(sorted(unknown)))
        return compile_policies(people, self._targets)

    def refresh(self, now: datetime | None = None) -> set[str]:
        """Compile now and store new versions; the changed stations.

        ConfigError if the staff file is unusable (the stored policies stay as they were).
        """
        if not self.active:
            return set()
        now = now or now_utc()
        with self._work:
            self._targets = self.targets()
            source = self._compile or self._compile_staff
            compiled: dict[str, Compiled] = {}
            for station, value in source(now).items():
                c = as_compiled(value)
                if c.time_zone is None:
                    c = replace(c, time_zone=_zone_name(self._site_zone(c.site)))
                compiled[station] = c
            changed = store_policies(self._engine, compiled, now=now, tz=self._tz, key=self._key,
                                     validity=self._validity)
            self._sites = {c.site for c in compiled.values()}
            self._midnight_at = self._next_midnight(now)
            return changed

    def publish(self, only: set[str] | None = None) -> int:
        """Publish the stored policies, signed (of ``only`` stations, or all); how many were sent."""
        if not self.active:
            return 0
        sent = 0
        with self._work:
            # Key changes before the policies signed with the new key (a station re-offers a
            # policy it refused as unknown_key once the key change arrives, in case of reorder).
            self.publish_controls(again=only is None)
            with self._engine.connect() as conn:
                rows = conn.execute(select(policies.c.station, policies.c.site, policies.c.payload)).all()
            for row in rows:
                if only is None or row.station in only:
                    name = topic(self._prefix, row.site, row.station, "policy")
                    self._publish(name, self._signed(row.station, row.payload))
                    sent += 1
        return sent

    def publish_controls(self, again: bool = False) -> int:
        """Publish the key changes and resets waiting in the control folder (hub.registry.policy_control);
        ``again``: key changes already sent are sent again too (at broker connect)."""
        if again:
            self._controls_sent.clear()
        return publish_pending(self._control_dir, self._prefix, retained=self._publish,
                               once=self._publish_once, signing_key=self.public_key(),
                               only_new=self._controls_sent)

    def _signed(self, station: str, payload: str) -> bytes:
        """The stored envelope if it carries our signature, else the stored policy signed now
        (a policy stored before signing existed, or under an earlier key)."""
        raw = payload.encode("utf-8")
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and obj.get("key_id") == self.key_id and "signature" in obj:
            return raw
        policy_obj = envelope_policy(raw)
        if policy_obj is None:
            raise ValueError(f"stored policy of {station} is not a JSON object")
        signed = sign(policy_obj, self._key)
        with begin_write(self._engine) as conn:
            conn.execute(update(policies).where(policies.c.station == station)
                         .values(payload=signed.decode("utf-8")))
        _LOG.info("policy of %s signed again with key %s", station, self.key_id)
        return signed

    def request_publish(self) -> None:
        """Ask the thread to publish every policy again (safe from paho's thread)."""
        with self._lock:
            self._publish_asked = True
        self._wake.set()

    def request_recompile(self) -> None:
        """Ask the thread to compile again soon and publish what changed (safe from any thread;
        many requests close together make one compile)."""
        with self._lock:
            self._recompile_asked = True
        self._wake.set()

    def start(self) -> "PolicyPublisher":
        """Start the thread that keeps the policies current."""
        if not self.active:
            _LOG.info("no policy source configured: the hub publishes no policies")
        if self._midnight_at is None:
            self._midnight_at = self._next_midnight(now_utc())
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching; returns within ``timeout``."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self._staff_path.stat()  # type: ignore[union-attr]
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _next_midnight(self, now: datetime) -> datetime:
        sites: set[str | None] = {*self._targets.values(), *self._sites} or {None}
        zones = [self._tz if site is None else self._site_zone(site) for site in sites]
        # A second late, so a compile at midnight surely sees the new date.
        return min(next_midnight(now, z) for z in zones) + timedelta(seconds=1)

    def _timeout(self) -> float:
        timeout = self._poll_s
        if self._midnight_at is not None:
            timeout = min(timeout, (self._midnight_at - now_utc()).total_seconds())
        with self._lock:
            pending = self._recompile_asked
        if pending:
            timeout = min(timeout, self._not_before - time_mod.monotonic())
        return max(0.0, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._timeout())
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                self._tick()
            except Exception:  # a locked store or a broker hiccup must not end the watching
                _LOG.exception("policy update failed; the published policies stay as they were")

    def _tick(self) -> None:
        if not self.active:
            with self._lock:
                self._recompile_asked = self._publish_asked = False
            return
        now = now_utc()
        midnight = self._midnight_at is not None and now >= self._midnight_at
        if midnight:
            self._midnight_at = self._next_midnight(now)
        changed_source = (self._uses_staff_file and self._file_stamp() != self._stamp) or (
            self.targets() != self._targets)
        with self._lock:
            if changed_source or midnight:
                self._recompile_asked = True
            if midnight:
                self._publish_asked = True
            recompile = self._recompile_asked and time_mod.monotonic() >= self._not_before
            if recompile:
                self._recompile_asked = False
            elif self._recompile_asked and not self._failing:
                return  # a compile is due within min_interval_s: publish after it
            publish_all = self._publish_asked
            self._publish_asked = False
        send: set[str] = set()
        if recompile:
            self._not_before = time_mod.monotonic() + self._min_interval_s
            try:
                send = self.refresh(now)
                self._failing = False
            except ConfigError as exc:
                # Not retried: the next save of the file is noticed by its modification time.
                _LOG.error("staff file not used, policies unchanged:\n%s", exc)
            except Exception:
                _LOG.exception("policy compile failed; the published policies stay; retrying")
                self._failing = True
                with self._lock:
                    self._recompile_asked = True
                self._not_before = time_mod.monotonic() + max(self._poll_s, RETRY_S)
        if publish_all:
            self.publish()
        elif send:
            self.publish(send)
        else:
            self.publish_controls()
