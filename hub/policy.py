"""Access policies: the staff file compiled per station, versioned in the store, published
retained so every station can decide locally with the hub or the network down.

Until the admin pages replace it, the staff file is YAML::

    people:
      - {id: staff-001, name: Staff 001, badges: ["012E4CD2A5B71F03"], stations: ["*"]}

or CSV with the header ``person,name,badges,stations`` (and optionally ``decision``), badges
and stations separated by spaces or semicolons. A badge in no entry for a station is unknown
there, and the station denies it.

A station's policy keeps its version while its content is unchanged; a change gets
max(stored + 1, unix time in ms), so versions only grow even if the store is rebuilt.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, insert, select, update

from hub.chain import canonical_json
from hub.db import begin_write
from hub.schema import policies, stations
from hub.timestamps import now_utc, utc_text
from kagiban.configfile import ConfigError
from kagiban.protocol import ID_PATTERN, Policy, PolicyEntry, check_id, dumps, topic

_LOG = logging.getLogger(__name__)

ALL_STATIONS = "*"
CSV_COLUMNS = ("person", "name", "badges", "stations")
_BADGE_CHARS = set("0123456789ABCDEF")


def _text(value: Any, what: str) -> Any:
    # YAML reads 0123... or 1234... as numbers, silently changing a badge or staff number.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"write the {what} in quotes: YAML read it as the number {value!r}")
    return value


def _badge(value: Any) -> str:
    value = _text(value, "badge id")
    if not isinstance(value, str):
        raise ValueError("a badge id is text")
    upper = value.strip().upper()
    if not 8 <= len(upper) <= 32 or not set(upper) <= _BADGE_CHARS:
        raise ValueError(f"{value!r} is not a badge id (8 to 32 hex digits)")
    return upper


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


def _reason(err: dict[str, Any]) -> str:
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
    """For each target station (id -> site): its site and the badges that work there."""
    out: dict[str, tuple[str, dict[str, PolicyEntry]]] = {}
    for station, site in targets.items():
        badges = {
            badge: PolicyEntry(person=p.id, name=p.name, decision=p.decision)
            for p in people
            if p.covers(station)
            for badge in p.badges
        }
        out[station] = (site, dict(sorted(badges.items())))
    return out


def content_sha256(site: str, station: str, badges: Mapping[str, PolicyEntry]) -> str:
    """The digest of what a policy says, leaving out its version and issue time."""
    content = {"site": site, "station": station,
               "badges": {b: e.model_dump(mode="json") for b, e in badges.items()}}
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def store_policies(
    engine: Engine,
    compiled: Mapping[str, tuple[str, Mapping[str, PolicyEntry]]],
    *,
    now: datetime | None = None,
    tz: tzinfo = timezone.utc,
) -> set[str]:
    """Give each changed policy a new version in ``policies``; return the changed stations."""
    now = now or now_utc()
    changed: dict[str, int] = {}
    with begin_write(engine) as conn:
        stored = {r.station: r for r in conn.execute(select(policies))}
        for station, (site, badges) in compiled.items():
            digest = content_sha256(site, station, badges)
            old = stored.get(station)
            if old is not None and old.content_sha256 == digest:
                continue
            version = max(old.version + 1 if old is not None else 1, int(now.timestamp() * 1000))
            policy = Policy(version=version, issued_at=now.astimezone(tz), site=site,
                            station=station, badges=dict(badges))
            values = {"site": site, "version": version, "content_sha256": digest,
                      "payload": dumps(policy).decode("utf-8"), "published_at": utc_text(now)}
            if old is None:
                conn.execute(insert(policies).values(station=station, **values))
            else:
                conn.execute(update(policies).where(policies.c.station == station).values(**values))
            changed[station] = version
    for station, version in sorted(changed.items()):
        _LOG.info("policy for %s is now version %d", station, version)
    return set(changed)


def stored_policies(engine: Engine) -> dict[str, Policy]:
    """Every stored policy by station."""
    with engine.connect() as conn:
        return {r.station: Policy.model_validate_json(r.payload) for r in conn.execute(select(policies))}


class PolicyPublisher:
    """Keeps the published policies in step with the staff file and the known stations.

    ``publish(topic, payload)`` must send retained at QoS 1. A thread polls the staff file's
    modification time every ``poll_s`` seconds; ``request_publish`` (at broker connect)
    sends every policy again.
    """

    def __init__(
        self,
        engine: Engine,
        staff_path: Path | None,
        *,
        prefix: str,
        configured: Mapping[str, str] | None,
        publish: Callable[[str, bytes], None],
        poll_s: float = 2.0,
        tz: tzinfo = timezone.utc,
    ):
        self._engine = engine
        self._staff_path = staff_path
        self._prefix = prefix
        self._configured = dict(configured or {})
        self._publish = publish
        self._poll_s = poll_s
        self._tz = tz
        self._stamp: tuple[int, int] | None = None
        self._targets: dict[str, str] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kagiban-policy", daemon=True)

    def targets(self) -> dict[str, str]:
        """Stations that get a policy (id -> site): the configured ones and all seen ones."""
        with self._engine.connect() as conn:
            seen = {r.station: r.site for r in conn.execute(select(stations.c.station, stations.c.site))}
        return {**seen, **self._configured}

    def refresh(self) -> set[str]:
        """Re-read the staff file and store new versions; the changed stations.

        ConfigError if the staff file is unusable (the stored policies stay as they were).
        """
        if self._staff_path is None:
            return set()
        targets = self.targets()
        self._stamp = self._file_stamp()
        self._targets = targets
        people = load_staff(self._staff_path)
        configured = set(self._configured)
        for person in people:
            unknown = set(person.stations) - configured - {ALL_STATIONS}
            if configured and unknown:
                _LOG.warning("staff %s names stations not in the hub config: %s",
                             person.id, ", ".join(sorted(unknown)))
        return store_policies(self._engine, compile_policies(people, targets), tz=self._tz)

    def publish(self, only: set[str] | None = None) -> int:
        """Publish the stored policies (of ``only`` stations, or all); how many were sent."""
        if self._staff_path is None:
            return 0
        sent = 0
        with self._engine.connect() as conn:
            rows = conn.execute(select(policies.c.station, policies.c.site, policies.c.payload)).all()
        for row in rows:
            if only is None or row.station in only:
                name = topic(self._prefix, row.site, row.station, "policy")
                self._publish(name, row.payload.encode("utf-8"))
                sent += 1
        return sent

    def request_publish(self) -> None:
        """Ask the thread to publish every policy again (safe from paho's thread)."""
        self._wake.set()

    def start(self) -> "PolicyPublisher":
        """Start watching the staff file."""
        if self._staff_path is None:
            _LOG.info("no staff_file configured: the hub publishes no policies")
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

    def _run(self) -> None:
        while not self._stop.is_set():
            asked = self._wake.wait(self._poll_s)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                self._tick(asked)
            except Exception:  # a broken file or a locked store must not end the watching
                _LOG.exception("policy update failed; the published policies stay as they were")

    def _tick(self, asked: bool) -> None:
        if self._staff_path is None:
            return
        send: set[str] = set()
        if self._file_stamp() != self._stamp or self.targets() != self._targets:
            try:
                send = self.refresh()
            except ConfigError as exc:
                _LOG.error("staff file not used, policies unchanged:\n%s", exc)
        if asked:
            self.publish()
        elif send:
            self.publish(send)
