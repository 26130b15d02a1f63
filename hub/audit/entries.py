"""What each side log records, and the calls that append it.

One entry per change an auditor relies on, appended in the same transaction as the change
(hub.store.chain.append_side), so the log holds exactly what was committed:

- ``alerts``: ``raised`` (the stored alert's columns), ``acknowledged`` (who, when, comment)
  and ``closed`` (closed by the hub itself, not a person: when and the reason code, e.g. a
  station back online closes its offline/online pair);
- ``signins``: ``signed_in``, ``refused`` (a failed sign-in), ``signed_out`` and ``unlocked``
  (an admin cleared an account's or an address's failed sign-ins: ``by``, ``user`` or
  ``address``);
- ``registry``: every ``registry_log`` row, as stored;
- ``quarantine``: every quarantined message (its columns, the payload's sha256);
- ``snapshots``: ``stored`` (sha256 and size of the image bytes) and ``expired`` (deleted
  after the retention period; its hash stays here);
- ``keys``: every station key ``added`` or ``retired`` with the tooling (hub.stations.keys),
  with its validity period as it then stood;
- ``work``: every ``key_work`` row, as stored: the work done with a key (作業内容), who
  recorded it and when (hub.ledgers.key_work).
- ``maintenance``: every maintenance period a supervisor ``started`` (station, from, until,
  reason, who) and ``ended`` early (when, who, comment; a new period for the same station
  ends the one before it), hub.alerting.maintenance.
- ``failover``: every ``hub_leases`` row, ``taken`` (epoch, hub, since, web_url as stored): which
  hub took the shared store over when (hub.store.lease); SQLite stores have none.

``kagiban verify`` (hub.audit.verify) holds the tables against these entries both ways.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, func, select

from hub.store.chain import append_side
from hub.store.db import begin_write
from hub.store.schema import alerts, hub_leases, maintenance, quarantine, registry_log, snapshots, station_keys
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

ALERT_COLUMNS = ("site", "station", "rule", "severity", "message", "params", "event_id", "raised_at")
ACK_COLUMNS = ("acked_by", "acked_at", "ack_comment")
CLOSE_COLUMNS = ("closed_at", "close_reason")
REGISTRY_COLUMNS = ("id", "at", "actor", "entity", "key", "action", "before", "after")
QUARANTINE_COLUMNS = ("id", "received_at", "topic", "reason", "detail", "size")
SNAPSHOT_COLUMNS = ("event_id", "site", "station", "taken_at", "content_type", "sha256", "received_at")
SIGNIN_OPS = ("signed_in", "refused", "signed_out", "unlocked")
KEY_COLUMNS = ("station", "key_id", "public_key", "added_at", "retired_at")
KEY_OPS = ("added", "retired")
WORK_COLUMNS = ("id", "event_id", "station", "work", "recorded_by", "recorded_at")
MAINTENANCE_COLUMNS = ("id", "station", "starts_at", "ends_at", "reason", "set_by")
MAINTENANCE_END_COLUMNS = ("id", "station", "ended_at", "ended_by", "end_comment")
LEASE_COLUMNS = ("epoch", "hub", "since", "web_url")
FAILOVER_PART = "failover"

# A row as a dict of its columns, or as SQLAlchemy reads it (keyed by name or column).
Row = Mapping[str, Any] | RowMapping


# --- entries ---

def alert_raised(alert_id: int, row: Row) -> dict[str, Any]:
    return {"op": "raised", "alert": alert_id, **{k: row[k] for k in ALERT_COLUMNS}}


def alert_acked(alert_id: int, row: Row) -> dict[str, Any]:
    return {"op": "acknowledged", "alert": alert_id, **{k: row[k] for k in ACK_COLUMNS}}


def alert_closed(alert_id: int, row: Mapping[str, Any]) -> dict[str, Any]:
    return {"op": "closed", "alert": alert_id, "by": "system", **{k: row[k] for k in CLOSE_COLUMNS}}


def registry_entry(row: Row) -> dict[str, Any]:
    return {k: row[k] for k in REGISTRY_COLUMNS}


def quarantine_entry(row: Row) -> dict[str, Any]:
    return {**{k: row[k] for k in QUARANTINE_COLUMNS},
            "payload_sha256": hashlib.sha256(row["payload"]).hexdigest()}


def snapshot_stored(row: Row, size: int) -> dict[str, Any]:
    return {"op": "stored", **{k: row[k] for k in SNAPSHOT_COLUMNS}, "bytes": size}


def snapshot_expired(event_id: str, sha256: str, at: str) -> dict[str, Any]:
    return {"op": "expired", "event_id": event_id, "sha256": sha256, "at": at}


def key_entry(op: str, row: Row) -> dict[str, Any]:
    """A station key as the tooling left it (``op``: added, retired)."""
    if op not in KEY_OPS:
        raise ValueError(f"unknown key op {op!r}")
    return {"op": op, **{k: row[k] for k in KEY_COLUMNS}}


def maintenance_started(row: Row) -> dict[str, Any]:
    return {"op": "started", **{k: row[k] for k in MAINTENANCE_COLUMNS}}


def maintenance_ended(row: Row) -> dict[str, Any]:
    return {"op": "ended", **{k: row[k] for k in MAINTENANCE_END_COLUMNS}}


def lease_taken(row: Row) -> dict[str, Any]:
    """A takeover of the shared store: the ``hub_leases`` row as stored."""
    return {"op": "taken", **{k: row[k] for k in LEASE_COLUMNS}}


# --- appending (each in the caller's transaction) ---

def record_alert_raised(conn: Connection, alert_id: int, row: Row) -> None:
    append_side(conn, "alerts", [(row["raised_at"], alert_raised(alert_id, row))])


def record_alert_acked(conn: Connection, alert_id: int, row: Row) -> None:
    append_side(conn, "alerts", [(row["acked_at"], alert_acked(alert_id, row))])


def record_alert_closed(conn: Connection, alert_id: int, row: Mapping[str, Any]) -> None:
    append_side(conn, "alerts", [(row["closed_at"], alert_closed(alert_id, row))])


def record_registry(conn: Connection, row: Mapping[str, Any]) -> None:
    append_side(conn, "registry", [(row["at"], registry_entry(row))])


def record_quarantine(conn: Connection, rows: Sequence[Row]) -> None:
    append_side(conn, "quarantine", [(r["received_at"], quarantine_entry(r)) for r in rows])


def record_snapshots(conn: Connection, rows: Sequence[Row]) -> None:
    append_side(conn, "snapshots", [(r["received_at"], snapshot_stored(r, len(r["image"]))) for r in rows])


def record_key(conn: Connection, op: str, row: Row) -> None:
    append_side(conn, "keys", [(row["retired_at"] if op == "retired" else row["added_at"], key_entry(op, row))])


def record_work(conn: Connection, row: Row) -> None:
    """A ``key_work`` row as inserted (its ``id`` included)."""
    append_side(conn, "work", [(row["recorded_at"], {k: row[k] for k in WORK_COLUMNS})])


def record_maintenance_started(conn: Connection, row: Row) -> None:
    append_side(conn, "maintenance", [(row["starts_at"], maintenance_started(row))])


def record_maintenance_ended(conn: Connection, rows: Sequence[Row]) -> None:
    append_side(conn, "maintenance", [(r["ended_at"], maintenance_ended(r)) for r in rows])


def record_lease(conn: Connection, row: Row) -> None:
    """A ``hub_leases`` row as inserted, in the takeover's own transaction."""
    append_side(conn, FAILOVER_PART, [(row["since"], lease_taken(row))])


def record_signin(engine: Engine, op: str, user: str | None, remote: str | None, *, via: str = "form") -> None:
    """A sign-in, failed sign-in or sign-out, in its own transaction; a failure is logged and
    never stops the page (the application log still has the line). ``via`` "basic": HTTP
    Basic credentials on a request (entered as ``"via": "basic"``)."""
    if op not in SIGNIN_OPS:
        raise ValueError(f"unknown sign-in op {op!r}")
    at = utc_text(now_utc())
    try:
        with begin_write(engine) as conn:
            entry = {"op": op, "user": (user or "")[:64], "at": at, "from": remote or ""}
            if via != "form":
                entry["via"] = via
            append_side(conn, "signins", [(at, entry)])
    except Exception:
        _LOG.exception("could not record %s of %r in the sign-in log", op, user)


def record_unlock(engine: Engine, by: str, remote: str | None, scope: str, name: str) -> None:
    """An admin (``by``, from ``remote``) cleared the failed sign-ins of one account or address
    (``scope`` "account": ``name`` goes in ``user``; "address": in ``address``). Raises when it
    cannot be recorded: the page then says so instead of claiming an unrecorded unlock."""
    if scope not in ("account", "address"):
        raise ValueError(f"unknown unlock scope {scope!r}")
    at = utc_text(now_utc())
    entry = {"op": "unlocked", "by": by[:64], "at": at, "from": remote or "",
             "user" if scope == "account" else "address": name[:64]}
    with begin_write(engine) as conn:
        append_side(conn, "signins", [(at, entry)])


def next_quarantine_id(conn: Connection) -> int:
    """The id the next quarantine row gets (ingest numbers its rows itself, to log them)."""
    return (conn.execute(select(func.max(quarantine.c.id))).scalar() or 0) + 1


# --- rows stored before the side logs existed (migration 0008) ---

def adopt_existing(conn: Connection) -> None:
    """Enter every row already stored into its side log, in id order."""
    # Only the columns of revision 0008 (this runs inside it; 0013 adds closed_at, close_reason).
    a_cols = [alerts.c[k] for k in ("id", "state", *ALERT_COLUMNS, *ACK_COLUMNS)]
    for row in conn.execute(select(*a_cols).order_by(alerts.c.id)).mappings().all():
        record_alert_raised(conn, row["id"], row)
        if row["state"] == "acknowledged":
            record_alert_acked(conn, row["id"], row)
    reg = conn.execute(select(registry_log).order_by(registry_log.c.id)).mappings().all()
    append_side(conn, "registry", [(r["at"], registry_entry(r)) for r in reg])
    # Only the columns of revision 0008 (this runs inside it; later ones add more).
    q_cols = [quarantine.c[k] for k in (*QUARANTINE_COLUMNS, "payload")]
    q = conn.execute(select(*q_cols).order_by(quarantine.c.id)).mappings().all()
    record_quarantine(conn, list(q))
    cols = [snapshots.c[k] for k in SNAPSHOT_COLUMNS] + [func.length(snapshots.c.image).label("size")]
    snaps = conn.execute(select(*cols).order_by(snapshots.c.received_at, snapshots.c.event_id)).mappings().all()
    append_side(conn, "snapshots", [(r["received_at"], snapshot_stored(r, r["size"])) for r in snaps])


def adopt_keys(conn: Connection) -> None:
    """Enter the keys registered before the key log existed (migration 0010): each added, and
    retired if it is, in registration order."""
    for row in conn.execute(select(station_keys).order_by(station_keys.c.id)).mappings().all():
        record_key(conn, "added", {**row, "retired_at": None})
        if row["retired_at"] is not None:
            record_key(conn, "retired", row)


def adopt_maintenance(conn: Connection) -> None:
    """Enter the maintenance periods set before the maintenance log existed (migration 0015):
    each started, and ended if it was ended early, in id order."""
    # Only the columns of revision 0015 (this runs inside it).
    cols = [maintenance.c[k] for k in (*MAINTENANCE_COLUMNS, "ended_at", "ended_by", "end_comment")]
    for row in conn.execute(select(*cols).order_by(maintenance.c.id)).mappings().all():
        record_maintenance_started(conn, row)
        if row["ended_at"] is not None:
            record_maintenance_ended(conn, [row])


def adopt_leases(conn: Connection) -> None:
    """Enter the takeovers recorded before the failover log existed (migration 0024_lease_log),
    in epoch order."""
    # Only the columns of revision 0024 (this runs inside it; later ones may add more).
    cols = [hub_leases.c[k] for k in LEASE_COLUMNS]
    rows = conn.execute(select(*cols).order_by(hub_leases.c.epoch)).mappings().all()
    append_side(conn, FAILOVER_PART, [(r["since"], lease_taken(r)) for r in rows])
