"""What the report pages (the key ledger, the print release log, the shredding ledger and the
close-out) share: the station and day (or period: hub.ledgers.base.parse_period) asked for in
the query string, the rows grouped by station, the CSV and Excel files they send (their words,
title and name) and what their printable view shows (site and period).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import Response, render_template, request, url_for
from flask_babel import get_locale

from hub.ledgers import paging
from hub.ledgers.base import Period, PeriodError, parse_period
from hub.ledgers.spreadsheet import TIME_TEXT
from hub.web import data, query, scope
from hub.web.state import state
from hub.stations.directory import display_name

_LOG = logging.getLogger(__name__)

MIMETYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "pdf": "application/pdf"}


def parse_day(value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` query argument; None if empty, 400 (query.BadQuery) if malformed."""
    return query.day(value, "day")


def station_arg() -> str | None:
    """The station asked for; None for every station (of the reader's sites). Another site's
    station answers 404 (hub.web.scope), as one that does not exist."""
    station = query.text(request.args.get("station"), "station")
    scope.require_station(station)
    return station


def day_arg(station: str | None) -> date:
    """The ``day`` asked for, else today at the station's site (or the one site's, else the
    hub's)."""
    day = parse_day(request.args.get("day"))
    return day if day is not None else today_at(station)


def today_at(station: str | None) -> date:
    """Today at the station's site (or the one site's, else the hub's)."""
    st = state()
    return datetime.now(data.zone_for(st.cfg, data.station_sites(st.engine, st.cfg), station)).date()


def period_arg(station: str | None) -> Period:
    """The day, month (``month``) or range (``from``, ``to``) asked for, else today at the
    station's site; 400 (query.BadQuery naming the argument) if it cannot be shown."""
    try:
        return parse_period(request.args, today_at(station))
    except PeriodError as exc:
        raise query.BadQuery(exc.param, exc.expected) from None


def period_report(build: Callable[..., list[Any]]) -> tuple[str | None, Period, list[Any]]:
    """The station and period asked for, and the rows ``build`` (a ledger's) finds for them."""
    st = state()
    station = station_arg()
    period = period_arg(station)
    return station, period, scope.keep(build(st.engine, st.cfg, period.first, period.last, station=station,
                                             names=st.names()))


@dataclass
class PagedReport:
    """One page of a ledger's period as its page shows it: the station and period asked for,
    the page's rows (hub.ledgers.paging), the links to the pages before and after it (None:
    there is none) and the whole period's totals (entry -> count, counted from the events)."""

    station: str | None
    period: Period
    page: paging.Page
    previous_url: str | None
    next_url: str | None
    first_url: str | None
    totals: dict[str, int]

    @property
    def rows(self) -> list[Any]:
        return self.page.rows


def start_arg() -> paging.Mark | None:
    """The page mark asked for (``start``, as the page's own links write it); None: the first
    page; 400 naming ``start`` if it is not a mark."""
    value = query.text(request.args.get("start"), "start")
    if not value:
        return None
    try:
        return paging.Mark.parse(value)
    except paging.MarkError:
        raise query.BadQuery("start", "page_mark") from None


def back_arg() -> tuple[paging.Mark | None, bool]:
    """The previous page's mark a next link carries (``back``): (mark, False), (None, True) for
    the first page, (None, False) when there is none; 400 naming ``back`` if it is not a mark."""
    value = query.text(request.args.get("back"), "back")
    if not value:
        return None, False
    if value == BACK_FIRST:
        return None, True
    try:
        return paging.Mark.parse(value), False
    except paging.MarkError:
        raise query.BadQuery("back", "page_mark") from None


# ``back`` of a next link on the first page (which has no mark).
BACK_FIRST = "first"


def paged_report(build: Callable[..., list[Any]], endpoint: str, stations: Sequence[str],
                 counted: Mapping[str, Sequence[str]]) -> PagedReport:
    """The page of the ledger ``build`` asked for (station, period, ``start``) over ``stations``
    (every station of the ledger's kind, in the ledger's order), with links to the pages around
    it at ``endpoint`` and the period's totals: for each entry of ``counted``, the events of its
    kinds stored in the period."""
    st = state()
    station = station_arg()
    period = period_arg(station)
    start = start_arg()
    wanted = [station] if station else list(stations)
    back, back_first = back_arg()
    found = paging.page(build, st.engine, st.cfg, wanted, period, start, names=st.names(),
                        size=paging.PAGE_ROWS, back=back, back_first=back_first)
    args = link_args(station, **period.args())

    def link(mark: paging.Mark | None, **more: str) -> str:
        wanted: dict[str, Any] = {**args, **({"start": mark.text()} if mark else {}), **more}
        return url_for(endpoint, **wanted)

    kinds = sorted({k for ks in counted.values() for k in ks})
    counts = paging.event_counts(st.engine, st.cfg, wanted, kinds, period) if kinds else {}
    totals = {entry: sum(counts.get(k, 0) for k in ks) for entry, ks in counted.items()}
    return PagedReport(
        station, period, found,
        previous_url=link(found.previous) if found.has_previous else None,
        # The next page is told this one's mark: its previous link without building the rows before.
        next_url=link(found.next, back=found.start.text() if found.start else BACK_FIRST) if found.next else None,
        first_url=link(None) if found.previous else None,
        totals=totals)


def site_names(stations: Iterable[str]) -> list[str]:
    """The names of the sites of ``stations`` (as configured, else their ids), for a printed
    ledger's heading."""
    st = state()
    sites = data.station_sites(st.engine, st.cfg)
    out: list[str] = []
    for station in stations:
        site = sites.get(station) or ""
        name = st.cfg.site(site).name or site
        if name and name not in out:
            out.append(name)
    return out


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


def download(body: bytes | Iterable[bytes], ext: str, report: str, subject: str | None, period: str) -> Response:
    """``body`` (or its chunks, sent as they come) as a ``csv``, ``xlsx`` or ``pdf`` file to save, named
    ``<report>_<subject, or all>_<period>.<ext>``."""
    # The subject comes from the query string: only safe characters reach the header.
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", subject) if subject else "all"
    return attachment(body, f"{report}_{safe}_{period}.{ext}")


def attachment(body: bytes | Iterable[bytes], name: str) -> Response:
    """``body`` as a file to save named ``name`` (made by the hub, never from a request as it
    came), its type from its extension (``csv``, ``xlsx``, ``pdf``)."""
    return Response(body, mimetype=MIMETYPES[name.rsplit(".", 1)[1]],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def print_cell(value: Any) -> str:
    """An export cell as the printed ledger shows it: times and days as the exports write them
    (site-local, no zone: the heading names the site), seconds to a tenth."""
    if isinstance(value, datetime):
        return value.strftime(TIME_TEXT)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.1f}"
    return "" if value is None else str(value)


def print_view(title: str, period: Period, station: str | None, stations: Iterable[str], header: list[str],
               cells: list[list[Any]], *, marked: list[bool], columns: tuple[str, ...]) -> str:
    """The printable A4 view of a ledger (templates/ledger_print.html, static/ledger_print.css):
    the site, the period, the station, the rows as the exports have them, page numbers and the
    checker's seal box (確認印)."""
    links = {"photo", "snapshot"} & set(columns)
    rows = [([(columns[i], print_cell(v)) for i, v in enumerate(row)], mark) for row, mark in zip(cells, marked)]
    return render_template("ledger_print.html", title=title, period=period, sites=site_names(stations),
                           station=station, header=list(zip(columns, header)), rows=rows, links=links,
                           printed_at=datetime.now(data.zone_for(state().cfg, data.station_sites(
                               state().engine, state().cfg), station)))
