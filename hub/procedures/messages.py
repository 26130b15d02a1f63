"""What each procedures code says: document kinds, how a confirmation was recorded, and the
refusals (:class:`~hub.procedures.model.ProcedureError`), as English source texts translated
through the hub's catalogue (hub.catalog, the web page's .po files)."""
from __future__ import annotations

from hub.catalog import N_, Msg

KINDS: dict[str, Msg] = {
    "rule": N_("Rules"),
    "procedure": N_("Procedure manual"),
    "notice": N_("Circulated notice"),
}

VIA: dict[str, Msg] = {
    "supervisor": N_("recorded by a supervisor"),
    "rollcall": N_("badge tap at a reading session"),
}

ERRORS: dict[str, Msg] = {
    "procedure.name_missing": N_("Document name: fill this in."),
    "procedure.name_too_long": N_("Document name: at most %(n)s characters."),
    "procedure.exists": N_("There is already a document named %(name)s."),
    "procedure.bad_kind": N_("Kind: %(value)s is not rules, procedure or notice."),
    "procedure.unknown_kinds": N_("Station kinds: %(kinds)s unknown; choose from %(choices)s."),
    "procedure.unknown_employment": N_("Employment: %(value)s is not one of %(choices)s."),
    "procedure.bad_list": N_("%(what)s: give a list of names."),
    "procedure.not_found": N_("There is no document %(name)s."),
    "procedure.version_not_found": N_("There is no document version %(id)s."),
    "procedure.number_not_found": N_("%(name)s has no version %(number)s."),
    "procedure.empty_file": N_("The file is empty."),
    "procedure.too_large": N_("The file is larger than %(mb)s MB."),
    "procedure.bad_type": N_("%(filename)s is neither a PDF nor a Markdown file (.pdf, .md)."),
    "procedure.not_pdf": N_("%(filename)s does not start like a PDF file."),
    "procedure.not_utf8": N_("%(filename)s is not UTF-8 text."),
    "procedure.same_as_current": N_("This file is the same as version %(number)s (SHA-256 %(sha)s)."),
    "procedure.bad_via": N_("How confirmed: %(value)s is not one of %(choices)s."),
    "procedure.no_people": N_("Choose at least one person."),
    "procedure.bad_time": N_("When: %(value)s is not a date and time."),
    "procedure.bad_format": N_("Format %(value)s is not csv or xlsx."),
}
