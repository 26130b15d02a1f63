"""docs/protocol.md, "Event kinds", lists every kind the code knows with the keys of its data:
a kind or a key added to kagiban/events.py and not to the document (or the reverse) fails here."""
from __future__ import annotations

import re
from pathlib import Path

from kagiban.events import MODELS, EventData

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
_KEY = re.compile(r"`([a-z_]+)`")


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("#### Event kinds")
    return text[start:text.index("\n### ", start)]


def _rows(section: str, header: str) -> list[list[str]]:
    """The cells of the table whose header row starts with ``header``."""
    lines = section.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[at + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _keys(cell: str) -> set[str]:
    """The keys a cell names: the first `key` of each item, once parenthesised notes (which
    name values, not keys) are taken out; items are separated by ", " or " and "."""
    while True:
        shorter = re.sub(r"\([^()]*\)", "", cell)
        if shorter == cell:
            break
        cell = shorter
    keys = set()
    for item in re.split(r", | and ", cell):
        found = _KEY.match(item.strip())
        if found:
            keys.add(found.group(1))
    return keys


def _own_fields(model: type[EventData]) -> set[str]:
    return set(model.model_fields) - set(EventData.model_fields)


def test_every_kind_is_listed_once_and_nothing_else():
    kinds = [re.fullmatch(r"`([a-z_.]+)`", row[0]).group(1) for row in _rows(_section(), "| Kind ")]
    assert len(kinds) == len(set(kinds)), "a kind is listed twice"
    assert set(kinds) == set(MODELS)


def test_each_kind_lists_exactly_the_keys_of_its_model():
    listed = {re.fullmatch(r"`([a-z_.]+)`", row[0]).group(1): _keys(row[2])
              for row in _rows(_section(), "| Kind ")}
    wrong = {kind: {"doc": sorted(listed[kind]), "model": sorted(_own_fields(model))}
             for kind, model in MODELS.items() if listed.get(kind) != _own_fields(model)}
    assert wrong == {}


def test_the_keys_every_event_may_carry_are_listed():
    listed = {re.fullmatch(r"`([a-z_]+)`", row[0]).group(1) for row in _rows(_section(), "| Key ")}
    assert listed == set(EventData.model_fields) - {"kind"}


def test_the_parser_of_this_test_reads_keys_and_not_values():
    # Values are named too (in parentheses, or after their key): they must not count as keys.
    assert _keys("`door` `open` or `closed`") == {"door"}
    assert _keys("`reason` text (`superseded`), `by_badge` text") == {"reason", "by_badge"}
    assert _keys("`a` text and `b` int (only when (nested) `c`)") == {"a", "b"}
    assert _keys("none") == set()
