"""Import and export of near-miss cases as CSV or Excel (.xlsx): the paper reports the office
collected before, and the cases for its own analysis.

Columns (Japanese or English header, any order; other columns are ignored)::

    発生日時 / occurred_at     required  YYYY-MM-DD HH:MM (the hub's local time), or an Excel date-time
    ステーション / station     one of    a known station id
    場所 / place               the two   where it happened, in words
    分類 / category            required  鍵, プリンター, ... or keys, printer, shredder, counter, pc, mail, other
    内容 / what                required  what happened
    原因 / why                 required  why it happened
    重大度 / severity          required  軽微, 中程度, 重大 or minor, moderate, serious
    報告者 / reporter          optional  the name on the report (default: who imports)
    匿名 / anonymous           optional  はい / yes / 1 to hide the name from colleagues
    対策 / countermeasure      optional  given: the case is imported as reviewed

The file is read like the registry's attendance import (hub.registry.io: UTF-8 or Shift_JIS
CSV, the first sheet of an .xlsx, the header the first non-empty row). Every row is checked first;
:class:`ImportRejected` lists every problem (line, column, code) and nothing is imported unless
the whole file is clean. A row already on record (same time, category and text) is counted,
not repeated, so importing an export again changes nothing. The export writes these columns
(plus number, state and when shared), so it imports back. Each case imported is in the
near-miss log (hub.nearmiss.trail) and, like the registry's own imports, in the registry's change
log (entity ``nearmiss_case``), in the import's one transaction.
"""
from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal

from sqlalchemy import Connection, Engine, insert, select

from hub.catalog import translate
from hub.config import HubConfig
from hub.ledgers.base import table_csv, table_xlsx
from hub.nearmiss import trail
from hub.nearmiss.messages import ANONYMOUS, CATEGORIES, PROBLEMS, SEVERITIES, STATES
from hub.nearmiss.model import MAX_PLACE, MAX_TEXT, Case, NearMissError
from hub.nearmiss.service import list_cases
from hub.registry.log import MAX_ACTOR, Recorder, check_actor
from hub.registry.io import _load as load_table  # the registry's reader: same encodings and limits
from hub.store.db import begin_write, inserted_id
from hub.store.schema import nearmiss_cases, stations
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

Format = Literal["csv", "xlsx"]
FIELDS = ("occurred_at", "station", "place", "category", "what", "why", "severity", "reporter", "anonymous",
          "countermeasure")
REQUIRED = ("occurred_at", "category", "what", "why", "severity")
HEADERS = {
    "ja": {"id": "番号", "occurred_at": "発生日時", "station": "ステーション", "place": "場所", "category": "分類",
           "what": "内容", "why": "原因", "severity": "重大度", "reporter": "報告者", "anonymous": "匿名",
           "countermeasure": "対策", "state": "状態", "shared_at": "共有日時"},
    "en": {k: k for k in ("id", *FIELDS, "state", "shared_at")},
}
_YES = {"はい", "yes", "1", "true", "匿名", "anonymous", "○", "y"}
_NO = {"", "いいえ", "no", "0", "false", "n"}


def _key(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().casefold().replace(" ", "")


_HEADER_LOOKUP = {_key(h): f for lang in HEADERS.values() for f, h in lang.items() if f in FIELDS}
_CATEGORY_LOOKUP = {_key(translate(lang, m)): k for k, m in CATEGORIES.items() for lang in ("ja", "en")} | \
    {k: k for k in CATEGORIES}
_SEVERITY_LOOKUP = {_key(translate(lang, m)): k for k, m in SEVERITIES.items() for lang in ("ja", "en")} | \
    {k: k for k in SEVERITIES}


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong with an import file: line (1 = first row), column (as headed), and why
    (``code``, a key of hub.nearmiss.messages.PROBLEMS, with ``params``)."""

    line: int
    column: str
    code: str
    params: tuple[tuple[str, Any], ...] = ()

    def text(self, lang: str) -> str:
        message = PROBLEMS.get(self.code)
        return self.code if message is None else translate(lang, message, **dict(self.params))

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.text('en')}"


class ImportRejected(NearMissError):
    """The file has problems (``problems``, every one found); nothing was imported."""

    def __init__(self, problems: list[ImportProblem]):
        self.problems = problems
        super().__init__("nearmiss.import_rejected", {"count": len(problems)})


@dataclass(frozen=True)
class ImportReport:
    """What a clean import did."""

    rows: int
    added: int
    already: int


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def _when(value: Any, zone: tzinfo) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=zone) if value.tzinfo is None else value
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().replace("/", "-").replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=zone)
        except ValueError:
            continue
    return None


def _check(conn: Connection, cfg: HubConfig, table: list[tuple[int, list[Any]]], actor: str,
           ) -> tuple[list[dict[str, Any]], list[ImportProblem]]:
    problems: list[ImportProblem] = []
    body = [(line, cells) for line, cells in table if not all(_blank(c) for c in cells)]
    if not body:
        return [], [ImportProblem(1, "", "empty_file")]
    head_line, head = body[0]
    columns: dict[str, tuple[int, str]] = {}
    for index, cell in enumerate(head):
        name = None if _blank(cell) else _HEADER_LOOKUP.get(_key(cell))
        if name is not None and name not in columns:
            columns[name] = (index, str(cell).strip())
    for name in REQUIRED:
        if name not in columns:
            problems.append(ImportProblem(head_line, f"{HEADERS['ja'][name]}/{name}", "column_missing"))
    if problems:
        return [], problems
    if len(body) == 1:
        return [], [ImportProblem(head_line, "", "no_rows")]
    known = set(cfg.known_stations() or {}) | set(conn.execute(select(stations.c.station)).scalars())
    now = now_utc()
    out = []
    for line, cells in body[1:]:
        def cell(name: str, cells: list[Any] = cells) -> tuple[Any, str]:
            if name not in columns:
                return None, ""
            index, label = columns[name]
            return (cells[index] if index < len(cells) else None), label

        before = len(problems)

        def bad(label: str, code: str, **params: Any) -> None:
            problems.append(ImportProblem(line, label, code, tuple(params.items())))

        value, label = cell("occurred_at")
        when = None if _blank(value) else _when(value, cfg.zone())
        if _blank(value):
            bad(label, "missing")
        elif when is None:
            bad(label, "not_a_time", value=repr(_text(value)))
        elif when > now:
            bad(label, "future", day=when.date())
        row: dict[str, Any] = {}
        for name, lookup, code in (("category", _CATEGORY_LOOKUP, "bad_category"),
                                   ("severity", _SEVERITY_LOOKUP, "bad_severity")):
            value, label = cell(name)
            if _blank(value):
                bad(label, "missing")
            elif _key(value) not in lookup:
                bad(label, code, value=repr(_text(value)))
            else:
                row[name] = lookup[_key(value)]
        for name, limit, required in (("what", MAX_TEXT, True), ("why", MAX_TEXT, True), ("place", MAX_PLACE, False),
                                      ("countermeasure", MAX_TEXT, False), ("reporter", 64, False)):
            value, label = cell(name)
            row[name] = "" if _blank(value) else _text(value)
            if required and not row[name]:
                bad(label, "missing")
            elif len(row[name]) > limit:
                bad(label, "too_long", n=limit)
        value, label = cell("station")
        row["station"] = None if _blank(value) else _text(value)
        if row["station"] is not None and row["station"] not in known:
            bad(label, "unknown_station", value=repr(row["station"]))
        if row["station"] is None and not row["place"]:
            bad(columns["place"][1] if "place" in columns else "場所/place", "no_place")
        value, label = cell("anonymous")
        anonymous = _key(value) if not _blank(value) else ""
        if anonymous not in _YES and anonymous not in _NO:
            bad(label, "bad_choice", value=repr(_text(value)))
        if len(problems) == before:
            row.update(occurred_at=utc_text(when), anonymous=anonymous in _YES,  # type: ignore[arg-type]
                       reporter=row["reporter"] or actor, line=line)
            out.append(row)
    return out, problems


def import_cases(engine: Engine, cfg: HubConfig, actor: str, data: bytes, *, filename: str | None = None,
                 now: datetime | None = None) -> ImportReport:
    """Import a file of cases (see the module's docstring); ImportRejected, with every problem,
    and nothing imported, unless the whole file is clean."""
    table, read_problems = load_table(bytes(data), None, filename, None)
    if read_problems:
        raise ImportRejected([ImportProblem(p.line, p.column, p.code, p.params) for p in read_problems])
    when = now or now_utc()
    at = utc_text(when)
    added = already = 0
    with begin_write(engine) as conn:
        rows, problems = _check(conn, cfg, table, actor)
        if problems:
            raise ImportRejected(problems)
        # Like the registry's own imports, each case added is a row of the registry's change
        # log, in this transaction (no policy depends on a case: nobody is told to recompile).
        changes = Recorder(conn, check_actor(actor[:MAX_ACTOR]), when)
        for row in rows:
            same = conn.execute(select(nearmiss_cases.c.id).where(
                nearmiss_cases.c.occurred_at == row["occurred_at"], nearmiss_cases.c.category == row["category"],
                nearmiss_cases.c.what == row["what"])).first()
            if same is not None:
                already += 1
                continue
            values = {k: row[k] for k in ("occurred_at", "station", "place", "category", "what", "why",
                                          "severity", "anonymous", "reporter")}
            values.update(filed_by=actor[:64], filed_at=at, source="import", alert_id=None, event_ids="[]",
                          state="filed")
            case_id = inserted_id(conn.execute(insert(nearmiss_cases).values(**values)))
            trail.record_filed(conn, case_id, values)
            if row["countermeasure"]:
                review = {"countermeasure": row["countermeasure"], "reviewed_by": actor[:64], "reviewed_at": at,
                          "state": "reviewed"}
                conn.execute(nearmiss_cases.update().where(nearmiss_cases.c.id == case_id).values(**review))
                trail.record_reviewed(conn, case_id, review)
            changes.record(LOG_ENTITY, str(case_id), "add", None, _logged(case_id, values, row["countermeasure"],
                                                                          filename))
            added += 1
    _LOG.info("near-miss import by %s: %d rows, %d added, %d already on record", actor, len(rows), added, already)
    return ImportReport(rows=len(rows), added=added, already=already)


LOG_ENTITY = "nearmiss_case"  # its rows in the registry's change log


def _logged(case_id: int, values: dict[str, Any], countermeasure: str | None, filename: str | None) -> dict[str, Any]:
    """An imported case as the change log shows it; an anonymous reporter's name is left out
    (the log's readers include auditors; the near-miss log keeps it)."""
    logged = {k: values[k] for k in ("occurred_at", "station", "place", "category", "what", "why", "severity",
                                     "anonymous")}
    if not values["anonymous"]:
        logged["reporter"] = values["reporter"]
    logged.update(id=case_id, state="reviewed" if countermeasure else "filed", file=filename or "")
    if countermeasure:
        logged["countermeasure"] = countermeasure
    return logged


def _local(text: str | None, zone: tzinfo) -> datetime | str | None:
    """A stored instant as a local date-time cell; a value that is no instant (or that the
    zone cannot hold, year 9999 east of UTC) is written as stored, never fails the export."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(zone).replace(tzinfo=None,
                                                                                           microsecond=0)
    except (ValueError, OverflowError):
        return text


def export_cases(engine: Engine, cfg: HubConfig, fmt: Format, *, role: str, username: str,
                 lang: Literal["ja", "en"] = "ja", cases: list[Case] | None = None) -> bytes:
    """The cases ``role``/``username`` may read, in the import's layout (plus number, state
    and when shared); an anonymous reporter's name only for those who may see it."""
    if fmt not in ("csv", "xlsx"):
        raise NearMissError("nearmiss.bad_format", {"value": repr(fmt)})
    zone = cfg.zone()
    names = HEADERS[lang]
    yes = translate(lang, ANONYMOUS)
    order = ("id", "occurred_at", "station", "place", "category", "what", "why", "severity", "reporter",
             "anonymous", "countermeasure", "state", "shared_at")
    chosen = cases if cases is not None else [c for c in list_cases(engine) if c.readable_by(role, username)]
    rows = []
    for c in sorted(chosen, key=lambda c: (c.occurred_at, c.id)):
        rows.append([c.id, _local(c.occurred_at, zone), c.station or "", c.place, translate(lang, CATEGORIES[c.category]),
                     c.what, c.why, translate(lang, SEVERITIES[c.severity]), c.reporter_for(role, username) or "",
                     yes if c.anonymous else "", c.countermeasure or "", translate(lang, STATES[c.state]),
                     _local(c.shared_at, zone)])
    header = [names[k] for k in order]
    if fmt == "csv":
        return table_csv(header, rows)
    return table_xlsx(header, [(r, False) for r in rows], sheet="ヒヤリハット" if lang == "ja" else "near-misses")

