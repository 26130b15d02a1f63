"""The to-confirm list (who has not confirmed the current version of which document) as CSV or
Excel, headed in the reader's language, through the ledgers' one table writer."""
from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import Literal

from hub.catalog import N_, Msg, translate
from hub.ledgers.base import table_csv, table_xlsx
from hub.procedures.model import Pending, ProcedureError
from hub.registry.io import EMPLOYMENT_LABELS  # the words the registry's own exports use

_LOG = logging.getLogger(__name__)

HEADERS: dict[str, Msg] = {
    "document": N_("Document"),
    "number": N_("Current version"),
    "since": N_("Uploaded at"),
    "staff_no": N_("Staff number"),
    "name": N_("Name"),
    "kana": N_("Reading (kana)"),
    "section": N_("Section"),
    "employment": N_("Employment"),
    "last_confirmed": N_("Last confirmed version"),
}
SHEET = N_("To confirm")


def _local(text: str, zone: tzinfo) -> datetime | str:
    """A stored instant as a local date-time cell; a value that is no instant is written as stored."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(zone).replace(tzinfo=None,
                                                                                           microsecond=0)
    except (ValueError, OverflowError):
        return text


def export_pending(rows: list[Pending], fmt: str, lang: Literal["ja", "en"], zone: tzinfo) -> bytes:
    """``rows`` (hub.procedures.service.pending) as ``csv`` or ``xlsx`` bytes."""
    if fmt not in ("csv", "xlsx"):
        raise ProcedureError("procedure.bad_format", {"value": repr(fmt)})
    header = [translate(lang, m) for m in HEADERS.values()]
    cells = [[r.document, r.number, _local(r.since, zone), r.staff_no, r.name, r.kana, r.section,
              EMPLOYMENT_LABELS[lang].get(r.employment, r.employment),
              r.last_confirmed if r.last_confirmed is not None else ""] for r in rows]
    if fmt == "csv":
        return table_csv(header, cells)
    return table_xlsx(header, [(c, False) for c in cells], sheet=translate(lang, SHEET))
