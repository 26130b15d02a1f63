"""``kagiban verify``'s check of the roll-call tables against the change log.

Roll calls keep no side log of their own: opening one (``rollcall``/``open``, with every column
set and the people expected), closing it (``rollcall``/``close``) and each person's outcome
(``rollcall_checkin``, action = the status) are ``registry_log`` rows, written in the same
transaction as the tables and mirrored in the hash-chained ``registry`` side log. :func:`compare`
reads those entries from the verified side log (hub.audit.verify) and holds the tables against
them both ways: a session or outcome changed, deleted or inserted outside the service shows.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from hub.store.schema import rollcall_people, rollcall_sessions

OPEN_COLUMNS = ("kind", "topic", "training_id", "starts_at", "window_min", "opened_at", "opened_by",
                "procedure_version_id")
CLOSE_COLUMNS = ("closed_at", "closed_by", "training_session_id")
CHECKIN_COLUMNS = ("status", "tapped_at", "station", "event_id")


def _after(entry: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(entry.get("after") or "null")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _stations(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def compare(conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The first contradiction between the roll-call tables and the logged entries, or None;
    and the counts for the report line."""
    opened: dict[Any, tuple[dict[str, Any], int]] = {}
    closed: dict[Any, tuple[dict[str, Any], int]] = {}
    outcomes: dict[tuple[Any, Any], tuple[dict[str, Any], int]] = {}
    for e in entries:
        after = _after(e)
        if e.get("entity") == "rollcall" and e.get("action") in ("open", "close"):
            (opened if e["action"] == "open" else closed)[after.get("id")] = (after, e["_n"])
        elif e.get("entity") == "rollcall_checkin":
            outcomes[(after.get("session_id"), after.get("staff_no"))] = (after, e["_n"])
    sessions = {r["id"]: dict(r) for r in conn.execute(select(rollcall_sessions)).mappings()}
    people = {(r["session_id"], r["staff_no"]): dict(r) for r in conn.execute(select(rollcall_people)).mappings()}

    for sid, (after, n) in opened.items():
        row = sessions.get(sid)
        if row is None:
            return f"roll call {sid} deleted: log entry {n} records its opening", ""
        changed = [k for k in OPEN_COLUMNS if row[k] != after.get(k)]
        if _stations(row["stations"]) != after.get("stations"):
            changed.append("stations")
        expected = sorted(no for (s, no), p in people.items() if s == sid and p["expected"])
        if expected != sorted(after.get("expected") or []):
            changed.append("expected")
        if changed:
            return f"roll call {sid} altered ({', '.join(changed)}) against log entry {n}", ""
    for sid, row in sorted(sessions.items()):
        if sid not in opened:
            return f"roll call {sid} is not in the log (inserted)", ""
        if sid in closed:
            after, n = closed[sid]
            changed = [k for k in CLOSE_COLUMNS if row[k] != after.get(k)]
            if changed:
                return f"close of roll call {sid} altered ({', '.join(changed)}) against log entry {n}", ""
        elif row["closed_by"] is not None or row["closed_at"] is not None:
            return f"roll call {sid} closed outside the log (by {row['closed_by']})", ""
    for key, (after, n) in outcomes.items():
        row = people.get(key)
        if row is None:
            return f"outcome of {key[1]} in roll call {key[0]} deleted: log entry {n} records it", ""
        changed = [k for k in CHECKIN_COLUMNS if row[k] != after.get(k)]
        if changed:
            return f"outcome of {key[1]} in roll call {key[0]} altered ({', '.join(changed)}) against log entry {n}", ""
    for key, row in sorted(people.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        if key not in outcomes and (row["status"] is not None or not row["expected"]):
            return f"outcome of {key[1]} in roll call {key[0]} is not in the log (inserted)", ""
    return None, f" ({len(sessions)} roll calls, {len(closed)} closed, {len(outcomes)} outcomes)"
