"""A roll-call session's roster as CSV or Excel (the ledgers' own writers, hub.ledgers.base):
one row per person with the status, the tap's local time and the unit; the session in the
first rows' cells, so a sheet on its own still says which session it is."""
from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Literal

from hub.catalog import N_, Msg, translate
from hub.ledgers.base import table_csv, table_xlsx
from hub.rollcall.messages import KINDS, STATUSES
from hub.rollcall.service import Roster, RollcallError

Format = Literal["csv", "xlsx"]

HEADERS: dict[str, Msg] = {
    "session": N_("Session"),
    "kind": N_("Kind"),
    "topic": N_("Topic"),
    "starts_at": N_("Start"),
    "staff_no": N_("Staff number"),
    "name": N_("Name"),
    "kana": N_("Kana"),
    "section": N_("Section"),
    "status": N_("Status"),
    "tapped_at": N_("Tapped at"),
    "station": N_("Unit"),
}


def _local(when: datetime | None, zone: tzinfo) -> datetime | None:
    if when is None:
        return None
    try:
        return when.astimezone(zone).replace(tzinfo=None, microsecond=0)
    except (ValueError, OverflowError):
        return None


def export_roster(roster: Roster, fmt: str, zone: tzinfo, lang: Literal["ja", "en"] = "ja") -> bytes:
    """The roster in ``fmt`` ("csv" or "xlsx"), headers and statuses in ``lang``; late and
    absent rows highlighted in Excel."""
    if fmt not in ("csv", "xlsx"):
        raise RollcallError("rollcall.bad_format", {"value": repr(fmt)})
    s = roster.session
    header = [translate(lang, m) for m in HEADERS.values()]
    kind = translate(lang, KINDS[s.kind]) if s.kind in KINDS else s.kind
    rows = []
    for r in roster.rows:
        status = translate(lang, STATUSES[r.status]) if r.status in STATUSES else r.status
        cells = [s.id, kind, s.topic, _local(s.starts_at, zone), r.staff_no, r.name, r.kana, r.section, status,
                 _local(r.tapped_at, zone), r.station or ""]
        rows.append((cells, r.status in ("late", "absent")))
    if fmt == "csv":
        return table_csv(header, [cells for cells, _mark in rows])
    return table_xlsx(header, rows, sheet=("点呼" if lang == "ja" else "roll call"))
