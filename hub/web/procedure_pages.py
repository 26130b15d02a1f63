"""The procedures pages (規程・手順書, 回覧): the documents and their versions, each version
shown (Markdown rendered safely, PDF as a download) with its SHA-256; who a document applies to
and which station kinds refuse a person who has not confirmed its current version; recording
confirmations; a training's required reading; and who has not confirmed what, with CSV and
Excel exports.

Roles: admins add documents, upload versions and set who they apply to; supervisors (and
admins) record confirmations; auditors read everything and export.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from hub.procedures import export as procedure_export
from hub.procedures import service
from hub.procedures.messages import ERRORS, KINDS, VIA
from hub.procedures.model import EDITING_ROLES, MARKDOWN, MAX_BYTES, SUPERVISING_ROLES, Document, ProcedureError
from hub.procedures.render import render_markdown
from hub.registry import list_trainings
from hub.registry.common import STATION_KINDS
from hub.registry.log import RegistryError
from hub.store.schema import EMPLOYMENT_TYPES, PROCEDURE_KINDS
from hub.web import i18n, reports
from hub.web.auth import role_required
from hub.web.registry_pages import EMPLOYMENTS
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("procedures", __name__, url_prefix="/procedures")

READING_ROLES = ("admin", "supervisor", "auditor")
KIND_LABELS: dict[str, Any] = i18n.lazy(KINDS)
VIA_LABELS: dict[str, Any] = i18n.lazy(VIA)
_SPLIT = re.compile(r"[\s,、，;]+")


def explain(exc: ProcedureError | RegistryError) -> str:
    """A refusal in the reader's language."""
    if isinstance(exc, RegistryError):
        return exc.text("en" if str(get_locale() or "ja") == "en" else "ja")
    message = ERRORS.get(exc.code)
    return _(message.id, **exc.params) if message is not None else exc.code


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "doc_kind_label": lambda k: i18n.label(KIND_LABELS, k),
        "via_label": lambda k: i18n.label(VIA_LABELS, k),
        "station_kind_label": lambda k: i18n.label(i18n.STATION_KINDS, k),
        "employment_label": lambda k: i18n.label(EMPLOYMENTS, k),
        "editing": current_user.is_authenticated and current_user.role in EDITING_ROLES,
        "supervising": current_user.is_authenticated and current_user.role in SUPERVISING_ROLES,
    }


def _document(doc_id: int) -> Document:
    found = [d for d in service.list_documents(state().engine) if d.id == doc_id]
    if not found:
        abort(404)
    return found[0]


def _today():
    return datetime.now(state().cfg.zone()).date()


def _words(name: str) -> list[str]:
    return [w for w in _SPLIT.split(request.form.get(name) or "") if w]


# --- the list ---

@bp.get("/")
@role_required(*READING_ROLES)
def index():
    st = state()
    documents = service.list_documents(st.engine)
    waiting: dict[str, int] = {}
    for row in service.pending(st.engine, _today()):
        waiting[row.document] = waiting.get(row.document, 0) + 1
    return render_template("procedures/index.html", title=_("Procedures and notices"), documents=documents,
                           waiting=waiting, kinds=PROCEDURE_KINDS, employment_types=EMPLOYMENT_TYPES,
                           all_station_kinds=STATION_KINDS, values=request.form, error=None)


@bp.post("/")
@role_required(*EDITING_ROLES)
def add():
    st = state()
    try:
        doc_id = service.add_document(st.engine, current_user.username, request.form.get("name") or "",
                                      request.form.get("kind") or "", sections=_words("sections"),
                                      roles=_words("roles"), employments=request.form.getlist("employments"),
                                      station_kinds=request.form.getlist("station_kinds"))
    except (ProcedureError, RegistryError) as exc:
        # Shown again with what was typed: nothing is lost.
        return render_template("procedures/index.html", title=_("Procedures and notices"),
                               documents=service.list_documents(st.engine), waiting={}, kinds=PROCEDURE_KINDS,
                               employment_types=EMPLOYMENT_TYPES, all_station_kinds=STATION_KINDS,
                               values=request.form, error=explain(exc)), 400
    flash(_("Document added. Upload its first version."), "ok")
    return redirect(url_for("procedures.document", doc_id=doc_id))


# --- one document ---

def _document_page(doc: Document, status: int = 200, error: str | None = None):
    st = state()
    readings = {t: v for t, v in service.training_readings(st.engine).items() if v[0] == doc.name}
    return render_template("procedures/document.html", title=doc.name, doc=doc,
                           versions=service.list_versions(st.engine, doc.name),
                           confirmations=service.confirmations(st.engine, doc.name),
                           pending=service.pending(st.engine, _today(), name=doc.name),
                           trainings=[t["name"] for t in list_trainings(st.engine)], readings=readings,
                           employment_types=EMPLOYMENT_TYPES, all_station_kinds=STATION_KINDS,
                           max_mb=MAX_BYTES // (1024 * 1024), error=error,
                           now=datetime.now(st.cfg.zone()).strftime("%Y-%m-%dT%H:%M")), status


@bp.get("/<int:doc_id>")
@role_required(*READING_ROLES)
def document(doc_id: int):
    return _document_page(_document(doc_id))


@bp.record_once
def _exempt_upload(setup) -> None:
    # The file is larger than the app's form limit: the CSRF token is checked in the view once
    # that limit is raised for it (as the registry's import does).
    csrf = setup.app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(f"{__name__}.upload")


@bp.post("/<int:doc_id>/versions")
@role_required(*EDITING_ROLES)
def upload(doc_id: int):
    request.max_content_length = MAX_BYTES + 64 * 1024
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError as exc:
        raise CSRFError(str(exc)) from exc
    doc = _document(doc_id)
    file = request.files.get("file")
    if file is None or not file.filename:
        return _document_page(doc, 400, _("Choose a PDF or Markdown file."))
    try:
        version = service.upload_version(state().engine, current_user.username, doc.name, file.filename,
                                         file.read(), note=request.form.get("note") or "")
    except (ProcedureError, RegistryError) as exc:
        return _document_page(doc, 400, explain(exc))
    flash(_("Version %(n)s stored (SHA-256 %(sha)s). Everyone it applies to is now on the list to confirm it.",
            n=version.number, sha=version.sha256), "ok")
    return redirect(url_for("procedures.document", doc_id=doc_id))


@bp.post("/<int:doc_id>/audience")
@role_required(*EDITING_ROLES)
def audience(doc_id: int):
    doc = _document(doc_id)
    try:
        changed = service.update_document(state().engine, current_user.username, doc.name,
                                           kind=request.form.get("kind") or doc.kind, sections=_words("sections"),
                                           roles=_words("roles"), employments=request.form.getlist("employments"),
                                           station_kinds=request.form.getlist("station_kinds"))
    except (ProcedureError, RegistryError) as exc:
        return _document_page(doc, 400, explain(exc))
    flash(_("Saved.") if changed else _("Nothing changed."), "ok")
    return redirect(url_for("procedures.document", doc_id=doc_id))


def _when(text: str) -> datetime:
    try:
        naive = datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M")
    except ValueError:
        raise ProcedureError("procedure.bad_time", {"value": repr(text.strip()[:40])}) from None
    return naive.replace(tzinfo=state().cfg.zone())


@bp.post("/<int:doc_id>/confirmations")
@role_required(*SUPERVISING_ROLES)
def confirm(doc_id: int):
    doc = _document(doc_id)
    st = state()
    try:
        number = int(request.form.get("number") or doc.current)
        version_id = service.version_id_of(st.engine, doc.name, number)
        at = _when(request.form.get("at") or "") if request.form.get("at") else None
        added = service.confirm(st.engine, current_user.username, version_id, _words("staff_nos"),
                                via=request.form.get("via") or "supervisor", at=at)
    except ValueError as exc:
        if not isinstance(exc, (ProcedureError, RegistryError)):
            exc = ProcedureError("procedure.number_not_found", {"name": doc.name, "number": request.form.get("number")})
        return _document_page(doc, 400, explain(exc))
    flash(_("%(n)s confirmation(s) of version %(v)s recorded.", n=added, v=number), "ok")
    return redirect(url_for("procedures.document", doc_id=doc_id))


@bp.post("/<int:doc_id>/training")
@role_required(*EDITING_ROLES)
def training(doc_id: int):
    doc = _document(doc_id)
    name = request.form.get("training") or ""
    try:
        raw = (request.form.get("number") or "").strip()
        number = int(raw) if raw else None
        removing = bool(request.form.get("remove"))
        service.require_reading(state().engine, current_user.username, name, None if removing else doc.name, number)
    except ValueError as exc:
        if not isinstance(exc, (ProcedureError, RegistryError)):
            exc = ProcedureError("procedure.number_not_found", {"name": doc.name, "number": request.form.get("number")})
        return _document_page(doc, 400, explain(exc))
    flash(_("Saved."), "ok")
    return redirect(url_for("procedures.document", doc_id=doc_id))


# --- one version ---

def _version(version_id: int):
    try:
        return service.get_version(state().engine, version_id)
    except ProcedureError:
        abort(404)


@bp.get("/versions/<int:version_id>")
@role_required(*READING_ROLES)
def version(version_id: int):
    found, content = _version(version_id)
    body = None
    if found.content_type == MARKDOWN:
        body = render_markdown(content.decode("utf-8", errors="replace"))
    return render_template("procedures/version.html", title=f"{found.document} v{found.number}", version=found,
                           body=body)


@bp.get("/versions/<int:version_id>/file")
@role_required(*READING_ROLES)
def download(version_id: int):
    found, content = _version(version_id)
    mimetype = found.content_type if found.content_type != MARKDOWN else "text/markdown; charset=utf-8"
    # The stored name is shown, never trusted as a header: ASCII only, the rest replaced.
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", found.filename) or "document"
    return Response(content, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="v{found.number}_{safe}"',
        "X-Content-Type-Options": "nosniff", "Digest": f"sha-256={found.sha256}"})


# --- who has not confirmed ---

@bp.get("/pending")
@role_required(*READING_ROLES)
def pending_page():
    rows = service.pending(state().engine, _today())
    return render_template("procedures/pending.html", title=_("Not yet confirmed"), rows=rows)


def _export(fmt: Literal["csv", "xlsx"]) -> Response:
    st = state()
    lang: Literal["ja", "en"] = "en" if str(get_locale() or "ja") == "en" else "ja"
    body = procedure_export.export_pending(service.pending(st.engine, _today()), fmt, lang, st.cfg.zone())
    _LOG.info("%s exported the procedures' to-confirm list as %s", current_user.username, fmt)
    name = f"procedures_to_confirm_{_today().isoformat()}.{fmt}"
    return reports.attachment(body, name)


@bp.get("/pending.csv")
@role_required(*READING_ROLES)
def pending_csv():
    return _export("csv")


@bp.get("/pending.xlsx")
@role_required(*READING_ROLES)
def pending_xlsx():
    return _export("xlsx")
