"""``kagiban verify``: check every part of the audit trail and say, one line per part, whether
it is intact.

The parts are a list of checks (``PARTS``), each given the same :class:`Context` and returning
one :class:`PartResult`: the events chain; the stations' signatures over their events and
snapshots (hub.audit.signatures); the side logs (alerts and acknowledgements, sign-ins,
registry changes, quarantined messages, snapshot bytes, the station keys the tooling added and
retired, maintenance periods, near-miss cases, procedure documents, versions and
confirmations, the takeovers of a failover pair's shared store), each recomputed and held against
its table both ways; the verified prefix's marks (hub.audit.prefix), each held against the row it
vouched for; the roll calls against their entries in the registry's side log; and, with
``--checkpoints PATH``, the signed checkpoints kept off the hub, each of which the store must
extend (its rows, seqs and side logs, and the station keys it recorded).
"""
from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from hub.audit import prefix
from hub.audit.checkpoints import Checkpoint, SignedLine, key_digest, read_log
from hub.audit.entries import (ACK_COLUMNS, ALERT_COLUMNS, CLOSE_COLUMNS, FAILOVER_PART, KEY_COLUMNS, LEASE_COLUMNS,
                               MAINTENANCE_COLUMNS, MAINTENANCE_END_COLUMNS, REGISTRY_COLUMNS, WORK_COLUMNS,
                               quarantine_entry)
from hub.nearmiss import trail as nearmiss_trail
from hub.procedures import trail as procedures_trail
from hub.rollcall import trail as rollcall_trail
from hub.store.chain import SideReport, verify, verify_side
from hub.store.db import make_engine, read_snapshot
from hub.store.schema import (GENESIS_HASH, alerts, events, hub_leases, key_work, maintenance, quarantine, registry_log,
                              side_heads, side_log, snapshots, station_keys)
from hub.audit.signatures import check_signatures
from kagiban.ed25519 import PublicKey
from kagiban.signing import key_id

_LOG = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_CANNOT_VERIFY = 2

_SNAP_ROWS = 50  # snapshots read at a time (each up to 4 MiB)


@dataclass(frozen=True)
class Context:
    """What every part's check gets: the store, and the checkpoints to hold it against."""

    engine: Engine
    checkpoints: Path | None = None
    audit_key: PublicKey | None = None


@dataclass(frozen=True)
class PartResult:
    """One part's verdict; ``line`` is what is printed for it."""

    part: str
    ok: bool
    line: str
    cannot: bool = False  # the part could not be checked at all (exit 2 unless something is tampered)


Part = Callable[[Context], PartResult]


def _ok(part: str, text: str) -> PartResult:
    return PartResult(part, True, f"{part}: OK: {text}")


def _bad(part: str, text: str) -> PartResult:
    return PartResult(part, False, f"{part}: TAMPERED: {text}")


# --- events ---

def check_events(ctx: Context) -> PartResult:
    """The events hash chain against its head (hub.store.chain.verify)."""
    report = verify(ctx.engine)
    text = str(report)
    return PartResult("events", report.ok, f"events: {text}")


# --- side logs ---

def _side_problem(rep: SideReport) -> str:
    what = {"altered": "content altered", "relinked": "does not follow the entry before it",
            "removed": "entries removed before it", "truncated": "entries removed at the end",
            "appended": "entries added after the head"}[rep.problem or ""]
    return f"log entry {rep.n} {what}" + (f": {rep.detail}" if rep.detail else "")


def _side(ctx: Context, part: str, compare: Callable[[Connection, list[dict[str, Any]]], tuple[str | None, str]]
          ) -> PartResult:
    with read_snapshot(ctx.engine) as conn:
        rep = verify_side(conn, part)
        if rep.problem is not None:
            return _bad(part, f"{len(rep.entries)} entries read; {_side_problem(rep)}")
        bodies = [dict(e.body(), _n=e.n) for e in rep.entries]
        problem, counts = compare(conn, bodies)
    if problem is not None:
        return _bad(part, f"{len(bodies)} entries; {problem}")
    return _ok(part, f"{len(bodies)} entries{counts}, log intact and matching the store")


def _alerts(conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
    rows = {r["id"]: r for r in conn.execute(select(alerts)).mappings()}
    # Keyed by the alert id as the log has it (a tampered log may hold anything there).
    raised: dict[Any, dict[str, Any]] = {}
    acked: dict[Any, dict[str, Any]] = {}
    closed: dict[Any, dict[str, Any]] = {}
    for e in entries:
        op = e.get("op")
        (raised if op == "raised" else closed if op == "closed" else acked)[e.get("alert")] = e
    for alert_id, e in raised.items():
        row = rows.get(alert_id)
        if row is None:
            return f"alert {alert_id} ({e.get('rule')} at {e.get('station')}, {e.get('raised_at')}) deleted: " \
                   f"log entry {e['_n']} records it raised", ""
        changed = [k for k in ALERT_COLUMNS if row[k] != e.get(k)]
        if changed:
            return f"alert {alert_id} altered ({', '.join(changed)}) against log entry {e['_n']}", ""
    for alert_id, e in acked.items():
        row = rows.get(alert_id)
        if row is None:
            continue  # named above
        changed = [k for k in ACK_COLUMNS if row[k] != e.get(k)] + (["state"] if row["state"] != "acknowledged" else [])
        if changed:
            return f"acknowledgement of alert {alert_id} altered ({', '.join(changed)}) against log entry " \
                   f"{e['_n']} (by {e.get('acked_by')} at {e.get('acked_at')})", ""
    for alert_id, e in closed.items():
        row = rows.get(alert_id)
        if row is None:
            continue  # named above
        changed = [k for k in CLOSE_COLUMNS if row[k] != e.get(k)] + (["state"] if row["state"] != "closed" else [])
        if changed:
            return f"closing of alert {alert_id} altered ({', '.join(changed)}) against log entry " \
                   f"{e['_n']} (at {e.get('closed_at')})", ""
    for alert_id, row in sorted(rows.items()):
        if alert_id not in raised:
            return f"alert {alert_id} is not in the log (inserted)", ""
        if row["state"] == "acknowledged" and alert_id not in acked:
            return f"acknowledgement of alert {alert_id} is not in the log (by {row['acked_by']})", ""
        if row["state"] == "closed" and alert_id not in closed:
            return f"closing of alert {alert_id} is not in the log ({row['close_reason']})", ""
    closes = f", {len(closed)} closed by the hub" if closed else ""
    return None, f" ({len(raised)} alerts, {len(acked)} acknowledgements{closes})"


def _mirror(table, key: str, entry_of: Callable[[dict[str, Any]], dict[str, Any]], what: str):
    """A compare for a part whose entries mirror a table's rows one to one."""
    def compare(conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
        rows = {r[key]: dict(r) for r in conn.execute(select(table)).mappings()}
        logged = set()
        for e in entries:
            logged.add(e.get(key))
            row = rows.get(e.get(key))
            if row is None:
                return f"{what} {e.get(key)} deleted: log entry {e['_n']} records it", ""
            expected = entry_of(row)
            changed = [k for k in expected if expected[k] != e.get(k)]
            if changed:
                return f"{what} {e.get(key)} altered ({', '.join(changed)}) against log entry {e['_n']}", ""
        extra = sorted(set(rows) - logged)
        if extra:
            return f"{what} {extra[0]} is not in the log (inserted)", ""
        return None, ""
    return compare


def check_alerts(ctx: Context) -> PartResult:
    """Alerts raised and acknowledged (who, when, comment) against the alerts log."""
    return _side(ctx, "alerts", _alerts)


def check_signins(ctx: Context) -> PartResult:
    """Sign-ins, failed sign-ins, sign-outs and unlocks: the chain itself is the record."""
    def count(_conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
        refused = sum(1 for e in entries if e.get("op") == "refused")
        unlocked = sum(1 for e in entries if e.get("op") == "unlocked")
        return None, f" ({refused} refused, {unlocked} unlocked)" if unlocked else f" ({refused} refused)"
    return _side(ctx, "signins", count)


def check_registry(ctx: Context) -> PartResult:
    """The registry's change log against its side log."""
    return _side(ctx, "registry", _mirror(registry_log, "id",
                                          lambda r: {k: r[k] for k in REGISTRY_COLUMNS}, "registry change"))


def check_quarantine(ctx: Context) -> PartResult:
    """Quarantined messages against their side log (payload bytes by hash)."""
    return _side(ctx, "quarantine", _mirror(quarantine, "id", quarantine_entry, "quarantined message"))


def _snapshots(conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
    stored = {e["event_id"]: e for e in entries if e.get("op") == "stored"}
    expired = {e["event_id"]: e for e in entries if e.get("op") == "expired"}
    seen: set[str] = set()
    result = conn.execution_options(yield_per=_SNAP_ROWS).execute(
        select(snapshots.c.event_id, snapshots.c.sha256, snapshots.c.image))
    for event_id, sha, image in result:
        seen.add(event_id)
        e = stored.get(event_id)
        if e is None:
            result.close()
            return f"snapshot of event {event_id} is not in the log (inserted)", ""
        if sha != e.get("sha256") or hashlib.sha256(image).hexdigest() != e.get("sha256"):
            result.close()
            return f"snapshot of event {event_id} replaced: its bytes do not match log entry {e['_n']}", ""
    for event_id, e in stored.items():
        if event_id not in seen and event_id not in expired:
            return f"snapshot of event {event_id} deleted: log entry {e['_n']} records it, " \
                   f"and no expiry", ""
    return None, f" ({len(seen)} stored, {len(expired)} expired)"


def check_snapshots(ctx: Context) -> PartResult:
    """Snapshot bytes against their recorded hashes; expired ones are named as such."""
    return _side(ctx, "snapshots", _snapshots)


def _signed_by(conn: Connection, kid: str, upto: int | None = None) -> str:
    """The rows ``kid`` signed (up to row ``upto``), as verify names them."""
    query = select(events.c.row_no, events.c.station, events.c.seq).where(events.c.key_id == kid)
    if upto is not None:
        query = query.where(events.c.row_no <= upto)
    rows = conn.execute(query.order_by(events.c.row_no)).all()
    if not rows:
        return "it signed no stored row"
    named = ", ".join(f"row {r.row_no} ({r.station} seq {r.seq})" for r in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"rows it signed: {named}{more} ({len(rows)} rows)"


def _keys(conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
    logged: dict[Any, dict[str, Any]] = {}  # key id -> its last entry: the state the tooling left
    for entry in entries:
        logged[entry.get("key_id")] = entry
    rows = {r["key_id"]: r for r in conn.execute(select(station_keys).order_by(station_keys.c.id)).mappings()}
    for kid, row in rows.items():
        e = logged.get(kid)
        if e is None:
            return (f"station key {kid} of {row['station']} (added_at {row['added_at']}) is not in the key log: "
                    f"added outside the tooling; {_signed_by(conn, kid)}"), ""
        changed = [k for k in KEY_COLUMNS if row[k] != e.get(k)]
        if changed == ["retired_at"] and e.get("retired_at") is None:
            return (f"station key {kid} of {row['station']} retired outside the tooling (retired_at "
                    f"{row['retired_at']}; log entry {e['_n']} has it active)"), ""
        if changed:
            return (f"station key {kid} of {row['station']} altered ({', '.join(changed)}) against log entry "
                    f"{e['_n']}; {_signed_by(conn, kid)}"), ""
    for kid, e in logged.items():
        if kid not in rows:
            return f"station key {kid} of {e.get('station')} deleted: log entry {e['_n']} records it", ""
    active = sum(1 for r in rows.values() if r["retired_at"] is None)
    return None, f" ({len(rows)} keys, {active} active)"


def _logged_side(ctx: Context, part: str, log: str,
                 compare: Callable[[Connection, list[dict[str, Any]]], tuple[str | None, str]]) -> PartResult:
    """``_side`` for a log added after stores existed: a store that predates it is said so, not failed."""
    with ctx.engine.connect() as conn:
        if conn.execute(select(side_heads.c.n).where(side_heads.c.part == part)).first() is None:
            return PartResult(part, True, f"{part}: not checked (this store predates the {log} log)")
    return _side(ctx, part, compare)


def check_keys(ctx: Context) -> PartResult:
    """The station-key registry against the key log the tooling appends (hub.stations.keys)."""
    return _logged_side(ctx, "keys", "key", _keys)


def check_work(ctx: Context) -> PartResult:
    """The work recorded for key uses (作業内容) against its side log (who, when, what)."""
    return _logged_side(ctx, "work", "work", _mirror(key_work, "id", lambda r: {k: r[k] for k in WORK_COLUMNS},
                                                     "key work record"))


def _maintenance(conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
    rows = {r["id"]: r for r in conn.execute(select(maintenance)).mappings()}
    started: dict[Any, dict[str, Any]] = {}
    ended: dict[Any, dict[str, Any]] = {}
    for e in entries:
        (ended if e.get("op") == "ended" else started)[e.get("id")] = e
    for period_id, e in started.items():
        row = rows.get(period_id)
        if row is None:
            return (f"maintenance period {period_id} of {e.get('station')} (set by {e.get('set_by')}) deleted: "
                    f"log entry {e['_n']} records it"), ""
        changed = [k for k in MAINTENANCE_COLUMNS if row[k] != e.get(k)]
        if changed:
            return f"maintenance period {period_id} altered ({', '.join(changed)}) against log entry {e['_n']}", ""
    for period_id, e in ended.items():
        row = rows.get(period_id)
        if row is None:
            continue  # named above
        changed = [k for k in MAINTENANCE_END_COLUMNS if row[k] != e.get(k)]
        if changed:
            return (f"end of maintenance period {period_id} altered ({', '.join(changed)}) against log entry "
                    f"{e['_n']} (by {e.get('ended_by')} at {e.get('ended_at')})"), ""
    for period_id, row in sorted(rows.items()):
        if period_id not in started:
            return f"maintenance period {period_id} of {row['station']} is not in the log (inserted)", ""
        if row["ended_at"] is not None and period_id not in ended:
            return f"end of maintenance period {period_id} is not in the log (by {row['ended_by']})", ""
    return None, f" ({len(rows)} periods, {len(ended)} ended early)"


def check_maintenance(ctx: Context) -> PartResult:
    """Maintenance periods (who, when, until, reason; early ends) against the maintenance log."""
    return _logged_side(ctx, "maintenance", "maintenance", _maintenance)


def _takeover(epoch: Any, hub: Any, since: Any) -> str:
    return f"takeover epoch {epoch} ({hub} since {since})"


def _failover(conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
    rows = {r["epoch"]: r for r in conn.execute(select(hub_leases)).mappings()}
    logged: dict[Any, dict[str, Any]] = {}
    for e in entries:
        epoch = e.get("epoch")
        if type(epoch) is not int:  # a log rewritten by hand may hold anything here
            return f"log entry {e['_n']} names no takeover epoch ({epoch!r})", ""
        if epoch in logged:
            return (f"log entry {e['_n']} records takeover epoch {epoch} a second time "
                    f"(first in log entry {logged[epoch]['_n']})"), ""
        logged[epoch] = e
        row = rows.get(epoch)
        if row is None:
            return f"{_takeover(epoch, e.get('hub'), e.get('since'))} deleted: log entry {e['_n']} records it", ""
        changed = [k for k in LEASE_COLUMNS if row[k] != e.get(k)]
        if changed:
            return (f"{_takeover(epoch, e.get('hub'), e.get('since'))} altered ({', '.join(changed)}) against "
                    f"log entry {e['_n']}: the store says {', '.join(f'{k} {row[k]}' for k in changed)}"), ""
    for epoch, row in sorted(rows.items()):
        if epoch not in logged:
            return f"{_takeover(epoch, row['hub'], row['since'])} is not in the log (inserted)", ""
    # A takeover numbers itself newest + 1 under the write lock and no row is ever deleted, so
    # the epochs run 1..N: a gap is a takeover deleted together with its log entry.
    for expected, epoch in enumerate(sorted(rows), 1):
        if epoch != expected:
            return f"takeover epoch {expected} is missing (the next stored is epoch {epoch}): " \
                   "deleted together with its log entry", ""
    return None, f" ({len(rows)} takeovers)"


def check_failover(ctx: Context) -> PartResult:
    """The takeovers of a failover pair's shared store (``hub_leases``: which hub was active
    since when) against the failover log; a store without failover has none."""
    return _logged_side(ctx, FAILOVER_PART, "failover", _failover)


def check_nearmiss(ctx: Context) -> PartResult:
    """Near-miss cases (filed, reviewed, shared) and their digests against the near-miss log."""
    return _logged_side(ctx, nearmiss_trail.PART, "near-miss", nearmiss_trail.compare)


def check_procedures(ctx: Context) -> PartResult:
    """Procedure documents, versions (their bytes hashed again) and confirmations against the
    procedures log."""
    return _logged_side(ctx, procedures_trail.PART, "procedures", procedures_trail.compare)


def check_verified(ctx: Context) -> PartResult:
    """The verified prefix's marks: each one's row still holds the hash it recorded when the hub
    recomputed the chain up to it (a prefix rewritten later, chain and head recomputed, is named)."""
    return _logged_side(ctx, prefix.PART, "verified-prefix", prefix.compare)


def check_rollcall(ctx: Context) -> PartResult:
    """Roll calls (opened, closed, each person's outcome) against their entries in the registry's
    side log (they keep no log of their own: hub.rollcall.trail)."""
    with ctx.engine.connect() as conn, conn.begin():
        if "rollcall_sessions" not in inspect(conn).get_table_names():
            return PartResult("rollcall", True, "rollcall: not checked (this store predates roll calls)")
        rep = verify_side(conn, "registry")
        if rep.problem is not None:
            return _bad("rollcall", "not checked: the registry log it is held against is broken (see registry)")
        bodies = [dict(e.body(), _n=e.n) for e in rep.entries]
        problem, counts = rollcall_trail.compare(conn, bodies)
    if problem is not None:
        return _bad("rollcall", problem)
    return _ok("rollcall", f"matching the registry log{counts}")


# --- checkpoints ---

class _Lookups:
    """The store's answers for checkpoint checks, each asked once: a hub makes a checkpoint
    every few minutes, so consecutive ones mostly name the same rows, seqs and entries."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.last_row = conn.execute(select(func.max(events.c.row_no))).scalar() or 0
        self._row_hash: dict[int, str | None] = {0: GENESIS_HASH}
        self._stored: dict[tuple[str, str, int], bool] = {}
        self._side: dict[tuple[str, int], str | None] = {}
        self._side_top: dict[str, int] = {}
        self.keys = {r["key_id"]: r for r in conn.execute(select(station_keys)).mappings()} \
            if "station_keys" in inspect(conn).get_table_names() else {}

    def row_hash(self, row_no: int) -> str | None:
        if row_no not in self._row_hash:
            self._row_hash[row_no] = self.conn.execute(
                select(events.c.hash).where(events.c.row_no == row_no)).scalar()
        return self._row_hash[row_no]

    def stored(self, station: str, incarnation: str, seq: int) -> bool:
        key = (station, incarnation, seq)
        if key not in self._stored:
            self._stored[key] = self.conn.execute(select(events.c.row_no).where(
                events.c.station == station, events.c.incarnation == incarnation,
                events.c.seq == seq)).scalar() is not None
        return self._stored[key]

    def side_hash(self, part: str, n: int) -> str | None:
        if (part, n) not in self._side:
            self._side[(part, n)] = self.conn.execute(
                select(side_log.c.hash).where(side_log.c.part == part, side_log.c.n == n)).scalar()
        return self._side[(part, n)]

    def side_top(self, part: str) -> int:
        if part not in self._side_top:
            self._side_top[part] = self.conn.execute(
                select(func.max(side_log.c.n)).where(side_log.c.part == part)).scalar() or 0
        return self._side_top[part]


def _key_contradiction(store: _Lookups, cp: Checkpoint) -> str | None:
    """What in the station-key registry contradicts the keys ``cp`` recorded (version 2)."""
    if cp.keys is None:
        return None
    for kid, digest in sorted(cp.keys.items()):
        row = store.keys.get(kid)
        if row is None:
            return f"station key {kid}, registered at the checkpoint, is not in the registry (deleted)"
        if key_digest(row["station"], row["public_key"], row["added_at"], row["retired_at"]) == digest:
            continue
        # Retired since (later than the checkpoint): the validity period the checkpoint saw, extended.
        if row["retired_at"] is not None and row["retired_at"] > cp.at \
                and key_digest(row["station"], row["public_key"], row["added_at"], None) == digest:
            continue
        return (f"station key {kid} of {row['station']} is not what the checkpoint recorded (its station, "
                f"public key or validity period altered); {_signed_by(store.conn, kid)}")
    for kid, row in sorted(store.keys.items()):
        if kid in cp.keys:
            continue
        if row["added_at"] <= cp.at:
            return (f"station key {kid} of {row['station']} says it was added at {row['added_at']}, but the "
                    f"checkpoint did not know it (added later, backdated); {_signed_by(store.conn, kid)}")
        signed = _signed_by(store.conn, kid, upto=cp.rows)
        if not signed.startswith("it signed no"):
            return (f"station key {kid} of {row['station']}, added after the checkpoint, signed rows the "
                    f"checkpoint vouched for (re-signed): {signed.split(': ', 1)[1]}")
    return None


def _contradiction(store: _Lookups, cp: Checkpoint) -> str | None:
    """What in the store contradicts ``cp``, or None if the store extends it."""
    keys = _key_contradiction(store, cp)
    if keys is not None:
        return keys
    last = store.last_row
    if cp.rows > last:
        return f"the store has {last} event rows, the checkpoint vouched for {cp.rows}: " \
               f"rows {last + 1}-{cp.rows} removed (tail truncated)"
    if store.row_hash(cp.rows) != cp.head:
        return f"event row {cp.rows} does not hold the checkpoint's head {cp.head[:16]}: " \
               f"the chain up to it was rewritten"
    for st in cp.stations:
        if not store.stored(st.station, st.incarnation, st.seq):
            return f"{st.station} seq {st.seq} (its highest at the checkpoint) is not stored"
    for part, head in cp.side.items():
        if head.n == 0:
            continue
        row = store.side_hash(part, head.n)
        if row is None:
            return f"the {part} log has {store.side_top(part)} entries, the checkpoint vouched for {head.n}: entries removed"
        if row != head.hash:
            return f"{part} log entry {head.n} does not hold the checkpoint's hash {head.hash[:16]}: " \
                   f"the {part} log was rewritten"
    return None


def check_checkpoints(ctx: Context) -> PartResult:
    """Every checkpoint in ``ctx.checkpoints``: signed by the audit key, and extended by the store."""
    if ctx.checkpoints is None:
        return PartResult("checkpoints", True, "checkpoints: not checked (give --checkpoints PATH)")
    if ctx.audit_key is None:
        return PartResult("checkpoints", False, "checkpoints: CANNOT VERIFY: no audit public key "
                          "(give --audit-key, or --config with the hub's audit key)", cannot=True)
    if not ctx.checkpoints.exists():
        return PartResult("checkpoints", False, f"checkpoints: CANNOT VERIFY: nothing at {ctx.checkpoints}",
                          cannot=True)
    lines = read_log(ctx.checkpoints, ctx.audit_key)
    if not lines:
        return PartResult("checkpoints", False, f"checkpoints: CANNOT VERIFY: no checkpoint in {ctx.checkpoints}",
                          cannot=True)
    expected = key_id(ctx.audit_key)
    bad: list[tuple[SignedLine, str]] = []
    with read_snapshot(ctx.engine) as conn:
        store = _Lookups(conn)
        for line in lines:
            if line.checkpoint is None:
                bad.append((line, line.problem))
            elif line.key_id != expected or not line.signature_ok:
                bad.append((line, f"signature does not match the audit key {expected} (forged or altered)"))
            else:
                found = _contradiction(store, line.checkpoint)
                if found is not None:
                    bad.append((line, found))
    last = lines[-1].checkpoint
    if bad:
        first, why = bad[0]
        more = f" (and {len(bad) - 1} later checkpoint(s))" if len(bad) > 1 else ""
        return PartResult("checkpoints", False,
                          f"checkpoints: CONTRADICTED: {first.name()}: {why}{more}")
    return _ok("checkpoints", f"{len(lines)} checkpoints signed by key {expected}, the store extends every one"
               + (f" (last at {last.at}, row {last.rows})" if last else ""))


# --- station signatures ---

def check_station_signatures(ctx: Context) -> PartResult:
    """Every stored station signature against the registered keys, and every outbox
    incarnation for missing seqs (hub.audit.signatures): the lines name each problem."""
    if "station_keys" not in inspect(ctx.engine).get_table_names():
        return PartResult("signatures", True, "signatures: not checked (this store predates station signatures)")
    report = check_signatures(ctx.engine)
    return PartResult("signatures", report.ok, "\n".join(f"signatures: {line}" for line in report.lines()))


PARTS: list[Part] = [check_events, check_station_signatures, check_alerts, check_signins, check_registry, check_quarantine,
                     check_snapshots, check_keys, check_work, check_maintenance, check_nearmiss, check_procedures,
                     check_verified, check_rollcall, check_failover,
                     check_checkpoints]


def run(db_url: str, out: TextIO | None = None, *, checkpoints: str | Path | None = None,
        audit_key: PublicKey | None = None) -> int:
    """Print one line per part of the trail in ``db_url``; 0 intact, 1 tampered, 2 could not read it."""
    out = out or sys.stdout
    url = make_url(db_url)
    shown = url.render_as_string(hide_password=True)
    # Opening a missing SQLite file would create an empty one and call it intact.
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():
            print(f"ERROR: no database file at {url.database}", file=out)
            return EXIT_CANNOT_VERIFY
    engine = make_engine(db_url)
    ctx = Context(engine, Path(checkpoints) if checkpoints is not None else None, audit_key)
    results: list[PartResult] = []
    try:
        tables = set(inspect(engine).get_table_names())
        if not {"events", "chain_head"} <= tables:
            print(f"ERROR: {shown} holds no kagiban audit trail", file=out)
            return EXIT_CANNOT_VERIFY
        for part in PARTS:
            if part not in (check_events, check_station_signatures, check_checkpoints) and "side_log" not in tables:
                continue  # a store from before the side logs (migration 0008)
            result = part(ctx)
            results.append(result)
            print(result.line, file=out)
    except SQLAlchemyError as exc:
        _LOG.debug("verify failed", exc_info=True)
        # The driver's own message, without SQLAlchemy's statement dump.
        print(f"ERROR: cannot read {shown}: {getattr(exc, 'orig', None) or exc}", file=out)
        return EXIT_CANNOT_VERIFY
    finally:
        engine.dispose()
    if any(not r.ok and not r.cannot for r in results):
        return EXIT_TAMPERED
    return EXIT_CANNOT_VERIFY if any(r.cannot for r in results) else EXIT_OK
