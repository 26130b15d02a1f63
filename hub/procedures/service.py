"""Procedures in the store: documents and who they apply to, versions uploaded (numbered 1,
2, ... per document, bytes kept with their SHA-256), confirmations, a training's required
reading, and who has not confirmed the current version.

Every write is one transaction holding the change, its ``registry_log`` rows (hub.registry.log:
so the registry's change signal republishes the stations' policies at once) and its entry in
the ``procedures`` side log (hub.procedures.trail).

:func:`record_confirmations` works inside a transaction its caller owns (a roll-call session's
close records the taps of a reading session with it); :func:`confirm` is the same in a
transaction of its own, for the page.
"""
from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from hub.procedures import trail
from hub.procedures.model import (
    MARKDOWN,
    MAX_BYTES,
    MAX_NAME,
    PDF,
    Audience,
    Confirmation,
    Document,
    Pending,
    ProcedureError,
    Version,
    json_list,
)
from hub.registry.common import STATION_KINDS, person_row
from hub.registry.log import Recorder, check_actor, writing
from hub.registry.people import is_active
from hub.store.db import inserted_id
from hub.store.schema import (
    CONFIRMATION_VIA,
    EMPLOYMENT_TYPES,
    PROCEDURE_KINDS,
    people,
    procedure_confirmations,
    procedure_documents,
    procedure_versions,
    training_procedures,
    trainings,
)
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

MAX_FILENAME = 255
MAX_LIST = 50  # sections, roles or kinds a document names; more is a mistake
MAX_PEOPLE = 2000  # confirmations recorded at once


# --- checks ---

def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProcedureError("procedure.name_missing")
    value = unicodedata.normalize("NFKC", value).strip()
    if len(value) > MAX_NAME:
        raise ProcedureError("procedure.name_too_long", {"n": MAX_NAME})
    return value


def _kind(value: Any) -> str:
    if value not in PROCEDURE_KINDS:
        raise ProcedureError("procedure.bad_kind", {"value": repr(value)})
    return str(value)


def _names(value: Any, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ProcedureError("procedure.bad_list", {"what": what})
    out = sorted({unicodedata.normalize("NFKC", v).strip() for v in value if isinstance(v, str) and v.strip()})
    if len(out) > MAX_LIST:
        raise ProcedureError("procedure.bad_list", {"what": what})
    return out


def _station_kinds(value: Any) -> list[str]:
    kinds = _names(value, "station_kinds")
    bad = [k for k in kinds if k not in STATION_KINDS]
    if bad:
        raise ProcedureError("procedure.unknown_kinds", {"kinds": ", ".join(bad), "choices": ", ".join(STATION_KINDS)})
    return kinds


def _employments(value: Any) -> list[str]:
    found = _names(value, "employments")
    for e in found:
        if e not in EMPLOYMENT_TYPES:
            raise ProcedureError("procedure.unknown_employment", {"value": repr(e),
                                                                  "choices": ", ".join(EMPLOYMENT_TYPES)})
    return found


def content_type_of(filename: str, content: bytes) -> str:
    """The type of an upload from its name, checked against its bytes: PDF or Markdown."""
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".pdf":
        if not content.startswith(b"%PDF-"):
            raise ProcedureError("procedure.not_pdf", {"filename": filename})
        return PDF
    if suffix in (".md", ".markdown"):
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            raise ProcedureError("procedure.not_utf8", {"filename": filename}) from None
        return MARKDOWN
    raise ProcedureError("procedure.bad_type", {"filename": filename})


# --- reading ---

def _document_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(procedure_documents).where(procedure_documents.c.name == _name(name))).first()
    if row is None:
        raise ProcedureError("procedure.not_found", {"name": repr(name)})
    return row


def _to_document(row: Any, current: Any) -> Document:
    return Document(id=row.id, name=row.name, kind=row.kind,
                    audience=Audience(tuple(json_list(row.sections)), tuple(json_list(row.roles)),
                                      tuple(json_list(row.employments))),
                    station_kinds=tuple(json_list(row.station_kinds)),
                    current=current.number if current is not None else 0,
                    current_version_id=current.id if current is not None else None,
                    current_sha256=current.sha256 if current is not None else None)


def _current_versions(conn: Connection) -> dict[int, Any]:
    top = (select(procedure_versions.c.document_id, func.max(procedure_versions.c.number).label("number"))
           .group_by(procedure_versions.c.document_id).subquery())
    rows = conn.execute(select(procedure_versions.c.document_id, procedure_versions.c.id,
                               procedure_versions.c.number, procedure_versions.c.sha256)
                        .join(top, (top.c.document_id == procedure_versions.c.document_id)
                              & (top.c.number == procedure_versions.c.number)))
    return {r.document_id: r for r in rows}


def list_documents(engine: Engine) -> list[Document]:
    """Every document with its current version, by name."""
    with engine.connect() as conn:
        current = _current_versions(conn)
        return [_to_document(r, current.get(r.id)) for r in
                conn.execute(select(procedure_documents).order_by(procedure_documents.c.name))]


def get_document(engine: Engine, name: str) -> Document:
    """One document by name; ProcedureError ``procedure.not_found`` if there is none."""
    with engine.connect() as conn:
        row = _document_row(conn, name)
        return _to_document(row, _current_versions(conn).get(row.id))


_VERSION_COLUMNS = (procedure_versions.c.id, procedure_versions.c.document_id,
                    procedure_documents.c.name.label("document"), procedure_versions.c.number,
                    procedure_versions.c.filename, procedure_versions.c.content_type, procedure_versions.c.size,
                    procedure_versions.c.sha256, procedure_versions.c.note, procedure_versions.c.uploaded_by,
                    procedure_versions.c.uploaded_at)


def _to_version(r: Any) -> Version:
    return Version(**{k: r._mapping[k] for k in Version.__dataclass_fields__})


def list_versions(engine: Engine, name: str) -> list[Version]:
    """A document's versions, newest first."""
    with engine.connect() as conn:
        doc = _document_row(conn, name)
        rows = conn.execute(select(*_VERSION_COLUMNS).join(
            procedure_documents, procedure_documents.c.id == procedure_versions.c.document_id)
            .where(procedure_versions.c.document_id == doc.id).order_by(procedure_versions.c.number.desc()))
        return [_to_version(r) for r in rows]


def _version_row(conn: Connection, version_id: int) -> Any:
    row = conn.execute(select(*_VERSION_COLUMNS, procedure_versions.c.content).join(
        procedure_documents, procedure_documents.c.id == procedure_versions.c.document_id)
        .where(procedure_versions.c.id == version_id)).first()
    if row is None:
        raise ProcedureError("procedure.version_not_found", {"id": version_id})
    return row


def find_version(conn: Connection, version_id: int) -> Version | None:
    """A version without its bytes (a roll call's reading names it), or None."""
    row = conn.execute(select(*_VERSION_COLUMNS).join(
        procedure_documents, procedure_documents.c.id == procedure_versions.c.document_id)
        .where(procedure_versions.c.id == version_id)).first()
    return None if row is None else _to_version(row)


def get_version(engine: Engine, version_id: int) -> tuple[Version, bytes]:
    """A version and its bytes."""
    with engine.connect() as conn:
        row = _version_row(conn, version_id)
    return _to_version(row), bytes(row.content)


def version_id_of(engine: Engine, name: str, number: int) -> int:
    """The id of version ``number`` of a document."""
    with engine.connect() as conn:
        doc = _document_row(conn, name)
        found = conn.execute(select(procedure_versions.c.id).where(
            procedure_versions.c.document_id == doc.id, procedure_versions.c.number == number)).scalar()
    if found is None:
        raise ProcedureError("procedure.number_not_found", {"name": doc.name, "number": number})
    return int(found)


def confirmations(engine: Engine, name: str) -> list[Confirmation]:
    """Every confirmation of any version of a document, newest version first, then by staff number."""
    with engine.connect() as conn:
        doc = _document_row(conn, name)
        rows = conn.execute(
            select(procedure_confirmations, procedure_versions.c.number, people.c.staff_no, people.c.name)
            .join(procedure_versions, procedure_versions.c.id == procedure_confirmations.c.version_id)
            .join(people, people.c.id == procedure_confirmations.c.person_id)
            .where(procedure_versions.c.document_id == doc.id)
            .order_by(procedure_versions.c.number.desc(), people.c.staff_no))
        return [Confirmation(version_id=r.version_id, number=r.number, staff_no=r.staff_no, name=r.name,
                             confirmed_at=r.confirmed_at, via=r.via, recorded_by=r.recorded_by,
                             session_id=r.session_id) for r in rows]


def pending(engine: Engine, on: date, *, name: str | None = None) -> list[Pending]:
    """Who has not confirmed the current version of each document (or of ``name``) that applies
    to them: people active on ``on`` or starting later, by document then staff number."""
    out: list[Pending] = []
    with engine.connect() as conn:
        current = _current_versions(conn)
        query = select(procedure_documents).order_by(procedure_documents.c.name)
        if name is not None:
            query = query.where(procedure_documents.c.id == _document_row(conn, name).id)
        docs = [(r, current[r.id]) for r in conn.execute(query) if r.id in current]
        confirmed = {(r.person_id, r.document_id): r.number for r in conn.execute(
            select(procedure_confirmations.c.person_id, procedure_versions.c.document_id,
                   func.max(procedure_versions.c.number).label("number"))
            .join(procedure_versions, procedure_versions.c.id == procedure_confirmations.c.version_id)
            .group_by(procedure_confirmations.c.person_id, procedure_versions.c.document_id))}
        uploaded = {r.id: r.uploaded_at for r in conn.execute(
            select(procedure_versions.c.id, procedure_versions.c.uploaded_at)
            .where(procedure_versions.c.id.in_([v.id for _d, v in docs])))}
        everyone = conn.execute(select(people).order_by(people.c.staff_no)).all()
    for doc, version in docs:
        audience = _to_document(doc, version).audience
        for person in everyone:
            if not (is_active(person, on) or (person.active_from is not None and person.active_from > on)):
                continue
            if not audience.covers(person):
                continue
            last = confirmed.get((person.id, doc.id))
            if last is not None and last >= version.number:
                continue
            out.append(Pending(document=doc.name, number=version.number, version_id=version.id,
                               since=uploaded[version.id], staff_no=person.staff_no, name=person.name,
                               kana=person.kana, section=person.section, employment=person.employment,
                               last_confirmed=last, active_from=person.active_from))
    return out


def training_readings(engine: Engine) -> dict[str, tuple[str, int]]:
    """Training name -> (document name, version number) it requires read."""
    with engine.connect() as conn:
        rows = conn.execute(select(trainings.c.name.label("training"), procedure_documents.c.name,
                                   procedure_versions.c.number)
                            .join(training_procedures, training_procedures.c.training_id == trainings.c.id)
                            .join(procedure_versions, procedure_versions.c.id == training_procedures.c.version_id)
                            .join(procedure_documents, procedure_documents.c.id == procedure_versions.c.document_id))
        return {r.training: (r.name, r.number) for r in rows}


# --- writing ---

def _log_row(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for k in ("sections", "roles", "employments", "station_kinds"):
        out[k] = json_list(out[k])
    return out


def add_document(
    engine: Engine, actor: str, name: str, kind: str, *, sections: Iterable[str] = (), roles: Iterable[str] = (),
    employments: Iterable[str] = (), station_kinds: Iterable[str] = (), now: datetime | None = None,
) -> int:
    """Add a document (no version yet); its id."""
    at = utc_text(now or now_utc())
    values = {"name": _name(name), "kind": _kind(kind), "sections": json.dumps(_names(sections, "sections")),
              "roles": json.dumps(_names(roles, "roles")), "employments": json.dumps(_employments(employments)),
              "station_kinds": json.dumps(_station_kinds(station_kinds)), "created_by": check_actor(actor),
              "created_at": at}
    with writing(engine, actor, now=now) as rec:
        if rec.conn.execute(select(procedure_documents.c.id)
                            .where(procedure_documents.c.name == values["name"])).first():
            raise ProcedureError("procedure.exists", {"name": repr(values["name"])})
        doc_id = inserted_id(rec.conn.execute(insert(procedure_documents).values(**values)))
        row = rec.conn.execute(select(procedure_documents).where(procedure_documents.c.id == doc_id)).one()
        rec.record("procedure", values["name"], "add", None, _log_row(row))
        trail.record_document(rec.conn, row._mapping, at, rec.actor)
    _LOG.info("%s added procedure document %s (%s)", actor, values["name"], values["kind"])
    return doc_id


def update_document(engine: Engine, actor: str, name: str, *, now: datetime | None = None, **changes: Any) -> bool:
    """Change a document's ``kind``, ``sections``, ``roles``, ``employments`` or ``station_kinds``;
    True if anything changed."""
    checks = {"kind": _kind, "sections": lambda v: json.dumps(_names(v, "sections")),
              "roles": lambda v: json.dumps(_names(v, "roles")),
              "employments": lambda v: json.dumps(_employments(v)),
              "station_kinds": lambda v: json.dumps(_station_kinds(v))}
    values = {}
    for key, value in changes.items():
        if key not in checks:
            raise ProcedureError("procedure.bad_list", {"what": key})
        values[key] = checks[key](value)
    with writing(engine, actor, now=now) as rec:
        row = _document_row(rec.conn, name)
        if all(getattr(row, k) == v for k, v in values.items()):
            return False
        rec.conn.execute(update(procedure_documents).where(procedure_documents.c.id == row.id).values(**values))
        after = rec.conn.execute(select(procedure_documents).where(procedure_documents.c.id == row.id)).one()
        rec.record("procedure", row.name, "update", _log_row(row), _log_row(after))
        trail.record_document(rec.conn, after._mapping, utc_text(rec.at), rec.actor)
    return True


def upload_version(
    engine: Engine, actor: str, name: str, filename: str, content: bytes, *, note: str = "",
    now: datetime | None = None,
) -> Version:
    """Store the next version of a document (PDF or Markdown) with its SHA-256. Everyone the
    document applies to is then on the to-confirm list for it (:func:`pending`), and stations of
    its kinds refuse them until they confirm. The same bytes as the current version are refused."""
    filename = PurePath(str(filename or "")).name[:MAX_FILENAME]
    if not content:
        raise ProcedureError("procedure.empty_file")
    if len(content) > MAX_BYTES:
        raise ProcedureError("procedure.too_large", {"mb": MAX_BYTES // (1024 * 1024)})
    content_type = content_type_of(filename, content)
    digest = hashlib.sha256(content).hexdigest()
    note = (note or "").strip()[:4000]
    with writing(engine, actor, now=now) as rec:
        doc = _document_row(rec.conn, name)
        latest = rec.conn.execute(select(procedure_versions.c.number, procedure_versions.c.sha256)
                                  .where(procedure_versions.c.document_id == doc.id)
                                  .order_by(procedure_versions.c.number.desc()).limit(1)).first()
        if latest is not None and latest.sha256 == digest:
            raise ProcedureError("procedure.same_as_current", {"number": latest.number, "sha": digest[:12]})
        values = {"document_id": doc.id, "number": (latest.number if latest else 0) + 1, "filename": filename,
                  "content_type": content_type, "size": len(content), "sha256": digest, "content": content,
                  "note": note, "uploaded_by": rec.actor, "uploaded_at": utc_text(rec.at)}
        version_id = inserted_id(rec.conn.execute(insert(procedure_versions).values(**values)))
        logged = {k: v for k, v in values.items() if k != "content"} | {"id": version_id, "document": doc.name}
        rec.record("procedure_version", f"{doc.name}/v{values['number']}", "add", None, logged)
        trail.record_version(rec.conn, {**values, "id": version_id})
    _LOG.info("%s uploaded version %d of %s (%s, sha256 %s)", actor, values["number"], doc.name, filename, digest)
    return Version(id=version_id, document_id=doc.id, document=doc.name, number=int(values["number"]),
                   filename=filename, content_type=content_type, size=len(content), sha256=digest, note=note,
                   uploaded_by=rec.actor, uploaded_at=str(values["uploaded_at"]))


def _confirm(rec: Recorder, version_id: int, staff_ids: Iterable[str], via: str, at: datetime,
             session_id: int | None) -> int:
    if via not in CONFIRMATION_VIA:
        raise ProcedureError("procedure.bad_via", {"value": repr(via), "choices": ", ".join(CONFIRMATION_VIA)})
    numbers = [staff_ids] if isinstance(staff_ids, str) else list(staff_ids)
    if not numbers or len(numbers) > MAX_PEOPLE:
        raise ProcedureError("procedure.no_people")
    version = _version_row(rec.conn, version_id)
    persons = {p.id: p for p in (person_row(rec.conn, n) for n in numbers)}  # NotFound: nothing recorded
    already = set(rec.conn.execute(select(procedure_confirmations.c.person_id).where(
        procedure_confirmations.c.version_id == version_id,
        procedure_confirmations.c.person_id.in_(list(persons)))).scalars())
    rows: list[dict[str, Any]] = [{"version_id": version_id, "person_id": pid, "confirmed_at": utc_text(at), "via": via,
             "recorded_by": rec.actor, "session_id": session_id}
            for pid in sorted(persons) if pid not in already]
    if not rows:
        return 0
    rec.conn.execute(insert(procedure_confirmations), rows)
    for r in rows:
        person = persons[r["person_id"]]
        rec.record("confirmation", f"{version.document}/v{version.number}/{person.staff_no}", "add", None,
                   {**r, "document": version.document, "number": version.number, "staff_no": person.staff_no,
                    "name": person.name})
    trail.record_confirmed(rec.conn, rows, {pid: p.staff_no for pid, p in persons.items()})
    return len(rows)


def record_confirmations(
    conn: Connection, version_id: int, staff_ids: Iterable[str], via: str, actor: str, at: datetime,
    session_id: int | None = None,
) -> int:
    """Record, in ``conn``'s open write transaction, that these people (staff numbers) read and
    confirmed a version ``via`` ``supervisor`` or ``rollcall`` (``session_id``: the roll-call
    session), at ``at``; how many were new (a repeat is skipped, the first one stands).

    The caller commits, then republishes the stations' policies (the registry's change signal is
    not sent from here: the transaction is not ours). NotFound or ProcedureError, and nothing
    recorded, for an unknown version or staff number.
    """
    rec = Recorder(conn, check_actor(actor), at)
    return _confirm(rec, version_id, staff_ids, via, at, session_id)


def confirm(
    engine: Engine, actor: str, version_id: int, staff_ids: Iterable[str], *, via: str = "supervisor",
    at: datetime | None = None, session_id: int | None = None,
) -> int:
    """:func:`record_confirmations` in a transaction of its own; the stations' policies are
    republished after the commit (registry change signal)."""
    at = at or now_utc()
    with writing(engine, actor, now=at) as rec:
        return _confirm(rec, version_id, staff_ids, via, at, session_id)


def require_reading(engine: Engine, actor: str, training: str, name: str | None, number: int | None = None) -> bool:
    """Make a training require reading version ``number`` of document ``name`` (None: its
    current version); ``name`` None removes the requirement. True if anything changed."""
    with writing(engine, actor) as rec:
        trow = rec.conn.execute(select(trainings).where(trainings.c.name == str(training).strip())).first()
        if trow is None:
            raise ProcedureError("procedure.not_found", {"name": repr(training)})
        before = rec.conn.execute(select(training_procedures.c.version_id)
                                  .where(training_procedures.c.training_id == trow.id)).scalar()
        after: int | None = None
        if name is not None:
            doc = _document_row(rec.conn, name)
            query = select(procedure_versions.c.id, procedure_versions.c.number).where(
                procedure_versions.c.document_id == doc.id)
            query = (query.where(procedure_versions.c.number == number) if number is not None
                     else query.order_by(procedure_versions.c.number.desc()).limit(1))
            found = rec.conn.execute(query).first()
            if found is None:
                raise ProcedureError("procedure.number_not_found", {"name": doc.name, "number": number or 1})
            after = found.id
        if after == before:
            return False
        rec.conn.execute(delete(training_procedures).where(training_procedures.c.training_id == trow.id))
        if after is not None:
            rec.conn.execute(insert(training_procedures).values(training_id=trow.id, version_id=after))
        describe = lambda vid: None if vid is None else {  # noqa: E731
            "version_id": vid, **{k: v for k, v in _version_row(rec.conn, vid)._mapping.items()
                                  if k in ("document", "number", "sha256")}}
        rec.record("training_reading", trow.name, "update" if after is not None else "delete",
                   describe(before), describe(after))
    return True
