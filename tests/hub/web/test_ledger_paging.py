"""The ledger pages a page at a time: a supervisor following the "next page" links of a month of
every cabinet sees each row of the month's export once, in its order; the page's totals for the
whole period are what the export counts; "previous page" goes back; a page mark typed or
forged is a clear 400 and a stored value the ledger cannot read does not break the page."""
from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest

from hub.config import load
from hub.ledgers import paging
from tests.hub.helpers import event
from tests.hub.ledgers.test_paging import STATIONS, month_of_events
from tests.support.key_uses import SITES, at
from tests.support.web_app import store, write_config


@pytest.fixture
def cfg(tmp_path, store):
    return load(write_config(tmp_path / "hub", sites=SITES, stations=STATIONS))


@pytest.fixture
def stored(engine):
    payloads = month_of_events()
    ingest = store(engine, payloads)
    assert ingest.quarantined == 0
    return payloads


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(paging, "PAGE_ROWS", 4)


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    return unescape(found.group(1)) if found else None


def follow(client, path: str, row_re: str, rel: str = "next") -> list[list[str]]:
    """The rows (their data-event ids) of each page from ``path`` on, following ``rel`` links."""
    pages = []
    for _ in range(100):  # bounded: a few pages here
        html = html_of(client.get(path))
        pages.append(re.findall(row_re, html))
        path = link(html, rel)
        if path is None:
            return pages
    raise AssertionError("the pages never ended")


def export(client, path: str) -> list[dict[str, str]]:
    body = client.get(path)
    assert body.status_code == 200
    return list(csv.DictReader(io.StringIO(body.get_data().decode("utf-8-sig"))))


def totals(html: str) -> dict[str, int]:
    return {entry: int(n) for entry, n in re.findall(r'data-entry="([a-z_]+)">[^<]*<b>(\d+)</b>', html)}


def test_the_next_links_show_every_row_of_the_month_s_export_once(as_supervisor, stored, small_pages):
    pages = follow(as_supervisor, "/ledger/keys?month=2025-04", r'<tr id="use-[^"]+"[^>]*data-event="([^"]+)"')
    rows = export(as_supervisor, "/ledger/keys.csv?month=2025-04")
    assert [e for p in pages for e in p] == [r["イベントID"] for r in rows]
    # The export is the whole month, sent a cabinet at a time as it is made.
    assert as_supervisor.get("/ledger/keys.csv?month=2025-04").is_streamed
    assert len(pages) == -(-len(rows) // 4) and all(len(p) == 4 for p in pages[:-1])


def test_the_totals_are_the_export_s_counts(as_supervisor, stored, small_pages):
    html = html_of(as_supervisor.get("/ledger/keys?month=2025-04&station="))
    rows = export(as_supervisor, "/ledger/keys.csv?month=2025-04")
    by_entry = {w: sum(r["区分"] == w for r in rows) for w in ("鍵の使用", "解錠のみ（扉は開けず）", "こじ開け")}
    assert totals(html) == {"use": by_entry["鍵の使用"], "not_opened": by_entry["解錠のみ（扉は開けず）"],
                            "forced": by_entry["こじ開け"]}
    assert totals(html)["use"] == 26 and "このページに4件" in html
    shred = html_of(as_supervisor.get("/ledger/shredder?month=2025-04"))
    assert totals(shred) == {"session": len(export(as_supervisor, "/ledger/shredder.csv?month=2025-04"))}
    prints = html_of(as_supervisor.get("/ledger/prints?month=2025-04"))
    jobs = export(as_supervisor, "/ledger/prints.csv?month=2025-04")
    # Counted per event: five releases of two jobs each, one expiry notice.
    assert totals(prints) == {"released": 5, "expired": 1, "failed": 0} and len(jobs) == 11


def test_previous_goes_back_page_by_page_to_the_first(as_supervisor, stored, small_pages):
    forward = follow(as_supervisor, "/ledger/shredder?month=2025-04", r'<tr class="shred-session[^"]*" data-event="([^"]+)"')
    assert len(forward) == 3
    html = html_of(as_supervisor.get("/ledger/shredder?month=2025-04"))
    last = link(html_of(as_supervisor.get(link(html, "next"))), "next")
    back = follow(as_supervisor, last, r'<tr class="shred-session[^"]*" data-event="([^"]+)"', rel="prev")
    assert back == list(reversed(forward))
    assert link(html_of(as_supervisor.get(last)), "first") == "/ledger/shredder?month=2025-04"


def test_a_page_reached_by_next_links_back_to_where_building_the_rows_before_leads(as_supervisor, stored,
                                                                                     small_pages):
    # A next link carries the page's own mark (``back``), so the next page need not build the rows
    # before it: its previous link must be the one the rows before give.
    path, seen = "/ledger/keys?month=2025-04", 0
    for _ in range(20):  # bounded: 7 pages here
        html = html_of(as_supervisor.get(path))
        following = link(html, "next")
        if following is None:
            break
        assert "back=" in following
        carried = link(html_of(as_supervisor.get(following)), "prev")
        without = re.sub(r"&back=[^&]*", "", following)
        assert "back=" not in without
        assert carried == link(html_of(as_supervisor.get(without)), "prev")
        path, seen = following, seen + 1
    assert seen >= 3


def test_a_forged_back_mark_is_a_clear_400(as_supervisor, stored):
    response = as_supervisor.get("/ledger/keys", query_string={"month": "2025-04", "start": "2025-04-02:1:0:cabinet-1",
                                                               "back": "garbage"})
    assert response.status_code == 400
    assert "back" in response.get_data(as_text=True)


def test_a_period_on_one_page_has_no_page_links(as_supervisor, stored):
    html = html_of(as_supervisor.get("/ledger/keys?station=cabinet-1&month=2025-04"))
    assert 'rel="next"' not in html and 'id="keys-pager"' not in html
    assert len(re.findall(r'<tr id="use-', html)) == 16


@pytest.mark.parametrize("start", ["garbage", "2025-04-02:1:0:", "2025-04-32:1:0:cabinet-1", "2025-04-02:1:0:cab\x01"])
def test_a_forged_page_mark_is_a_clear_400(as_supervisor, stored, start):
    response = as_supervisor.get("/ledger/keys", query_string={"month": "2025-04", "start": start})
    assert response.status_code == 400
    assert "start" in response.get_data(as_text=True)


def test_a_stored_value_the_ledger_cannot_read_does_not_break_a_page(as_supervisor, engine, stored, small_pages):
    bad = [("event", event("cabinet-1", 300, kind="key.used", at=at("04-03", "15:00:00"), data={
               "unlocked_at": "yesterday", "opened_at": 7, "closed_at": None, "duration_s": "long"})),
           ("event", event("printer-1", 300, kind="print.released", at=at("04-03", "15:00:00"),
                           data={"user": 5, "jobs": "all of them"})),
           ("event", event("shredder-1", 300, kind="shred.started", at=at("04-03", "15:00:00"),
                           data={"people": "S001"}))]
    assert store(engine, bad).quarantined == 0
    for path in ("/ledger/keys?month=2025-04", "/ledger/prints?month=2025-04", "/ledger/shredder?month=2025-04"):
        html = html_of(as_supervisor.get(path))
        assert link(html, "next") is not None
        assert html_of(as_supervisor.get(link(html, "next")))
