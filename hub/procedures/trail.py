"""The procedures side log (part ``procedures`` of hub.store.chain's side logs): one entry per
step, appended in the step's own transaction, so the log holds exactly what was committed.

- ``document``: a document added or its audience changed (every column as it then stood);
- ``version``: a version uploaded (number, file name, type, size, SHA-256, who, when);
- ``confirmed``: one person's confirmation of one version (who, when, how, by whom, session).

:func:`compare` is ``kagiban verify``'s check of the tables against the log, both ways; it also
hashes each version's stored bytes again, so a file swapped in the database is named.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, select

from hub.procedures.model import json_list
from hub.store.chain import append_side
from hub.store.schema import people, procedure_confirmations, procedure_documents, procedure_versions

_LOG = logging.getLogger(__name__)

# A row as a dict of its columns, or as SQLAlchemy reads it.
Row = Mapping[str, Any] | RowMapping

PART = "procedures"
DOCUMENT_COLUMNS = ("id", "name", "kind", "sections", "roles", "employments", "station_kinds", "created_by",
                    "created_at")
VERSION_COLUMNS = ("id", "document_id", "number", "filename", "content_type", "size", "sha256", "uploaded_by",
                   "uploaded_at")
CONFIRM_COLUMNS = ("version_id", "person_id", "confirmed_at", "via", "recorded_by", "session_id")
_LISTS = ("sections", "roles", "employments", "station_kinds")


def _document(row: Row) -> dict[str, Any]:
    return {k: (json_list(row[k]) if k in _LISTS else row[k]) for k in DOCUMENT_COLUMNS}


def record_document(conn: Connection, row: Row, at: str, by: str) -> None:
    append_side(conn, PART, [(at, {"op": "document", "at": at, "by": by, **_document(row)})])


def record_version(conn: Connection, row: Row) -> None:
    append_side(conn, PART, [(row["uploaded_at"], {"op": "version", **{k: row[k] for k in VERSION_COLUMNS}})])


def record_confirmed(conn: Connection, rows: Sequence[Mapping[str, Any]], staff: Mapping[int, str]) -> None:
    append_side(conn, PART, [(r["confirmed_at"], {"op": "confirmed", "staff_no": staff[r["person_id"]],
                                                  **{k: r[k] for k in CONFIRM_COLUMNS}}) for r in rows])


def compare(conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The documents, versions and confirmations against their log entries, both ways:
    (problem or None, counts)."""
    docs: dict[Any, dict[str, Any]] = {}
    versions: dict[Any, dict[str, Any]] = {}
    confirmed: dict[tuple[Any, Any], dict[str, Any]] = {}
    for e in entries:
        if e.get("op") == "document":
            docs[e.get("id")] = e  # a later change of the audience: the last entry is what stands
        elif e.get("op") == "version":
            versions[e.get("id")] = e
        elif e.get("op") == "confirmed":
            confirmed[(e.get("version_id"), e.get("person_id"))] = e
    doc_rows = {r["id"]: r for r in conn.execute(select(procedure_documents)).mappings()}
    for doc_id, row in sorted(doc_rows.items()):
        found = docs.get(doc_id)
        if found is None:
            return f"procedure document {doc_id} ({row['name']}) is not in the log (inserted)", ""
        changed = [k for k, v in _document(row).items() if v != found.get(k)]
        if changed:
            return f"procedure document {doc_id} altered ({', '.join(changed)}) against log entry {found['_n']}", ""
    for doc_id, e in docs.items():
        if doc_id not in doc_rows:
            return f"procedure document {doc_id} ({e.get('name')}) deleted: log entry {e['_n']} records it", ""
    version_rows = {r["id"]: r for r in conn.execute(select(procedure_versions)).mappings()}
    for version_id, row in sorted(version_rows.items()):
        logged = versions.get(version_id)
        if logged is None:
            return f"procedure version {version_id} is not in the log (inserted)", ""
        changed = [k for k in VERSION_COLUMNS if row[k] != logged.get(k)]
        if changed:
            return f"procedure version {version_id} altered ({', '.join(changed)}) against log entry {logged['_n']}", ""
        if hashlib.sha256(row["content"]).hexdigest() != row["sha256"]:
            return (f"procedure version {version_id} (number {row['number']}): its stored bytes do not hash to "
                    f"the SHA-256 logged in entry {logged['_n']} (file replaced)"), ""
    for version_id, e in versions.items():
        if version_id not in version_rows:
            return f"procedure version {version_id} deleted: log entry {e['_n']} records it", ""
    staff = {r.id: r.staff_no for r in conn.execute(select(people.c.id, people.c.staff_no))}
    confirm_rows = {(r["version_id"], r["person_id"]): r
                    for r in conn.execute(select(procedure_confirmations)).mappings()}
    for key, row in sorted(confirm_rows.items()):
        entry = confirmed.get(key)
        who = staff.get(key[1], key[1])
        if entry is None:
            return f"confirmation of procedure version {key[0]} by {who} is not in the log (inserted)", ""
        changed = [k for k in CONFIRM_COLUMNS if row[k] != entry.get(k)]
        if changed:
            return (f"confirmation of procedure version {key[0]} by {who} altered ({', '.join(changed)}) "
                    f"against log entry {entry['_n']}"), ""
    for key, e in confirmed.items():
        if key not in confirm_rows:
            return (f"confirmation of procedure version {key[0]} by {e.get('staff_no')} deleted: log entry "
                    f"{e['_n']} records it"), ""
    return None, f" ({len(doc_rows)} documents, {len(version_rows)} versions, {len(confirm_rows)} confirmations)"
