"""The near-miss side log (part ``nearmiss`` of hub.store.chain's side logs): one entry per step,
appended in the step's own transaction, so the log holds exactly what was committed.

- ``filed``: every column a reporter (or an import, or an alert turned into a case) set,
  the reporter's name included even when the case is anonymous to colleagues;
- ``reviewed``: the countermeasure, who and when;
- ``shared``: who and when;
- ``digest``: a month's digest went out (month, when, the case ids; ``by`` the user who sent it
  by hand, ``again`` when a month was sent again: the last entry of a month stands).

:func:`compare` is ``kagiban verify``'s check of the table against the log (hub.audit.verify).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, RowMapping, select

from hub.store.chain import append_side
from hub.store.schema import nearmiss_cases, nearmiss_digests

_LOG = logging.getLogger(__name__)

PART = "nearmiss"
FILED_COLUMNS = ("occurred_at", "station", "place", "category", "what", "why", "severity", "anonymous",
                 "reporter", "filed_by", "filed_at", "source", "alert_id", "event_ids")
REVIEW_COLUMNS = ("countermeasure", "reviewed_by", "reviewed_at")
SHARE_COLUMNS = ("shared_by", "shared_at")
# A row as a dict of its columns, or as SQLAlchemy reads it.
Row = Mapping[str, Any] | RowMapping


def _values(row: Row, columns: tuple[str, ...]) -> dict[str, Any]:
    return {k: (bool(row[k]) if k == "anonymous" else row[k]) for k in columns}


def record_filed(conn: Connection, case_id: int, row: Mapping[str, Any]) -> None:
    append_side(conn, PART, [(row["filed_at"], {"op": "filed", "case": case_id, **_values(row, FILED_COLUMNS)})])


def record_reviewed(conn: Connection, case_id: int, row: Mapping[str, Any]) -> None:
    append_side(conn, PART, [(row["reviewed_at"], {"op": "reviewed", "case": case_id,
                                                   **_values(row, REVIEW_COLUMNS)})])


def record_shared(conn: Connection, case_id: int, row: Mapping[str, Any]) -> None:
    append_side(conn, PART, [(row["shared_at"], {"op": "shared", "case": case_id, **_values(row, SHARE_COLUMNS)})])


def record_digest(conn: Connection, row: Mapping[str, Any], *, by: str | None = None, again: bool = False) -> None:
    """A month's digest sent (``by`` a user by hand, else by the scheduler; ``again``: forced,
    after an earlier sending, whose entry stays; the last entry of a month is what stands)."""
    entry: dict[str, Any] = {"op": "digest", "month": row["month"], "sent_at": row["sent_at"],
                             "cases": json.loads(row["cases"])}
    if by is not None:
        entry["by"] = by
    if again:
        entry["again"] = True
    append_side(conn, PART, [(row["sent_at"], entry)])


def compare(conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The cases and digests against their log entries, both ways: (problem or None, counts)."""
    rows = {r["id"]: r for r in conn.execute(select(nearmiss_cases)).mappings()}
    steps: dict[str, dict[Any, dict[str, Any]]] = {"filed": {}, "reviewed": {}, "shared": {}}
    digests: dict[Any, dict[str, Any]] = {}
    for e in entries:
        if e.get("op") == "digest":
            digests[e.get("month")] = e
        elif e.get("op") in steps:
            steps[e["op"]][e.get("case")] = e  # a re-review: the last entry is what stands
    columns = {"filed": FILED_COLUMNS, "reviewed": REVIEW_COLUMNS, "shared": SHARE_COLUMNS}
    for op, logged in steps.items():
        for case_id, e in logged.items():
            row = rows.get(case_id)
            if row is None:
                return f"near-miss case {case_id} deleted: log entry {e['_n']} records it {op}", ""
            changed = [k for k in columns[op] if _values(row, (k,))[k] != e.get(k)]
            if changed:
                return f"near-miss case {case_id} altered ({', '.join(changed)}) against log entry {e['_n']}", ""
    order = ("filed", "reviewed", "shared")
    for case_id, row in sorted(rows.items()):
        for op in order[:order.index(row["state"]) + 1] if row["state"] in order else order:
            if case_id not in steps[op]:
                return f"near-miss case {case_id} is {row['state']} but not {op} in the log (inserted)", ""
        for op in order[order.index(row["state"]) + 1:] if row["state"] in order else ():
            if case_id in steps[op]:
                return f"near-miss case {case_id} is {row['state']} but {op} in the log (state altered)", ""
    stored = {r["month"]: r for r in conn.execute(select(nearmiss_digests)).mappings()}
    for month, row in stored.items():
        sent = digests.get(month)
        if sent is None or sent.get("sent_at") != row["sent_at"] or sent.get("cases") != json.loads(row["cases"]):
            return f"near-miss digest {month} is not in the log as stored", ""
    for month, e in digests.items():
        if month not in stored:
            return f"near-miss digest {month} deleted: log entry {e['_n']} records it", ""
    shared = sum(1 for r in rows.values() if r["state"] == "shared")
    return None, f" ({len(rows)} cases, {shared} shared, {len(digests)} digests)"
