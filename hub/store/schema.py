"""The hub's tables as SQLAlchemy Core metadata, used by every query.

Migrations (hub/store/migrations) create and change these tables; this module describes the
current shape. Instants are UTC text from hub.store.timestamps (fixed width, so they sort), which
keeps the schema portable between SQLite and PostgreSQL.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false

GENESIS_HASH = "0" * 64

# Row numbers are the chain order; SQLite needs plain INTEGER for a rowid alias.
_ROW_NO = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

events = Table(
    "events",
    metadata,
    # Assigned by the writer (head + 1), never by a sequence, so a gap always means a deletion.
    Column("row_no", _ROW_NO, primary_key=True, autoincrement=False),
    Column("site", String(64), nullable=False),
    Column("station", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("at", String(40), nullable=False),  # ISO 8601 with the station's offset
    Column("at_utc", String(27), nullable=False),  # hub.store.timestamps form, for range queries
    Column("badge", String(32)),
    Column("person", String(64)),
    Column("data", Text, nullable=False),  # canonical JSON
    Column("received_at", String(27), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The station's outbox the event came from (protocol Event.incarnation); "" for events that
    # carried none, so (station, incarnation, seq) stays unique for them too (NULLs would not).
    Column("incarnation", String(36), nullable=False, server_default=""),
    # Set by ingest when ``at`` is far from ``received_at`` (hub.ingest.writer.time_flag): "future" or
    # "past"; None for a plausible time. Such an event is never a station's latest by its time.
    Column("time_flag", String(8)),
    # The station's signature (kagiban.event_signing): the exact JSON text it signed, the
    # base64 signature and the key's id; "" for events of a station with no registered key.
    Column("signed", Text, nullable=False, server_default=""),
    Column("signature", String(88), nullable=False, server_default=""),
    Column("key_id", String(16), nullable=False, server_default=""),
    UniqueConstraint("station", "incarnation", "seq"),
    UniqueConstraint("event_id"),
    Index(None, "station", "at_utc"),
    Index(None, "kind", "at_utc"),
    Index(None, "person", "at_utc"),
    Index(None, "station", "kind", "at_utc"),  # revision 0016
    Index(None, "at_utc"),  # revision 0020_pages: a month's first and last row
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("station", String(64), nullable=False),
    Column("taken_at", String(27), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("image", LargeBinary, nullable=False),
    Column("received_at", String(27), nullable=False),
    # The station's signature over event_signing.snapshot_statement(event_id, station, sha256).
    Column("signature", String(88), nullable=False, server_default=""),
    Column("key_id", String(16), nullable=False, server_default=""),
    # The station's clock was not synchronised when it took the frame (protocol revision 5).
    Column("clock_unsynced", Boolean, nullable=False, server_default=sa_false()),
    Index(None, "station", "taken_at"),
)

# Each station's Ed25519 public keys (``kagiban hub station-key``). A retired key (the unit was
# swapped or rebuilt) still verifies the rows it signed; the hub accepts new events signed with
# it only for outbox incarnations it already signed (the old unit's backlog).
station_keys = Table(
    "station_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station", String(64), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("public_key", String(44), nullable=False),  # base64 of the 32 raw bytes
    Column("added_at", String(27), nullable=False),
    Column("retired_at", String(27)),
    Column("note", Text, nullable=False, server_default=""),
    UniqueConstraint("key_id"),
    Index(None, "station"),
)

QUARANTINE_PAYLOAD_MAX = 64 * 1024

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", String(27), nullable=False),
    Column("topic", Text, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("size", Integer, nullable=False),  # of the whole payload
    Column("payload", LargeBinary, nullable=False),  # first QUARANTINE_PAYLOAD_MAX bytes
    # A refused signed event is kept once per (station, incarnation, seq, reason): a station
    # resends until acked, so later copies only count (``repeats``, the last at ``last_at``).
    # Not in the quarantine side log's entries: the first copy is what is kept as evidence.
    Column("station", String(64)),
    Column("incarnation", String(36)),
    Column("seq", BigInteger),
    Column("repeats", Integer, nullable=False, server_default="0"),
    Column("last_at", String(27)),
    Index(None, "reason", "received_at"),
    Index(None, "station", "incarnation", "seq", "reason"),
)

# stopped: the unit said so before a clean shutdown (not a lost connection).
STATION_STATES = ("online", "offline", "stopped", "unknown")

stations = Table(
    "stations",
    metadata,
    Column("station", String(64), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("kind", String(16)),
    Column("state", String(8), nullable=False),
    Column("state_since", String(27)),
    Column("last_seen", String(27)),
    Column("last_heartbeat", Text),  # JSON of the last heartbeat
    Column("policy_version", BigInteger),  # as the station last reported it
    # Station time minus receive time of its last heartbeat, seconds (None: not measured yet).
    Column("clock_offset_s", Float),
    # The last event and the last door event to arrive (events.row_no): a station's latest is
    # chosen by arrival, never by the time its clock wrote.
    Column("last_row_no", BigInteger),
    Column("door_row_no", BigInteger),
    CheckConstraint("state IN ('online', 'offline', 'stopped', 'unknown')", name="state"),
)

station_log = Table(
    "station_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station", String(64), nullable=False),
    Column("site", String(64), nullable=False),
    Column("state", String(8), nullable=False),
    Column("at", String(27), nullable=False),
    Column("received_at", String(27), nullable=False),
    Index(None, "station", "at"),
)

chain_head = Table(
    "chain_head",
    metadata,
    # Exactly one row, written in the same transaction as the rows it points at.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("row_no", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

policies = Table(
    "policies",
    metadata,
    Column("station", String(64), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # the JSON published, byte for byte
    Column("published_at", String(27), nullable=False),
)

# closed: ended by the hub itself (a station back online closes its offline/online pair).
ALERT_STATES = ("open", "acknowledged", "closed")

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("station", String(64), nullable=False),
    # forced, held_open, denied, after_hours, offline, online, seq_gap, outbox_filling, ...
    Column("rule", String(32), nullable=False),
    Column("severity", String(8), nullable=False),  # info, warning, critical
    Column("message", Text, nullable=False),  # plain English summary (logs, e-mail)
    Column("params", Text, nullable=False),  # JSON: what the page needs to say it in any language
    Column("event_id", String(36)),  # the stored event that raised it, if any
    Column("raised_at", String(27), nullable=False),
    Column("state", String(16), nullable=False),
    Column("acked_by", String(64)),
    Column("acked_at", String(27)),
    Column("ack_comment", Text),
    # Revision 0013: closed by the hub, when and why (a reason code, e.g. back_online).
    Column("closed_at", String(27)),
    Column("close_reason", String(32)),
    CheckConstraint("state IN ('open', 'acknowledged', 'closed')", name="state"),
    Index(None, "state", "raised_at"),
    Index(None, "station", "raised_at"),
    Index(None, "event_id"),
    Index(None, "raised_at"),  # revision 0016
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, nullable=False),
    Column("target", String(128), nullable=False),  # the target's label, never its URL
    Column("state", String(8), nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("next_try_at", String(27)),
    Column("delivered_at", String(27)),
    CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),
    Index(None, "state", "next_try_at"),
    Index(None, "alert_id"),
)

# A station a supervisor put in maintenance until ``ends_at`` (or ended early at
# ``ended_at``, by ``ended_by``, with ``end_comment``): its alerts are stored but not notified
# nor pinned (hub.alerting.maintenance). Each start and early end is in the ``maintenance``
# side log too.
maintenance = Table(
    "maintenance",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station", String(64), nullable=False),
    Column("starts_at", String(27), nullable=False),
    Column("ends_at", String(27), nullable=False),
    Column("reason", Text, nullable=False),
    Column("set_by", String(64), nullable=False),
    Column("ended_at", String(27)),
    Column("ended_by", String(64)),
    Column("end_comment", Text),
    Index(None, "station", "ends_at"),
)

# ``staff`` (revision 0017) files and reads near-miss cases and nothing else (hub.web.staff).
USER_ROLES = ("admin", "supervisor", "auditor", "staff")

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("role", String(16), nullable=False),
    Column("display_name", String(128), nullable=False),
    Column("language", String(8), nullable=False),
    Column("active", Integer, nullable=False),
    Column("created_at", String(27), nullable=False),
    # Raised on sign-out, password change and deactivation: a session cookie carries the
    # value it was issued with and is refused once they differ (hub.accounts.users, migration 0011).
    Column("session_gen", Integer, nullable=False, server_default="0"),
    CheckConstraint("role IN ('admin', 'supervisor', 'auditor', 'staff')", name="role"),
)

# The sites a web user is responsible for (supervisors) or audits (auditors):
# hub.accounts.sites, migration 0023_scopes. A user with no rows sees every site (a
# one-office hub changes nothing); admins see every site whatever is here.
user_sites = Table(
    "user_sites",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", name="fk_user_sites_user_id"), nullable=False),
    Column("site", String(64), nullable=False),
    PrimaryKeyConstraint("user_id", "site", name="pk_user_sites"),
)

# Personal API tokens (hub.accounts.tokens): only the token's SHA-256 is kept; ``key_id`` is the
# token's public part, to find the row and to name the token in lists and the change log.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("key_id", String(16), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False),  # sha256 hex of the whole token
    Column("name", String(64), nullable=False),
    Column("created_at", String(27), nullable=False),
    Column("last_used_at", String(27), nullable=True),
    Column("revoked_at", String(27), nullable=True),
    Column("revoked_by", String(64), nullable=True),
)
Index("ix_api_tokens_user", api_tokens.c.user_id)


# --- The registry (hub.registry): people, badges, trainings, designations, their change log.
# Calendar dates are DATE (local dates of the site, no instant); the log's instants are UTC
# text like everywhere else. Foreign keys are named here because the naming convention has
# no "fk" entry.

EMPLOYMENT_TYPES = ("regular", "shokutaku", "part_time")
BADGE_STATES = ("active", "lost", "revoked")
DESIGNATION_ROLES = ("holder", "standin")
OTHERS_DECISIONS = ("flag", "deny")

people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("staff_no", String(32), nullable=False, unique=True),  # 職員番号, the policy's person
    Column("name", String(128), nullable=False),  # 氏名
    Column("kana", String(128), nullable=False),  # reading (フリガナ)
    Column("section", String(128), nullable=False),  # 所属
    Column("employment", String(16), nullable=False),
    Column("role", String(64), nullable=False),  # e.g. 責任職, 庶務担当, 係員
    Column("active_from", Date),  # None: since always
    Column("active_to", Date),  # the last active day; None: open-ended
    # The owner name of their jobs at the print server; None: the staff number.
    Column("print_user", String(64)),
    CheckConstraint("employment IN ('regular', 'shokutaku', 'part_time')", name="employment"),
)

badges = Table(
    "badges",
    metadata,
    Column("badge_id", String(32), primary_key=True),  # hex, upper case, as the reader reports
    Column("person_id", Integer, ForeignKey("people.id", name="fk_badges_person_id"), nullable=False),
    Column("valid_from", Date),  # first valid day; None: from issue
    Column("valid_to", Date),  # last valid day; None: open-ended
    Column("state", String(8), nullable=False),
    Column("state_changed_at", String(27)),
    CheckConstraint("state IN ('active', 'lost', 'revoked')", name="state"),
    Index(None, "person_id"),
)

trainings = Table(
    "trainings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),  # 研修名
    Column("station_kinds", Text, nullable=False),  # JSON list of the station kinds requiring it
    Column("valid_days", Integer),  # None: never expires
)

training_sessions = Table(
    "training_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("training_id", Integer, ForeignKey("trainings.id", name="fk_training_sessions_training_id"),
           nullable=False),
    Column("held_on", Date, nullable=False),  # 実施日
    Column("place", String(128), nullable=False),
    Column("notes", Text, nullable=False),
    # One session per training and day: that is how the office's files name a session.
    UniqueConstraint("training_id", "held_on"),
)

attendance = Table(
    "attendance",
    metadata,
    Column("session_id", Integer, ForeignKey("training_sessions.id", name="fk_attendance_session_id"),
           nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", name="fk_attendance_person_id"), nullable=False),
    PrimaryKeyConstraint("session_id", "person_id"),
    Index(None, "person_id"),
)

designations = Table(
    "designations",
    metadata,
    Column("station", String(64), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", name="fk_designations_person_id"), nullable=False),
    Column("role", String(8), nullable=False),
    PrimaryKeyConstraint("station", "person_id"),
    CheckConstraint("role IN ('holder', 'standin')", name="role"),
)

station_settings = Table(
    "station_settings",
    metadata,
    Column("station", String(64), primary_key=True),
    # Trained people who are not designated (cabinet) or not on the day's roster (shredder).
    Column("others", String(8), nullable=False),
    # Outside business hours, people not on the after-hours list.
    Column("after_hours", String(8), nullable=False),
    CheckConstraint("others IN ('flag', 'deny')", name="others"),
    CheckConstraint("after_hours IN ('flag', 'deny')", name="after_hours"),
)

after_hours_users = Table(
    "after_hours_users",
    metadata,
    Column("station", String(64), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", name="fk_after_hours_users_person_id"),
           nullable=False),
    PrimaryKeyConstraint("station", "person_id"),
)

shredder_roster = Table(
    "shredder_roster",
    metadata,
    Column("station", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", name="fk_shredder_roster_person_id"),
           nullable=False),
    PrimaryKeyConstraint("station", "day", "person_id"),
)

registry_log = Table(
    "registry_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(27), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("entity", String(32), nullable=False),  # person, badge, training, session, ...
    Column("key", String(160), nullable=False),  # e.g. the staff number, the badge id
    Column("action", String(16), nullable=False),  # add, update, delete, revoke, ...
    Column("before", Text),  # JSON of the row before; None for an addition
    Column("after", Text),  # JSON of the row after; None for a deletion
    Index(None, "entity", "key"),
    Index(None, "at"),
)


# --- The work done with a key (作業内容), picked afterwards on the page (hub.ledgers.key_work).
# Append-only: a correction is a new row and the latest row of a use counts; each row is
# entered in the ``work`` side log in the same transaction. The key.used event is never touched.

key_work = Table(
    "key_work",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),  # the key.used event it describes
    Column("station", String(64), nullable=False),
    Column("work", String(64), nullable=False),  # a code of the site's key_work list
    Column("recorded_by", String(64), nullable=False),  # the signed-in user
    Column("recorded_at", String(27), nullable=False),
    Index(None, "event_id"),
)


# --- End-of-day close-outs (hub.ledgers.closeout): what was found at the configured time, and to whom
# it was sent. ``items`` is JSON (the close-out's lines, problems first); ``deliveries`` JSON
# per supervisor target label: state, attempts, last error.

closeouts = Table(
    "closeouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("day", Date, nullable=False),  # the site's local date
    Column("generated_at", String(27), nullable=False),
    Column("problems", Integer, nullable=False),
    Column("items", Text, nullable=False),
    Column("deliveries", Text, nullable=False),
    UniqueConstraint("site", "day"),
)


# --- Side logs (hub.store.chain side-log helpers): hash chains, one per part, of what the events
# chain does not hold: alerts and their acknowledgements, sign-ins, registry changes,
# quarantined messages, snapshot bytes. Each entry is canonical JSON; ``hash`` is
# sha256(prev_hash + entry). ``side_heads`` holds each part's last entry, updated in the same
# transaction, and signed checkpoints (``checkpoints``, and the log kept off the hub) hold
# the heads so a rewritten side log is named like a rewritten events chain.

SIDE_PARTS = ("alerts", "signins", "registry", "quarantine", "snapshots", "keys", "work", "maintenance", "nearmiss",
              "procedures", "verified", "failover")

side_log = Table(
    "side_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("part", String(16), nullable=False),
    Column("n", BigInteger, nullable=False),  # 1, 2, ... within its part
    Column("at", String(27), nullable=False),
    Column("entry", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("part", "n"),
)

side_heads = Table(
    "side_heads",
    metadata,
    Column("part", String(16), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# The hub's own copy of every checkpoint it signed (the signed JSON line as written off the
# hub); the status page reads store sizes from it, an auditor uses the copies kept elsewhere.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(27), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("store_bytes", BigInteger),
    Column("line", Text, nullable=False),
    Index(None, "at"),
)


# --- Near-miss (ヒヤリハット) cases (hub.nearmiss, revision 0017): filed by anyone with a sign-in,
# reviewed (countermeasure) and shared by a supervisor; every step is in the ``nearmiss`` side
# log. ``reporter`` is who filed it (or the name an imported paper report gave); ``anonymous``
# hides it from colleagues only. ``event_ids`` is a JSON list of the stored events (and so their
# snapshots) linked as evidence.

NEARMISS_CATEGORIES = ("keys", "printer", "shredder", "counter", "pc", "mail", "other")
NEARMISS_SEVERITIES = ("minor", "moderate", "serious")
NEARMISS_STATES = ("filed", "reviewed", "shared")

nearmiss_cases = Table(
    "nearmiss_cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", String(27), nullable=False),
    Column("station", String(64)),
    Column("place", String(128), nullable=False, server_default=""),
    Column("category", String(16), nullable=False),
    Column("what", Text, nullable=False),
    Column("why", Text, nullable=False),
    Column("severity", String(8), nullable=False),
    Column("anonymous", Boolean, nullable=False, server_default=sa_false()),
    Column("reporter", String(64), nullable=False),
    Column("filed_by", String(64), nullable=False),
    Column("filed_at", String(27), nullable=False),
    Column("source", String(8), nullable=False),  # form, alert, import
    Column("alert_id", Integer),
    Column("event_ids", Text, nullable=False, server_default="[]"),
    Column("state", String(8), nullable=False),
    Column("countermeasure", Text),
    Column("reviewed_by", String(64)),
    Column("reviewed_at", String(27)),
    Column("shared_by", String(64)),
    Column("shared_at", String(27)),
    CheckConstraint("state IN ('filed', 'reviewed', 'shared')", name="state"),
    CheckConstraint("category IN ('keys', 'printer', 'shredder', 'counter', 'pc', 'mail', 'other')", name="category"),
    CheckConstraint("severity IN ('minor', 'moderate', 'serious')", name="severity"),
    Index(None, "state", "shared_at"),
    Index(None, "occurred_at"),
)

# One row per month whose digest of shared cases went out (``cases``: JSON list of ids).
nearmiss_digests = Table(
    "nearmiss_digests",
    metadata,
    Column("month", String(7), primary_key=True),
    Column("sent_at", String(27), nullable=False),
    Column("cases", Text, nullable=False),
)


# --- Procedures (規程・手順書) and circulated notices (回覧) (hub.procedures, revision 0019): each
# document is versioned 1, 2, ...; a version's bytes are kept with their SHA-256. Who a document
# applies to is a filter on people (``sections``, ``roles``, ``employments``: JSON lists, empty
# = anyone); ``station_kinds`` (JSON list) are the kinds that refuse a person of the audience who
# has not confirmed the current version. A confirmation is one person's read-and-confirm of one
# version (``via``: recorded by a supervisor, or a roll-call session's taps). A training may
# require a version read (``training_procedures``). Every step is in the ``procedures`` side log.

PROCEDURE_KINDS = ("rule", "procedure", "notice")
CONFIRMATION_VIA = ("supervisor", "rollcall")

procedure_documents = Table(
    "procedure_documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("sections", Text, nullable=False, server_default="[]"),
    Column("roles", Text, nullable=False, server_default="[]"),
    Column("employments", Text, nullable=False, server_default="[]"),
    Column("station_kinds", Text, nullable=False, server_default="[]"),
    Column("created_by", String(64), nullable=False),
    Column("created_at", String(27), nullable=False),
    CheckConstraint("kind IN ('rule', 'procedure', 'notice')", name="kind"),
)

procedure_versions = Table(
    "procedure_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("document_id", Integer, ForeignKey("procedure_documents.id", name="fk_procedure_versions_document_id"),
           nullable=False),
    Column("number", Integer, nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("uploaded_by", String(64), nullable=False),
    Column("uploaded_at", String(27), nullable=False),
    UniqueConstraint("document_id", "number"),
)

procedure_confirmations = Table(
    "procedure_confirmations",
    metadata,
    Column("version_id", Integer, ForeignKey("procedure_versions.id", name="fk_procedure_confirmations_version_id"),
           nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", name="fk_procedure_confirmations_person_id"),
           nullable=False),
    Column("confirmed_at", String(27), nullable=False),
    Column("via", String(16), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("session_id", Integer),  # the roll-call session whose taps confirmed it
    PrimaryKeyConstraint("version_id", "person_id"),
    CheckConstraint("via IN ('supervisor', 'rollcall')", name="via"),
    Index(None, "person_id"),
)

training_procedures = Table(
    "training_procedures",
    metadata,
    Column("training_id", Integer, ForeignKey("trainings.id", name="fk_training_procedures_training_id"),
           primary_key=True),
    Column("version_id", Integer, ForeignKey("procedure_versions.id", name="fk_training_procedures_version_id"),
           nullable=False),
)


# --- Roll calls by badge tap (hub.rollcall, revision 0018_rollcall): a supervisor opens a session
# (a training, with its registry training session, or a 朝礼) at chosen ``rollcall`` stations
# (``stations``: JSON list); taps there are ``rollcall.tap`` events in the chain; the hub decides
# present/late/unexpected from each tap's time. ``rollcall_people`` lists who is expected, and at
# the close each person's outcome. Opening, closing and each outcome are registry_log rows.

ROLLCALL_KINDS = ("training", "meeting")
ROLLCALL_STATUSES = ("present", "late", "absent", "unexpected")

rollcall_sessions = Table(
    "rollcall_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("topic", String(128), nullable=False),
    Column("training_id", Integer),  # kind training: the catalogue's training
    Column("training_session_id", Integer),  # set at the close: the registry session attended
    Column("stations", Text, nullable=False),
    Column("starts_at", String(27), nullable=False),
    Column("window_min", Integer, nullable=False),  # on time up to starts_at + window_min
    Column("opened_at", String(27), nullable=False),
    Column("opened_by", String(64), nullable=False),
    Column("closed_at", String(27)),
    Column("closed_by", String(64)),
    # For read-and-confirm of procedures (another part of the registry); no foreign key here.
    Column("procedure_version_id", Integer),
    CheckConstraint("kind IN ('training', 'meeting')", name="kind"),
    Index(None, "closed_at"),
)

rollcall_people = Table(
    "rollcall_people",
    metadata,
    Column("session_id", Integer, ForeignKey("rollcall_sessions.id", name="fk_rollcall_people_session_id"),
           nullable=False),
    Column("staff_no", String(64), nullable=False),
    Column("expected", Boolean, nullable=False),
    Column("status", String(12)),  # set at the close
    Column("tapped_at", String(27)),
    Column("station", String(64)),
    Column("event_id", String(36)),
    PrimaryKeyConstraint("session_id", "staff_no"),
)

# Hub failover (hub.store.lease): one row per takeover of the shared store by a hub. The highest
# epoch is the hub allowed to write; every write transaction of a failover hub checks it under
# the store's write lock, so a hub that lost its lease cannot write (fencing).
# Each row has its entry in the ``failover`` side log, appended in the same transaction
# (hub.audit.entries.record_lease; revision 0024_lease_log).
hub_leases = Table(
    "hub_leases",
    metadata,
    Column("epoch", BigInteger, primary_key=True, autoincrement=False),
    Column("hub", String(64), nullable=False),
    Column("since", String(27), nullable=False),
    Column("web_url", String(512)),  # where the active hub's pages answer, for the standby's redirect
)
