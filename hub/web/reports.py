"""What the report pages (the key ledger, the print release log, the shredding ledger and the
close-out) share: the station and day asked for in the query string, the rows grouped by
station, and the CSV and Excel files they send (their words, title and name).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from flask import Response, request
from flask_babel import get_locale

from hub.web import data, query
from hub.web.state import state
from hub.stations.directory import display_name

_LOG = logging.getLogger(__name__)

MIMETYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "pdf": "application/pdf"}


def parse_day(value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` query argument; None if empty, 400 (query.BadQuery) if malformed."""
    return query.day(value, "day")


def station_arg() -> str | None:
    """The station asked for; None for every station."""
    return query.text(request.args.get("station"), "station")


def day_arg(station: str | None) -> date:
    """The ``day`` asked for, else today at the station's site (or the one site's, else the
    hub's)."""
    day = parse_day(request.args.get("day"))
    if day is not None:
        return day
    st = state()
    return datetime.now(data.zone_for(st.cfg, data.station_sites(st.engine, st.cfg), station)).date()


def day_report(build: Callable[..., list[Any]]) -> tuple[str | None, date, list[Any]]:
    """The station and day asked for, and the rows ``build`` (the key ledger's, the print
    release log's) finds for them."""
    st = state()
    station = station_arg()
    day = day_arg(station)
    return station, day, build(st.engine, st.cfg, day, station=station, names=st.names())


def by_station(rows: Iterable[Any]) -> dict[str, list[Any]]:
    """Report rows grouped by their station, in their order: a panel each on the page."""
    groups: dict[str, list[Any]] = {}
    for row in rows:
        groups.setdefault(row.station, []).append(row)
    return groups


def link_args(station: str | None, **period: str) -> dict[str, Any]:
    """The query arguments that ask for the same period (and station) again: for the export links
    (``url_for(endpoint, **args)``, whose keyword values are typed Any)."""
    return {**period, **({"station": station} if station else {})}


def lang() -> str:
    """The reader's language as the exports take it: "ja" or "en"."""
    return "en" if str(get_locale() or "ja") == "en" else "ja"


def export_title(sheet: str, period: str, station: str | None) -> str:
    """The title line of an Excel export: the sheet's name, the period and the station's name."""
    return f"{sheet} {period}" + (f" ({display_name(state().cfg, station)})" if station else "")


def download(body: bytes, ext: str, report: str, subject: str | None, period: str) -> Response:
    """``body`` as a ``csv``, ``xlsx`` or ``pdf`` file to save, named
    ``<report>_<subject, or all>_<period>.<ext>``."""
    # The subject comes from the query string: only safe characters reach the header.
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", subject) if subject else "all"
    return Response(body, mimetype=MIMETYPES[ext],
                    headers={"Content-Disposition": f'attachment; filename="{report}_{safe}_{period}.{ext}"'})
