"""The hub's YAML file: one typed model per section, unknown keys rejected.

A wrong file stops the hub at start with the file, the key and the reason
(see kagiban.configfile.load_config). Relative paths are taken from the file's folder.
"""
from __future__ import annotations

import functools
import os
import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse_many
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, PrivateAttr, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from kagiban.broker import BrokerConfig
from kagiban.configfile import Problem, config_error, convert, load_config
from kagiban.protocol import ID_PATTERN, StationKind, check_id

DB_FILE_NAME = "kagiban.db"
POLICY_KEY_FILE_NAME = "policy-signing.key"
AUDIT_KEY_FILE_NAME = "audit-signing.key"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _broker(value: Any) -> BrokerConfig:
    """The ``broker:`` section: the stations' one definition (a msgspec Struct), read as they
    read it; its problems reach the file's error with their keys (``broker.port: ...``)."""
    return value if isinstance(value, BrokerConfig) else convert(value, BrokerConfig)


class DatabaseSection(_Section):
    """Where the audit store lives; by default a SQLite file in ``data_dir``."""

    # An SQLAlchemy URL. Secrets do not belong here: a PostgreSQL password comes from
    # the environment (PGPASSWORD) or ~/.pgpass, which libpq reads itself.
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parsed = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from exc
        if parsed.password:
            raise ValueError("put no password in the URL; use PGPASSWORD or ~/.pgpass")
        return value


class IngestSection(_Section):
    """How the writer batches messages into transactions."""

    batch_max: int = Field(default=500, ge=1, le=10_000)
    batch_wait_ms: int = Field(default=10, ge=0, le=10_000)
    client_id: str = Field(default="kagiban-hub", min_length=1, max_length=64)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class HoursSection(_Section):
    """Business hours: on these weekdays between start and end (local time of the site).

    ``end`` earlier than ``start`` means the window runs past midnight (e.g. a night shift).
    Outside them, and all day on the site's holidays, use of the station raises after_hours.
    """

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = ["mon", "tue", "wed", "thu", "fri"]
    start: time = time(8, 30)
    end: time = time(17, 15)


class StationEntry(_Section):
    """A station the hub expects; when any are listed, unlisted ones are quarantined."""

    id: str = Field(pattern=ID_PATTERN)
    site: str = Field(pattern=ID_PATTERN)
    kind: StationKind
    name: str = ""
    # None: the site's hours.
    hours: HoursSection | None = None


class NotifyTarget(_Section):
    """One Apprise destination (mailto://, slack://, line://, json://, ... see Apprise's docs).

    The URL usually holds a secret, so it comes from an environment variable or a file
    (systemd credentials); ``url`` itself is for URLs without secrets (e.g. a local json://).
    """

    url: str | None = None
    url_env: str | None = None
    url_file: str | None = None
    label: str = ""  # shown in logs and on the page instead of the URL

    @model_validator(mode="after")
    def _one_source(self) -> "NotifyTarget":
        if sum(x is not None for x in (self.url, self.url_env, self.url_file)) != 1:
            raise ValueError("give exactly one of url, url_env, url_file")
        return self


class CloseoutSection(_Section):
    """The end-of-day close-out (hub.ledgers.closeout): built at ``at`` (the site's local time) each
    day, stored, and sent to the site's supervisors."""

    at: time = time(18, 0)


_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


def _day_or_month_day(value: object) -> date | str | None:
    """A date (that year only) or "MM-DD" (every year); anything else is a ValueError."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _MONTH_DAY.match(text):
            month, day = int(text[:2]), int(text[3:])
            if text == "02-29":
                raise ValueError("02-29 is not in every year; give that year's date instead")
            try:
                date(2001, month, day)
            except ValueError:
                raise ValueError(f"{text} is not a day of the year") from None
            return text
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError("give a date (2027-06-15, that year only) or a month and day (\"12-29\", every year)")


class ClosedDays(_Section):
    """One of the office's own closed days, on top of its holiday calendar (年末年始, a local
    closure): one day ``date``, or the days ``from`` .. ``to`` (both included), with an
    optional ``label`` shown on the page.

    A date (2027-06-15) holds that year only; a month and day ("12-29") every year, and a
    range whose ``to`` comes before its ``from`` runs over the new year (12-29 .. 01-03).
    A plain date or "MM-DD" in the list is one day without a label.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    on: date | str | None = Field(default=None, alias="date")
    first: date | str | None = Field(default=None, alias="from")
    last: date | str | None = Field(default=None, alias="to")
    label: str = Field(default="", max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _plain_day(cls, value: object) -> object:
        return value if isinstance(value, dict) else {"date": value}

    @field_validator("on", "first", "last", mode="before")
    @classmethod
    def _day(cls, value: object) -> date | str | None:
        return _day_or_month_day(value)

    @model_validator(mode="after")
    def _one_day_or_a_range(self) -> "ClosedDays":
        a_range = self.first is not None or self.last is not None
        if self.on is not None and a_range:
            raise ValueError("give either date, or from and to, not both")
        if self.on is None and (self.first is None or self.last is None):
            raise ValueError("give date for one day, or both from and to for a range")
        if self.on is None and isinstance(self.first, date) != isinstance(self.last, date):
            raise ValueError("from and to must both be dates (2026-12-29) or both months and days (\"12-29\")")
        if isinstance(self.first, date) and isinstance(self.last, date):
            if self.last < self.first:
                raise ValueError(f"to ({self.last}) is before from ({self.first})")
            if (self.last - self.first).days >= 366:
                raise ValueError("a range of at most 366 days")
        self.label = self.label.strip()
        return self


class KeyWork(_Section):
    """One kind of work done with a key (作業内容), as the office's paper 作業管理簿 lists it:
    ``code`` is what is stored (and what a cabinet's purpose button sends), ``ja`` and ``en``
    what the page and the exports say (``en`` empty: the Japanese wording)."""

    code: str = Field(pattern=ID_PATTERN)
    ja: str = Field(min_length=1, max_length=64)
    en: str = Field(default="", max_length=64)

    def label(self, lang: str) -> str:
        """The wording in ``lang`` ("ja" or "en")."""
        return self.en if lang == "en" and self.en else self.ja


class SiteSection(_Section):
    """An office: its name, time zone, default business hours, days off and supervisors.

    Its days off are the national holidays of ``holiday_calendar`` (substitute holidays
    included, from the ``holidays`` library, which follows each year's changes) and its own
    closed days in ``holidays``; hub.hours.site_holidays resolves them.
    """

    name: str = ""
    time_zone: str | None = None  # None: the hub's time_zone
    # The language of what the hub says for this site off the page (the MQTT alert topic's
    # text); None: the web page's default_language.
    language: Literal["ja", "en"] | None = None
    hours: HoursSection = HoursSection()
    # A country code (JP) or country and subdivision (US-CA) of the holidays library;
    # "none" (or null): no national holidays, only the days in ``holidays``.
    holiday_calendar: str | None = "JP"
    holidays: list[ClosedDays] = []
    supervisors: list[NotifyTarget] = []
    # None: no close-out is built by itself (the page still shows one on demand).
    closeout: CloseoutSection | None = None
    # The work a key may be used for here (作業内容), picked for each use afterwards.
    key_work: list[KeyWork] = []

    @field_validator("key_work")
    @classmethod
    def _unique_work(cls, value: list[KeyWork]) -> list[KeyWork]:
        seen: set[str] = set()
        for item in value:
            if item.code in seen:
                raise ValueError(f"work code {item.code!r} is listed twice")
            seen.add(item.code)
        return value

    def work(self, code: str | None) -> KeyWork | None:
        """The listed work of ``code``, if any."""
        return next((w for w in self.key_work if w.code == code), None)

    @field_validator("holiday_calendar")
    @classmethod
    def _known_calendar(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() == "none":
            return None
        import holidays as holiday_calendars  # only the hub needs it, and only here and in hub.hours

        country, _sep, subdiv = value.strip().partition("-")
        supported = holiday_calendars.list_supported_countries()
        if country.upper() not in supported:
            raise ValueError(f"unknown holiday calendar {value!r}: give a country code such as JP "
                             "(a subdivision as US-CA), or none")
        if not subdiv:
            return country.upper()
        spelled = {s.upper(): s for s in supported[country.upper()]}.get(subdiv.upper())
        if spelled is None:
            raise ValueError(f"the holiday calendar {country.upper()} has no subdivision {subdiv!r}")
        return f"{country.upper()}-{spelled}"


class RulesSection(_Section):
    """Thresholds of the hub's alert rules."""

    # A station is offline after its last will, or when no heartbeat came for this long.
    offline_grace_s: float = Field(default=90.0, gt=0, le=86400)
    # A missing seq is a gap only if it has not arrived within this time (resends reorder).
    gap_grace_s: float = Field(default=120.0, gt=0, le=86400)
    # Warn when a station's outbox is this full (from its heartbeat).
    outbox_warn_ratio: float = Field(default=0.5, gt=0, le=1)
    # clock_skew: a station whose heartbeat time is this far from when the hub received it.
    # Events more than this far ahead of their receive time are stored flagged "future".
    clock_skew_s: float = Field(default=120.0, gt=0, le=86400)
    # Events older than this when received are stored flagged "past" (an outbox replayed after
    # a long outage is, too: the flag says the time cannot be checked against the receipt).
    event_max_age_s: float = Field(default=30 * 86400.0, gt=0)
    # An office (site) is shown stale on the status page when none of its stations has been
    # heard for this long: its uplink (the bridge to the central broker) is probably down
    # (hub.stations.offices, docs/offices.md). Longer than a heartbeat interval or two.
    site_stale_after_s: float = Field(default=180.0, gt=0, le=86400)


class NotifySection(_Section):
    """Retries of failed notifications; a failing target never blocks ingest."""

    retry_s: list[float] = [5, 30, 120, 600]
    timeout_s: float = Field(default=15.0, gt=0, le=300)


def _limit_list(value: str) -> str:
    """A Flask-Limiter limit string ("5 per minute; 10 per 15 minutes"), checked at load."""
    try:
        if not parse_many(value):
            raise ValueError("no limit given")
    except ValueError as exc:
        raise ValueError(f"not a limit such as '5 per minute; 10 per 15 minutes': {exc}") from exc
    return value


class SignInSection(_Section):
    """Guessing passwords on the sign-in page and over HTTP Basic (hub.web.throttle).

    Failed sign-ins count against the account named and against the address they came from.
    When any limit of either list is full, every attempt for that account (or from that
    address) is refused with 429 until the window moves on, the right password too: the wait
    grows tier by tier, the last tier is a temporary lockout. ``attempts_per_address`` bounds
    every POST to the sign-in page (each costs an argon2 check). ``alert_after`` failures of
    one account or one address raise a ``signin_failures`` alert to the supervisors.
    """

    account_limits: str = "3 per 10 seconds; 5 per minute; 10 per 15 minutes; 20 per hour"
    address_limits: str = "10 per minute; 30 per 15 minutes; 100 per day"
    attempts_per_address: str = "30 per minute"
    alert_after: str = "10 per 15 minutes"

    @field_validator("account_limits", "address_limits", "attempts_per_address", "alert_after")
    @classmethod
    def _limits(cls, value: str) -> str:
        return _limit_list(value)


class WebSection(_Section):
    """The web page and JSON API served by the hub."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port (tests, demo)
    # The session-signing key: from the environment or a file; if neither is given, one is
    # generated once and kept in data_dir (mode 600).
    secret_key_env: str | None = None
    secret_key_file: str | None = None
    default_language: Literal["ja", "en"] = "ja"
    # Served over TLS (a reverse proxy in front): the session cookie is sent only over HTTPS
    # and every answer carries Strict-Transport-Security for hsts_max_age_s (0: no header).
    secure_cookies: bool = False
    hsts_max_age_s: int = Field(default=31_536_000, ge=0, le=63_072_000)
    # The reverse proxy's address: only from it are X-Forwarded-For/-Proto believed (waitress),
    # so throttling counts the browser's address, not the proxy's. None: no proxy headers.
    trusted_proxy: str | None = None
    signin: SignInSection = SignInSection()


class PolicySection(_Section):
    """Signing of station policies (Ed25519; stations hold the public key).

    ``signing_key_file``: a PEM private key, created with mode 600 if missing; may use
    ${CREDENTIALS_DIRECTORY} and other environment variables; relative paths are taken from
    the config file's folder. None: ``policy-signing.key`` in ``data_dir``.
    ``kagiban hub policy-key --config FILE`` prints the public key for the station files.
    ``validity_h``: each policy expires this long after it is issued (stations then flag or
    deny); the hub issues it again, unchanged but for version and times, once half of that
    has passed (checked at each compile, at least at every local midnight).
    """

    signing_key_file: str | None = None
    validity_h: float = Field(default=168.0, ge=48, le=24 * 366)


class SyslogTarget(_Section):
    """A syslog receiver for checkpoints: ``host:port`` (UDP) or the path of a local socket."""

    address: str = Field(min_length=1, max_length=300)
    facility: Literal["user", "auth", "authpriv", "daemon", "local0", "local1", "local2", "local3",
                      "local4", "local5", "local6", "local7"] = "local0"

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value.startswith("/"):
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("give host:port (UDP) or the absolute path of a syslog socket")
        return value


class AuditSection(_Section):
    """Signed checkpoints of the audit trail, kept off the hub (hub.audit.checkpoints).

    Every ``checkpoint_interval_s`` and at each close-out the hub signs a checkpoint with its
    audit key (Ed25519, not the policy key): a PEM private key, created with mode 600 if
    missing, like ``policy.signing_key_file`` (None: ``audit-signing.key`` in ``data_dir``).
    It is published retained on MQTT and appended to ``log_dir``/checkpoints.jsonl (a folder
    on another disk or host) and/or sent to ``syslog``. ``kagiban hub audit-key --config FILE``
    prints the public key ``kagiban verify --checkpoints`` checks them with.
    """

    checkpoint_interval_s: float = Field(default=300.0, ge=10, le=86400)
    # How often the hub recomputes the events stored since its last verified mark
    # (hub.audit.prefix): the monthly report then recomputes only its month's rows.
    verify_interval_s: float = Field(default=3600.0, ge=60, le=86400)
    signing_key_file: str | None = None
    log_dir: str | None = None
    syslog: SyslogTarget | None = None


class SnapshotsSection(_Section):
    """Photos of staff are personal data: kept this many days, then deleted (their hashes stay
    in the audit trail); checked every ``expire_every_s``."""

    keep_days: int = Field(default=90, ge=1, le=3650)
    expire_every_s: float = Field(default=3600.0, ge=10, le=86400)


class FailoverSection(_Section):
    """Two hubs on one PostgreSQL store, one active and one standby (hub.store.lease,
    docs/reliability.md "Hub failover"). Each hub's file names the hub; both name the same store."""

    enabled: bool = False
    # This hub's name, shown on the status page and in the lease (e.g. hub-a, hub-b).
    hub_name: str | None = Field(default=None, min_length=1, max_length=64)
    # How often the standby tries for the lease and the active checks it still holds it.
    poll_s: float = Field(default=1.0, ge=0.2, le=3.0)
    # Where this hub's pages are reached by users (https://hub-a.example.internal:8080): the
    # standby redirects page requests to the active hub's address.
    web_url: str | None = Field(default=None, max_length=512, pattern=r"^https?://[^\s]+$")

    @field_validator("hub_name")
    @classmethod
    def _name_is_id(cls, value: str | None) -> str | None:
        return None if value is None else check_id(value, "hub")

    @model_validator(mode="after")
    def _named_when_enabled(self) -> "FailoverSection":
        if self.enabled and self.hub_name is None:
            raise ValueError("hub_name: missing value (each hub of a failover pair has its own name)")
        return self


class Notice(_Section):
    """A part that could not start, shown in a box on the status page until the hub restarts.

    Written by ``kagiban demo`` (its print server, say) so the page says what the terminal's
    banner said; an admin may list one too. ``part`` and ``code`` are translated on the page;
    ``detail`` is the part's own words (cupsd's message), shown as they are.
    """

    code: Literal["part_not_started"] = "part_not_started"
    part: Literal["print_server"]
    detail: str = Field(default="", max_length=2000)
    # The stations that run without it (degraded, not stopped).
    stations: list[str] = []


class HubConfig(_Section):
    """A whole hub file."""

    broker: Annotated[BrokerConfig, PlainValidator(_broker)] = BrokerConfig()
    database: DatabaseSection = DatabaseSection()
    data_dir: Path = Path("/var/lib/kagiban")
    staff_file: Path | None = None
    stations: list[StationEntry] | None = None
    ingest: IngestSection = IngestSection()
    time_zone: str = "Asia/Tokyo"
    sites: dict[str, SiteSection] = {}
    rules: RulesSection = RulesSection()
    notify: NotifySection = NotifySection()
    web: WebSection = WebSection()
    policy: PolicySection = PolicySection()
    audit: AuditSection = AuditSection()
    snapshots: SnapshotsSection = SnapshotsSection()
    notices: list[Notice] = []
    failover: FailoverSection = FailoverSection()

    # Set by load(): the folder the file was in, for resolving relative paths.
    _config_dir: Path = PrivateAttr(default=Path("."))
    # Each site's days off per year, filled by hub.hours.site_holidays: kept with the config it
    # was resolved from, so a reloaded or other config never sees another's days.
    _holiday_cache: dict = PrivateAttr(default_factory=dict)

    @field_validator("stations")
    @classmethod
    def _unique_ids(cls, value: list[StationEntry] | None) -> list[StationEntry] | None:
        seen: set[str] = set()
        for entry in value or []:
            # Station ids are unique across sites: events are keyed on (station, seq).
            if entry.id in seen:
                raise ValueError(f"station id {entry.id!r} is listed twice")
            seen.add(entry.id)
        return value

    @model_validator(mode="after")
    def _sites_are_not_stations(self) -> "HubConfig":
        # An office's bridge certificate is named after its site (docs/offices.md); on the
        # broker's station listeners it would count as a station of that name.
        sites = set(self.sites) | {s.site for s in self.stations or []}
        clash = sorted(sites & {s.id for s in self.stations or []})
        if clash:
            raise ValueError(f"stations: id {clash[0]!r} is also a site id; give sites and stations different ids")
        return self

    @field_validator("sites")
    @classmethod
    def _site_zones(cls, value: dict[str, SiteSection]) -> dict[str, SiteSection]:
        for site_id, site in value.items():
            check_id(site_id, "site")
            if site.time_zone is not None:
                cls._known_zone(site.time_zone)
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def _resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self._config_dir / path)

    def data_path(self) -> Path:
        """The data folder, relative paths taken from the config file's folder."""
        return self._resolve(self.data_dir)

    def staff_path(self) -> Path | None:
        """The staff file, if configured."""
        return None if self.staff_file is None else self._resolve(self.staff_file)

    def policy_control_dir(self) -> Path:
        """Where ``kagiban hub policy-key rotate`` and ``policy-reset`` leave signed control
        messages for the running hub to publish."""
        return self._resolve(self.data_dir) / "policy-control"

    def policy_key_path(self) -> Path:
        """The policy signing key file (it may not exist yet: the hub creates it)."""
        if self.policy.signing_key_file is None:
            return self.data_path() / POLICY_KEY_FILE_NAME
        return self._resolve(Path(os.path.expandvars(self.policy.signing_key_file)))

    def audit_key_path(self) -> Path:
        """The audit (checkpoint) signing key file (the hub creates it if missing)."""
        if self.audit.signing_key_file is None:
            return self.data_path() / AUDIT_KEY_FILE_NAME
        return self._resolve(Path(os.path.expandvars(self.audit.signing_key_file)))

    def audit_log_dir(self) -> Path | None:
        """The folder the checkpoint log is appended in, if configured."""
        if self.audit.log_dir is None:
            return None
        return self._resolve(Path(os.path.expandvars(self.audit.log_dir)))

    def db_url(self) -> str:
        """The database URL; a relative SQLite path is taken from the config file's folder."""
        if self.database.url is None:
            return f"sqlite:///{self.data_path() / DB_FILE_NAME}"
        url = make_url(self.database.url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            db = Path(url.database)
            if not db.is_absolute():
                return url.set(database=str(self._resolve(db))).render_as_string(hide_password=False)
        return self.database.url

    def mqtt_client_id(self) -> str:
        """The hub's MQTT client id: ``ingest.client_id``; in a failover pair, unless set,
        ``kagiban-hub-<hub_name>`` (two hubs with one id would take each other's session)."""
        if self.failover.enabled and "client_id" not in self.ingest.model_fields_set:
            return f"kagiban-hub-{self.failover.hub_name}"
        return self.ingest.client_id

    def failover_problem(self) -> tuple[str, str] | None:
        """(key, reason) if failover is enabled on a store that cannot share it, else None."""
        if self.failover.enabled and make_url(self.db_url()).get_backend_name() != "postgresql":
            return ("failover.enabled", "failover needs a PostgreSQL store (database.url): "
                    "a SQLite store serves one hub")
        return None

    def known_stations(self) -> dict[str, str] | None:
        """Listed station id -> site, or None when the file lists no stations (accept all)."""
        if self.stations is None:
            return None
        return {s.id: s.site for s in self.stations}

    def zone(self) -> ZoneInfo:
        """The hub's local time zone."""
        return ZoneInfo(self.time_zone)

    def site(self, site_id: str) -> SiteSection:
        """A site's settings; an unlisted site gets the defaults (one shared instance, as a
        listed site's section is: read, never changed)."""
        entry = self.sites.get(site_id)
        return entry if entry is not None else _default_site()

    def site_zone(self, site_id: str) -> ZoneInfo:
        """The time zone events of this site are shown and judged in."""
        # Not through site(): an unlisted site's default SiteSection is built (and its defaults
        # deep-copied) on every call, and pages ask this once per time they show.
        entry = self.sites.get(site_id)
        return ZoneInfo((entry.time_zone if entry is not None else None) or self.time_zone)

    def site_language(self, site_id: str) -> str:
        """The language ("ja" or "en") the hub's own texts for this site are published in."""
        entry = self.sites.get(site_id)
        return (entry.language if entry is not None else None) or self.web.default_language

    def station(self, station_id: str) -> StationEntry | None:
        """The listed entry of a station, if any."""
        for entry in self.stations or []:
            if entry.id == station_id:
                return entry
        return None

    def hours(self, station_id: str, site_id: str) -> HoursSection:
        """A station's business hours: its own, else its site's."""
        entry = self.station(station_id)
        if entry is not None and entry.hours is not None:
            return entry.hours
        return self.site(site_id).hours


@functools.cache
def _default_site() -> SiteSection:
    """The settings of a site the file does not list. Built once: building one deep-copies every
    default, and the ledgers ask for a row's site several times per row (bench/web.py: 2.8 of a
    month page's 6.8 profiled seconds)."""
    return SiteSection()


def load(path: str | Path) -> HubConfig:
    """Load and validate a hub file; ConfigError names the file, key and reason."""
    cfg = load_config(path, HubConfig)
    cfg._config_dir = Path(path).resolve().parent
    problem = cfg.failover_problem()
    if problem is not None:
        raise config_error(path, [Problem(*problem)])
    return cfg
