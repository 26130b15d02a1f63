"""Import and export of training attendance as CSV or Excel (.xlsx), the way the office
keeps it today: one row per attendee per session.

Columns (Japanese or English header, any order; other columns are ignored)::

    職員番号 / staff_no     required  a registered staff number
    氏名     / name         required  must match the registry's name for that number
    研修名   / training     required  a training in the catalogue
    実施日   / held_on      required  YYYY-MM-DD (also YYYY/M/D, 2025年4月1日) or an Excel date
    区分     / employment   optional  正規, 嘱託, パート (or regular, shokutaku, part_time)
    場所     / place        optional  where the session was held
    カードID / badge        optional  the attendee's registered badge id, in any form the
                                      registry's form takes (kagiban.badge_id); with it the
                                      staff number may be left empty, and if both are given
                                      they must belong to the same person

CSV is read as UTF-8 (a BOM is fine; Shift_JIS from older Excel is accepted too); an .xlsx
is read from its first (active) sheet. The header is the first non-empty row.

An import checks every row first and reports every problem (line, column, reason) in
:class:`ImportRejected`; nothing is imported unless the whole file is clean. A clean file
creates the sessions it names (one per training and date) and records the attendance, in one
transaction with its change log; rows already on record are counted, not repeated, so
importing the same file twice changes nothing. Export writes the same layout, so an export
imports back into a registry with the same people and trainings.
"""
from __future__ import annotations

import csv
import io as _io
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, select

from hub.catalog import translate
from hub.registry.common import STAFF_NO_PATTERN, fold, nfkc
from hub.registry.log import RegistryError, writing
from hub.registry.messages import PROBLEMS
from hub.registry.trainings import add_attendance_row, insert_session
from hub.store.schema import attendance, badges, people, training_sessions, trainings
from hub.ledgers.spreadsheet import csv_line, read_csv_text, write_cell
from kagiban.badge_id import BadgeIdError, normalise_badge_id

if TYPE_CHECKING:
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

_LOG = logging.getLogger(__name__)

Format = Literal["csv", "xlsx"]
FIELDS = ("staff_no", "name", "training", "held_on", "employment", "place")
REQUIRED = ("staff_no", "name", "training", "held_on")
HEADERS = {
    "ja": {"staff_no": "職員番号", "name": "氏名", "training": "研修名", "held_on": "実施日",
           "employment": "区分", "place": "場所"},
    "en": {f: f for f in FIELDS},
}
_ALIASES = {
    "staff_no": ("職員番号", "staff_no", "staffno", "staff_number"),
    "name": ("氏名", "name"),
    "training": ("研修名", "training"),
    "held_on": ("実施日", "held_on", "受講日"),
    "employment": ("区分", "employment", "雇用区分"),
    "place": ("場所", "place", "会場"),
    "badge": ("カードID", "バッジID", "badge", "badge_id", "card_id"),
}
EMPLOYMENT_LABELS = {
    "ja": {"regular": "正規", "shokutaku": "嘱託", "part_time": "パート"},
    "en": {"regular": "regular", "shokutaku": "shokutaku", "part_time": "part_time"},
}
_EMPLOYMENT_ALIASES = {
    "regular": ("正規", "正職員", "正規職員", "常勤", "regular"),
    "shokutaku": ("嘱託", "嘱託職員", "shokutaku"),
    "part_time": ("パート", "パートタイム", "非常勤", "part_time", "part-time", "parttime"),
}
MAX_ROWS = 100_000
_DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]0{1,2}:00(?::00)?)?$")
_STAFF_NO_RE = re.compile(STAFF_NO_PATTERN)


def _key(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold().replace(" ", "").replace("-", "_")


_HEADER_LOOKUP = {_key(alias): f for f, aliases in _ALIASES.items() for alias in aliases}
_EMPLOYMENT_LOOKUP = {_key(alias): code for code, aliases in _EMPLOYMENT_ALIASES.items() for alias in aliases}


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong with an import file: its line (1 = the first row), the column (as
    headed in the file), and why: ``code`` (a key of hub.registry.messages.PROBLEMS) and its
    ``params``, for each interface to word in its own language."""

    line: int
    column: str
    code: str
    params: tuple[tuple[str, Any], ...] = ()
    # A column the header does not name, by number (1 = the first); ``column`` reads "column N".
    column_no: int | None = None

    def text(self, lang: str) -> str:
        """Why, in ``lang`` ("ja" or "en")."""
        message = PROBLEMS.get(self.code)
        if message is None:  # a code without a sentence: a bug, but the reason must still show
            return self.code
        return translate(lang, message, **dict(self.params))

    @property
    def reason(self) -> str:
        """Why, in English (for logs and the CLI)."""
        return self.text("en")

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.reason}" if self.column else \
            f"line {self.line}: {self.reason}"


class ImportRejected(RegistryError):
    """The file has problems (``problems``, every one found); nothing was imported."""

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__("import.rejected", {"count": len(problems), "problems": shown + more})


@dataclass(frozen=True)
class ImportReport:
    """What a clean import did."""

    rows: int
    sessions_created: int
    attendance_added: int
    already_recorded: int
    session_ids: tuple[int, ...] = field(default=())


# --- reading the file ---


def _detect(data: bytes, fmt: str | None, filename: str | None) -> str:
    if fmt is not None:
        if fmt not in ("csv", "xlsx"):
            raise RegistryError("io.bad_format", {"value": repr(fmt)})
        return fmt
    if filename and filename.lower().endswith(".xlsx"):
        return "xlsx"
    if filename and filename.lower().endswith(".csv"):
        return "csv"
    return "xlsx" if data[:4] == b"PK\x03\x04" else "csv"


def _read_csv(data: bytes) -> tuple[list[tuple[int, list[Any]]], list[RowProblem]]:
    if b"\x00" in data:  # UTF-16 ("Unicode text") or not text at all
        return [], [RowProblem(1, "", "not_utf8")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp932")  # "CSV (comma delimited)" from Japanese Excel
        except UnicodeDecodeError:
            return [], [RowProblem(1, "", "not_utf8")]
    reader = csv.reader(_io.StringIO(text, newline=""))
    rows: list[tuple[int, list[Any]]] = []
    start = 1
    try:
        for cells in reader:
            rows.append((start, [read_csv_text(c) for c in cells]))  # our own export's text marks undone
            start = reader.line_num + 1
            if len(rows) > MAX_ROWS:
                return [], [RowProblem(start, "", "too_many_rows", (("n", MAX_ROWS),))]
    except csv.Error as exc:
        return [], [RowProblem(start, "", "bad_csv", (("detail", str(exc)),))]
    return rows, []


def _read_xlsx(data: bytes, sheet: str | None) -> tuple[list[tuple[int, list[Any]]], list[RowProblem]]:
    import openpyxl  # only the Excel path needs it

    try:
        book = openpyxl.load_workbook(_io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML and openpyxl errors alike: not a usable workbook
        return [], [RowProblem(1, "", "not_xlsx", (("detail", type(exc).__name__),))]
    try:
        ws: ReadOnlyWorksheet  # what a read-only workbook holds
        if sheet is not None:
            if sheet not in book.sheetnames:
                return [], [RowProblem(1, "", "no_sheet", (("name", repr(sheet)),))]
            ws = book[sheet]
        else:
            ws = book.active or book.worksheets[0]
        ws.reset_dimensions()  # some writers store a wrong size; read what is there
        rows = []
        for number, cells in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
            rows.append((number, list(cells)))
            if len(rows) > MAX_ROWS:
                return [], [RowProblem(number, "", "too_many_rows", (("n", MAX_ROWS),))]
        return rows, []
    finally:
        book.close()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# --- checking the rows ---


@dataclass
class _Row:
    line: int
    person: Any
    training: Any
    held_on: date
    place: str | None


def _cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return nfkc(str(value))


def _parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        match = _DATE_RE.match(nfkc(value))
        if match:
            try:
                return date(*(int(g) for g in match.groups()))
            except ValueError:
                return None
    return None


class _Checker:
    """Checks rows against the registry on one connection, collecting every problem."""

    def __init__(self, conn: Connection, today: date):
        self.today = today
        self.people = {r.staff_no: r for r in conn.execute(select(people))}
        by_id = {r.id: r for r in self.people.values()}
        self.badges = {r.badge_id: by_id[r.person_id]
                       for r in conn.execute(select(badges.c.badge_id, badges.c.person_id))}
        self.trainings = {fold(r.name): r for r in conn.execute(select(trainings))}
        # Leading zeros lost in a number cell: 1234 may mean 001234, if only one does.
        self.unpadded: dict[str, list[str]] = {}
        for number in self.people:
            if number.isdigit():
                self.unpadded.setdefault(number.lstrip("0") or "0", []).append(number)
        self.problems: list[RowProblem] = []

    def problem(self, row: int, column: str, code: str, /, **params: Any) -> None:
        self.problems.append(RowProblem(row, column, code, tuple(params.items())))

    def outside(self, row: int, column_no: int) -> None:
        """A value right of the header's last column (numbered from 1)."""
        self.problems.append(RowProblem(row, f"column {column_no}", "outside_columns", column_no=column_no))

    def person(self, line: int, column: str, value: Any) -> Any:
        if _blank(value):
            self.problem(line, column, "missing")
            return None
        number = _cell_text(value)
        if not _STAFF_NO_RE.match(number):
            self.problem(line, column, "not_staff_no", value=repr(number))
            return None
        if number in self.people:
            return self.people[number]
        if number.isdigit():
            matches = self.unpadded.get(number.lstrip("0") or "0", [])
            if len(matches) == 1:
                return self.people[matches[0]]
        self.problem(line, column, "unknown_staff_no", number=number)
        return None

    def badge_holder(self, line: int, column: str, value: Any) -> Any:
        """The person a badge cell names (None, with the problem recorded, if none)."""
        try:
            bid = normalise_badge_id(_cell_text(value))
        except BadgeIdError as exc:
            self.problem(line, column, exc.code, **exc.params)
            return None
        holder = self.badges.get(bid)
        if holder is None:
            self.problem(line, column, "unknown_badge", badge=bid)
        return holder

    def header(self, line: int, cells: list[Any]) -> dict[str, tuple[int, str]] | None:
        columns: dict[str, tuple[int, str]] = {}
        for index, cell in enumerate(cells):
            if _blank(cell):
                continue
            label = str(cell).strip()
            name = _HEADER_LOOKUP.get(_key(label))
            if name is None:
                continue  # the office's other columns (所属, 備考, ...) are not ours
            if name in columns:
                self.problem(line, label, "column_twice", n=columns[name][0] + 1)
                continue
            columns[name] = (index, label)
        # The staff number may be left out when the badge identifies the attendee.
        needed = [n for n in REQUIRED if n != "staff_no" or "badge" not in columns]
        for name in needed:
            if name not in columns:
                self.problem(line, f"{HEADERS['ja'][name]}/{name}", "column_missing")
        return None if any(n not in columns for n in needed) else columns

    def attendee(self, line: int, columns: dict[str, tuple[int, str]], cell: Callable) -> Any:
        """The row's person, by staff number, badge, or both (which must agree)."""
        number_value, number_label = cell("staff_no") if "staff_no" in columns else (None, "")
        badge_value, badge_label = cell("badge") if "badge" in columns else (None, "")
        if "badge" not in columns or _blank(badge_value):
            return self.person(line, number_label or badge_label, number_value)
        holder = self.badge_holder(line, badge_label, badge_value)
        if "staff_no" not in columns or _blank(number_value):
            return holder
        person = self.person(line, number_label, number_value)
        if person is not None and holder is not None and person.id != holder.id:
            self.problem(line, badge_label, "badge_other_person", badge=normalise_badge_id(_cell_text(badge_value)),
                         holder=holder.staff_no, number=person.staff_no)
            return None
        return person

    def rows(self, table: list[tuple[int, list[Any]]]) -> list[_Row]:
        body = [(line, cells) for line, cells in table if not all(_blank(c) for c in cells)]
        if not body:
            self.problem(1, "", "empty_file")
            return []
        head_line, head_cells = body[0]
        columns = self.header(head_line, head_cells)
        if columns is None:
            return []
        if len(body) == 1:
            self.problem(head_line, "", "no_rows")
            return []
        width = len(head_cells)
        seen: dict[tuple[int, int, date], int] = {}
        places: dict[tuple[int, date], tuple[str, int]] = {}
        out = []
        for line, cells in body[1:]:
            def cell(name: str, cells: list[Any] = cells) -> tuple[Any, str]:
                index, label = columns[name]
                return (cells[index] if index < len(cells) else None), label

            for index in range(width, len(cells)):
                if not _blank(cells[index]):
                    self.outside(line, index + 1)
                    break
            before = len(self.problems)
            person = self.attendee(line, columns, cell)

            value, label = cell("name")
            if _blank(value):
                self.problem(line, label, "missing")
            elif person is not None and fold(str(value)) != fold(person.name):
                self.problem(line, label, "name_mismatch", value=repr(str(value).strip()), number=person.staff_no,
                             name=person.name)

            value, label = cell("training")
            training = None
            if _blank(value):
                self.problem(line, label, "missing")
            else:
                training = self.trainings.get(fold(str(value)))
                if training is None:
                    self.problem(line, label, "unknown_training", name=repr(str(value).strip()))

            value, label = cell("held_on")
            held = None
            if _blank(value):
                self.problem(line, label, "missing")
            else:
                held = _parse_date(value)
                if held is None:
                    self.problem(line, label, "not_a_date", value=repr(str(value).strip()))
                elif held > self.today:
                    self.problem(line, label, "future", day=held)
                    held = None

            if "employment" in columns:
                value, label = cell("employment")
                if not _blank(value) and _key(str(value)) not in _EMPLOYMENT_LOOKUP:
                    self.problem(line, label, "unknown_employment", value=repr(str(value).strip()))

            place = None
            if "place" in columns:
                value, label = cell("place")
                place = "" if _blank(value) else _cell_text(value)
                if len(place) > 128:
                    self.problem(line, label, "too_long", n=128)
                elif training is not None and held is not None:
                    first = places.setdefault((training.id, held), (place, line))
                    if first[0] != place:
                        self.problem(line, label, "place_differs", value=repr(place), line=first[1],
                                     first=repr(first[0]))

            if person is not None and training is not None and held is not None:
                key = (person.id, training.id, held)
                if key in seen:
                    self.problem(line, cell("staff_no" if "staff_no" in columns else "badge")[1],
                                 "duplicate", line=seen[key])
                else:
                    seen[key] = line
            if len(self.problems) == before:
                out.append(_Row(line, person, training, held, place))  # type: ignore[arg-type]
        return out


def _load(source: bytes | str | Path, fmt: str | None, filename: str | None,
          sheet: str | None) -> tuple[list[tuple[int, list[Any]]], list[RowProblem]]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        filename = filename or path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RegistryError("io.unreadable", {"path": str(path), "detail": str(exc)}) from exc
    else:
        data = bytes(source)
    kind = _detect(data, fmt, filename)
    return _read_xlsx(data, sheet) if kind == "xlsx" else _read_csv(data)


def check_attendance(
    engine: Engine,
    source: bytes | str | Path,
    *,
    fmt: Format | None = None,
    filename: str | None = None,
    sheet: str | None = None,
    today: date | None = None,
) -> list[RowProblem]:
    """Every problem an import of ``source`` (bytes, or a file path) would report; [] if clean.

    ``fmt`` None: from the file name, else from the content. ``today``: dates after it are
    refused (default: the machine's local date).
    """
    table, problems = _load(source, fmt, filename, sheet)
    if problems:
        return problems
    with engine.connect() as conn:
        checker = _Checker(conn, today or date.today())
        checker.rows(table)
    return checker.problems


def import_attendance(
    engine: Engine,
    actor: str,
    source: bytes | str | Path,
    *,
    fmt: Format | None = None,
    filename: str | None = None,
    sheet: str | None = None,
    today: date | None = None,
) -> ImportReport:
    """Import an attendance file (see the module's docstring); ImportRejected, with every
    problem, and nothing imported, unless the whole file is clean."""
    table, problems = _load(source, fmt, filename, sheet)
    if problems:
        raise ImportRejected(problems)
    with writing(engine, actor) as rec:
        # Checked inside the write transaction, so the registry cannot change in between.
        checker = _Checker(rec.conn, today or date.today())
        rows = checker.rows(table)
        if checker.problems:
            raise ImportRejected(checker.problems)
        sessions: dict[tuple[int, date], Any] = {}
        created = added = already = 0
        for row in rows:
            key = (row.training.id, row.held_on)
            if key not in sessions:
                found = rec.conn.execute(select(training_sessions.c.id).where(
                    training_sessions.c.training_id == row.training.id,
                    training_sessions.c.held_on == row.held_on)).scalar()
                if found is None:
                    found = insert_session(rec, row.training, row.held_on, row.place or "", "")
                    created += 1
                sessions[key] = SimpleNamespace(id=found, training=row.training.name, held_on=row.held_on)
            if add_attendance_row(rec, sessions[key], row.person):
                added += 1
            else:
                already += 1
    report = ImportReport(rows=len(rows), sessions_created=created, attendance_added=added,
                          already_recorded=already,
                          session_ids=tuple(sorted({s.id for s in sessions.values()})))
    _LOG.info("attendance import by %s: %d rows, %d new sessions, %d added, %d already on record",
              actor, report.rows, created, added, already)
    return report


# --- export ---


def _export_rows(
    engine: Engine, training: str | None, since: date | None, until: date | None
) -> list[Any]:
    query = (select(people.c.staff_no, people.c.name, trainings.c.name.label("training"),
                    training_sessions.c.held_on, people.c.employment, training_sessions.c.place)
             .select_from(attendance)
             .join(people, people.c.id == attendance.c.person_id)
             .join(training_sessions, training_sessions.c.id == attendance.c.session_id)
             .join(trainings, trainings.c.id == training_sessions.c.training_id)
             .order_by(training_sessions.c.held_on, trainings.c.name, people.c.staff_no))
    if training is not None:
        query = query.where(trainings.c.name == training)
    if since is not None:
        query = query.where(training_sessions.c.held_on >= since)
    if until is not None:
        query = query.where(training_sessions.c.held_on <= until)
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def export_attendance(
    engine: Engine,
    fmt: Format = "csv",
    *,
    training: str | None = None,
    since: date | None = None,
    until: date | None = None,
    lang: Literal["ja", "en"] = "ja",
) -> bytes:
    """Attendance as a file in the import layout (one row per attendee per session, oldest
    first), optionally of one training or between two days. CSV is UTF-8 with a BOM (so
    Excel opens it right); in .xlsx the staff number is text and the date a date."""
    if fmt not in ("csv", "xlsx"):
        raise RegistryError("io.bad_format", {"value": repr(fmt)})
    if lang not in HEADERS:
        raise RegistryError("io.bad_language", {"value": repr(lang)})
    header = [HEADERS[lang][f] for f in FIELDS]
    labels = EMPLOYMENT_LABELS[lang]
    rows = [[r.staff_no, r.name, r.training, r.held_on, labels[r.employment], r.place]
            for r in _export_rows(engine, training, since, until)]
    if fmt == "csv":
        buffer = _io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(csv_line(header))
        for row in rows:
            writer.writerow(csv_line(row))
        return buffer.getvalue().encode("utf-8-sig")
    return _xlsx(header, rows, "受講記録" if lang == "ja" else "attendance")


def _xlsx(header: list[str], rows: list[list[Any]], title: str) -> bytes:
    import openpyxl
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None  # a new workbook has its one sheet
    ws.title = title
    for col, text in enumerate(header, start=1):
        write_cell(ws, text, 1, col).font = Font(bold=True)
    for n, values in enumerate(rows, start=2):
        for col, value in enumerate(values, start=1):
            # Text stays text (never a formula); control characters are left out of the cell.
            cell = write_cell(ws, value, n, col)
            if isinstance(value, str):
                cell.number_format = "@"
            elif isinstance(value, (date, datetime)):
                cell.number_format = "yyyy-mm-dd"
    for letter, width in zip("ABCDEF", (12, 18, 30, 12, 10, 18), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    out = _io.BytesIO()
    book.save(out)
    return out.getvalue()
