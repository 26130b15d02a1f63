"""The three ledgers' pages by day, month and date range (one period parser), the key ledger's
new columns and work recording on the page, and the printable A4 view of each ledger: what a
supervisor, the person who used a key and an auditor see and may do."""
from __future__ import annotations

import csv
import io
import re

import pytest

from hub.accounts.users import add_user
from hub.config import load
from hub.store.schema import key_work
from tests.hub.helpers import event
from tests.support.key_uses import SITE_NAME, SITES, april
from tests.support.web_app import HOLDER, PASSWORD, STANDIN, csrf_from, login, store, write_config

STATIONS = [
    {"id": "cabinet-1", "site": "ward-a", "kind": "cabinet", "name": "Cabinet 1"},
    {"id": "shredder-1", "site": "ward-a", "kind": "shredder", "name": "Shredder 1"},
    {"id": "printer-1", "site": "ward-a", "kind": "printer", "name": "Printer 1"},
]


@pytest.fixture
def cfg(tmp_path, store):
    return load(write_config(tmp_path / "hub", sites=SITES, stations=STATIONS))


@pytest.fixture
def stored(engine):
    payloads, snaps = april(HOLDER, STANDIN)
    payloads += [
        ("event", event("shredder-1", 1, kind="shred.started", at="2025-04-03T10:00:00+09:00", badge=STANDIN,
                        person="S002", data={"people": ["S001", "S002"], "badges": [HOLDER, STANDIN]})),
        ("event", event("shredder-1", 2, kind="shred.ended", at="2025-04-03T10:02:00+09:00", badge=STANDIN,
                        person="S002", data={"people": ["S001", "S002"], "badges": [HOLDER, STANDIN],
                                             "duration_s": 120.0, "ended_by": "tap"})),
        ("event", event("printer-1", 1, kind="print.released", at="2025-04-04T11:00:00+09:00", badge=HOLDER,
                        person="S001", data={"user": "S001", "jobs": [{"id": 7, "title": "住民票.pdf",
                                                                       "pages": 2}]})),
    ]
    ingest = store(engine, payloads, snapshots=snaps)
    assert ingest.quarantined == 0
    return payloads


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def row_ids(html: str, marker: str) -> list[str]:
    return re.findall(rf'<tr [^>]*class="[^"]*{marker}[^"]*"', html)


def test_the_key_ledger_by_month_and_range(as_supervisor, stored):
    month = text(as_supervisor.get("/ledger/keys?station=cabinet-1&month=2025-04"))
    assert "<small>2025-04</small>" in month
    assert len(re.findall(r'<tr id="use-', month)) == 4  # not May's
    assert len(re.findall(r'<td class="time day">2025-04-0[125]</td>', month)) == 4
    ranged = text(as_supervisor.get("/ledger/keys?station=cabinet-1&from=2025-04-02&to=2025-04-05"))
    assert len(re.findall(r'<tr id="use-', ranged)) == 2
    # The exports and the print view ask for the same period.
    assert 'href="/ledger/keys.csv?from=2025-04-02&amp;to=2025-04-05&amp;station=cabinet-1"' in ranged
    assert 'href="/ledger/keys/print?from=2025-04-02&amp;to=2025-04-05&amp;station=cabinet-1"' in ranged


def test_the_key_ledger_shows_after_hours_photo_and_incomplete_work(as_supervisor, stored):
    html = text(as_supervisor.get("/ledger/keys?station=cabinet-1&month=2025-04"))
    assert len(row_ids(html, "after-hours")) == 2
    assert html.count('class="pill warn work-missing">未記入<') == 2
    assert "作業内容が未記入の鍵の使用が2件あります。" in html
    assert "戸籍簿の出納" in html and "保管庫のボタンで記録" in html
    forced_id = stored[5][1]["id"]
    assert f'href="/snapshots/{forced_id}.jpg"' in html


def test_the_other_ledgers_by_month_and_range(as_supervisor, stored):
    shred = text(as_supervisor.get("/ledger/shredder?month=2025-04"))
    assert len(re.findall(r'<tr class="shred-session', shred)) == 1 and "2025-04-03" in shred
    assert "shred-session" not in text(as_supervisor.get("/ledger/shredder?from=2025-04-04&to=2025-04-30"))
    prints = text(as_supervisor.get("/ledger/prints?from=2025-04-01&to=2025-04-10"))
    assert "住民票.pdf" in prints and '<td class="time day">2025-04-04</td>' in prints
    assert "住民票.pdf" not in text(as_supervisor.get("/ledger/prints?month=2025-05"))
    body = as_supervisor.get("/ledger/prints.csv?month=2025-04")
    assert 'filename="print-log_all_2025-04.csv"' in body.headers["Content-Disposition"]
    assert [r["文書名"] for r in csv.DictReader(io.StringIO(body.get_data().decode("utf-8-sig")))] == ["住民票.pdf"]


@pytest.mark.parametrize("path", ["/ledger/keys", "/ledger/shredder", "/ledger/prints", "/ledger/keys/print",
                                  "/ledger/shredder.csv", "/ledger/prints/print"])
@pytest.mark.parametrize("query, param", [("month=2025-13", "month"), ("from=2025-04-05&to=2025-04-01", "to"),
                                         ("from=2024-01-01&to=2025-06-30", "to"), ("day=today", "day")])
def test_a_period_that_cannot_be_shown_is_a_clear_400(as_supervisor, path, query, param):
    response = as_supervisor.get(f"{path}?{query}")
    assert response.status_code == 400
    assert param in response.get_data(as_text=True)


def record(client, event_id: str, work: str):
    html = client.get("/ledger/keys?station=cabinet-1&month=2025-04").get_data(as_text=True)
    return client.post("/ledger/keys/work", data={
        "csrf_token": csrf_from(html), "event_id": event_id, "work": work,
        "next": "/ledger/keys?station=cabinet-1&month=2025-04"})


def test_a_supervisor_picks_the_work_from_the_site_s_list(as_supervisor, engine, stored):
    standin_use = stored[10][1]["id"]
    response = record(as_supervisor, standin_use, "card-safe")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/ledger/keys?station=cabinet-1&month=2025-04#use-{standin_use}")
    html = text(as_supervisor.get("/ledger/keys?station=cabinet-1&month=2025-04"))
    assert "作業内容を記録しました。" in html and "カード保管庫の点検" in html
    assert html.count("work-missing") == 1
    csv_rows = list(csv.DictReader(io.StringIO(as_supervisor.get(
        "/ledger/keys.csv?station=cabinet-1&month=2025-04").get_data().decode("utf-8-sig"))))
    assert [r["作業内容"] for r in csv_rows] == ["戸籍簿の出納", "", "カード保管庫の点検", "未記入"]


def test_work_not_on_the_list_is_refused_naming_it(as_supervisor, engine, stored):
    html = text(as_supervisor.get(record(as_supervisor, stored[10][1]["id"], "lunch").headers["Location"]))
    assert "作業内容 lunch は拠点 ward-a の一覧にありません。" in html
    with engine.connect() as conn:
        assert conn.execute(key_work.select()).all() == []


def test_the_person_who_used_the_key_records_their_own_use_only(client, engine, stored):
    add_user(engine, "S001", PASSWORD, "auditor", display_name="Staff 001")
    assert login(client, "S001").status_code == 302
    html = text(client.get("/ledger/keys?station=cabinet-1&month=2025-04"))
    # Their own two uses offer the form; the stand-in's does not.
    assert html.count('class="work-form"') == 2
    saturday_use, standin_use = stored[14][1]["id"], stored[10][1]["id"]
    assert record(client, saturday_use, "register").status_code == 302
    refused = text(client.get(record(client, standin_use, "register").headers["Location"]))
    assert "使用した本人か責任職だけです" in refused
    with engine.connect() as conn:
        assert [(r.event_id, r.recorded_by) for r in conn.execute(key_work.select())] == [(saturday_use, "S001")]


def test_an_auditor_reads_the_work_but_has_no_form(as_auditor, stored):
    html = text(as_auditor.get("/ledger/keys?station=cabinet-1&month=2025-04"))
    assert "work-form" not in html and "Family register files" in html and ">Not recorded<" in html


@pytest.mark.parametrize("path, title", [("/ledger/keys/print", "鍵の使用簿"),
                                         ("/ledger/shredder/print", "シュレッダー管理簿"),
                                         ("/ledger/prints/print", "印刷の受け取り記録")])
def test_the_print_view_has_site_period_and_the_seal_box(as_supervisor, stored, path, title):
    html = text(as_supervisor.get(f"{path}?month=2025-04"))
    assert f"<h1>{title}</h1>" in html
    assert f'<dd class="site">{SITE_NAME}</dd>' in html and '<dd class="period">2025-04</dd>' in html
    assert "確認印" in html and 'class="seal-box"' in html
    assert "ledger_print.css" in html


def test_the_print_css_is_a4_with_page_numbers(as_supervisor):
    css = as_supervisor.get("/static/ledger_print.css").get_data(as_text=True)
    assert re.search(r"@page\s*{[^}]*size:\s*A4", css)
    assert "counter(page)" in css and "counter(pages)" in css
