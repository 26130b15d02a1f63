"""The hub's tables as SQLAlchemy Core metadata, used by every query.

Migrations (hub/migrations) create and change these tables; this module describes the
current shape. Instants are UTC text from hub.timestamps (fixed width, so they sort), which
keeps the schema portable between SQLite and PostgreSQL.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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
    Column("at_utc", String(27), nullable=False),  # hub.timestamps form, for range queries
    Column("badge", String(32)),
    Column("person", String(64)),
    Column("data", Text, nullable=False),  # canonical JSON
    Column("received_at", String(27), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("station", "seq"),
    UniqueConstraint("event_id"),
    Index(None, "station", "at_utc"),
    Index(None, "kind", "at_utc"),
    Index(None, "person", "at_utc"),
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
    Index(None, "station", "taken_at"),
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
    Index(None, "reason", "received_at"),
)

STATION_STATES = ("online", "offline", "unknown")

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
    CheckConstraint("state IN ('online', 'offline', 'unknown')", name="state"),
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

ALERT_STATES = ("open", "acknowledged")

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
    CheckConstraint("state IN ('open', 'acknowledged')", name="state"),
    Index(None, "state", "raised_at"),
    Index(None, "station", "raised_at"),
    Index(None, "event_id"),
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

USER_ROLES = ("admin", "supervisor", "auditor")

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
    CheckConstraint("role IN ('admin', 'supervisor', 'auditor')", name="role"),
)
