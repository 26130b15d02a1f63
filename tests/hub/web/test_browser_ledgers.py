"""The key ledger in a real Chromium: a supervisor opens 鍵の使用簿 from the menu, asks for the
month, sees the after-hours and incomplete rows and the forced door's photo link, picks the
work of a use from the office's list, and prints the A4 view to PDF: the PDF's text (pdftotext)
has the site, the period, the seal box label and the page numbers.

Chromium is Debian's (/usr/bin/chromium), driven by Playwright's Python API.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from hub.config import load
from tests.support.key_uses import SITE_NAME, SITES, april, use
from tests.support.web_app import HOLDER, PASSWORD, STANDIN, store, write_config

from playwright import sync_api as playwright_api

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 20_000  # every wait for the page is bounded (the shared machine is slow at times)


@pytest.fixture
def cfg(tmp_path, store):
    return load(write_config(tmp_path / "hub", sites=SITES))


@pytest.fixture
def month_of_uses(engine):
    payloads, snaps = april(HOLDER, STANDIN)
    assert store(engine, payloads, snapshots=snaps).quarantined == 0
    return payloads


def signed_in(browser, server, users):
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1366, "height": 860})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    base = f"http://127.0.0.1:{server.port}"
    page.goto(base + "/login")
    page.fill("input[name=username]", users["supervisor"])
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    playwright_api.expect(page).to_have_url(base + "/")
    return page, base


def test_a_supervisor_reads_the_month_and_records_the_work(browser, server, users, month_of_uses, tmp_path):
    page, _base = signed_in(browser, server, users)
    expect = playwright_api.expect
    page.click("header nav >> text=鍵の使用簿")
    expect(page.locator("h1")).to_contain_text("鍵の使用簿")
    # The cabinet first (its day), then its month: the month form keeps the cabinet shown.
    page.select_option("#keys-day select[name=station]", "cabinet-1")
    page.click("#keys-day button[type=submit]")
    expect(page.locator("#keys-day select[name=station]")).to_have_value("cabinet-1")
    page.fill("#keys-month input[name=month]", "2025-04")
    page.click("#keys-month button[type=submit]")
    expect(page.locator("h1 small")).to_have_text("2025-04")
    expect(page.locator("#keys-day select[name=station]")).to_have_value("cabinet-1")
    rows = page.locator("#cabinet-cabinet-1 tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(0).locator("td.work")).to_contain_text("戸籍簿の出納")
    expect(rows.nth(1).locator("td.notes")).to_contain_text("時間外")
    expect(rows.nth(1).locator("td.photo a")).to_have_text("写真")
    expect(page.locator("tr.incomplete")).to_have_count(2)
    expect(page.locator("#keys-to-check")).to_contain_text("未記入の鍵の使用が2件")
    page.screenshot(path=str(tmp_path / "key-ledger-month.png"), full_page=True, animations="disabled")

    # The stand-in's use on the 2nd: picked from the list, recorded, back on the same month.
    standin = page.locator("tr.incomplete").first
    standin.locator("select[name=work]").select_option(label="カード保管庫の点検")
    standin.locator("button[type=submit]").click()
    expect(page.locator(".flash-ok")).to_contain_text("作業内容を記録しました。")
    expect(page.locator("h1 small")).to_have_text("2025-04")
    expect(page.locator("tr.incomplete")).to_have_count(1)
    expect(rows.nth(2).locator("td.work .work-label")).to_have_text("カード保管庫の点検")


def test_the_print_view_prints_on_a4_with_site_period_and_seal(browser, server, users, month_of_uses, tmp_path):
    page, base = signed_in(browser, server, users)
    page.goto(base + "/ledger/keys?station=cabinet-1&month=2025-04")
    with page.expect_popup() as popup:
        page.click("#keys-print")
    sheet = popup.value
    sheet.wait_for_load_state()
    playwright_api.expect(sheet.locator("h1")).to_have_text("鍵の使用簿")
    sheet.screenshot(path=str(tmp_path / "key-ledger-print.png"), full_page=True)
    pdf = tmp_path / "key-ledger.pdf"
    sheet.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, timeout=30, check=True).stdout
    # A4 (poppler names it, rounding Chromium's points), landscape for the ledger's columns.
    size = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts \(A4\)", info)
    assert size is not None, info
    assert float(size.group(1)) > float(size.group(2))
    words = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, timeout=30,
                           check=True).stdout
    assert SITE_NAME in words
    assert "2025-04" in words and "確認印" in words
    assert re.search(r"^\s+1\s*/\s*1\s*$", words, re.MULTILINE)  # the page number, alone in the bottom margin
    assert "未記入" in words and "時間外" in words


def test_the_month_and_range_forms_take_the_cabinet_chosen_in_the_list(browser, server, users, engine,
                                                                       month_of_uses):
    assert store(engine, use("cabinet-2", 1, STANDIN, "S002", "04-03", "10:00:00", "10:00:02", "10:00:40",
                             38.0, flagged=True)).quarantined == 0
    page, base = signed_in(browser, server, users)
    expect = playwright_api.expect
    page.goto(base + "/ledger/keys?day=2025-04-01")
    # Chosen in the list, not shown yet: the month form asks for that cabinet's month.
    page.select_option("#keys-day select[name=station]", "cabinet-2")
    page.fill("#keys-month input[name=month]", "2025-04")
    page.click("#keys-month button[type=submit]")
    expect(page.locator("h1 small")).to_have_text("2025-04")
    expect(page.locator("#cabinet-cabinet-2 tbody tr")).to_have_count(1)
    expect(page.locator("#cabinet-cabinet-1")).to_have_count(0)
    expect(page.locator("#keys-day select[name=station]")).to_have_value("cabinet-2")
    # Every cabinet chosen again, then a range: both cabinets' uses.
    page.select_option("#keys-day select[name=station]", "")
    page.fill("#keys-range input[name=from]", "2025-04-01")
    page.fill("#keys-range input[name=to]", "2025-04-03")
    page.click("#keys-range button[type=submit]")
    expect(page.locator("h1 small")).to_contain_text("2025-04-01")
    expect(page.locator("#cabinet-cabinet-1")).to_have_count(1)
    expect(page.locator("#cabinet-cabinet-2 tbody tr")).to_have_count(1)


def test_a_month_of_more_rows_than_a_page_is_read_page_by_page(browser, server, users, engine, month_of_uses,
                                                               monkeypatch):
    from hub.ledgers import paging

    monkeypatch.setattr(paging, "PAGE_ROWS", 2)
    assert store(engine, use("cabinet-2", 1, STANDIN, "S002", "04-03", "10:00:00", "10:00:02", "10:00:40",
                             38.0)).quarantined == 0
    page, base = signed_in(browser, server, users)
    expect = playwright_api.expect
    page.goto(base + "/ledger/keys?month=2025-04")
    # The whole month's totals above the first page: four uses, one forced opening.
    expect(page.locator('#keys-totals [data-entry="use"] b')).to_have_text("4")
    expect(page.locator('#keys-totals [data-entry="forced"] b')).to_have_text("1")
    seen = []
    for _ in range(5):  # bounded: three pages of two rows, the last of one
        expect(page.locator("#keys-pager")).to_contain_text("このページに")
        seen += page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.event)")
        following = page.locator('#keys-pager a[rel="next"]')
        if following.count() == 0:
            break
        following.click()
        expect(page.locator("h1 small")).to_have_text("2025-04")
    assert len(seen) == 5 and len(set(seen)) == 5
    # Back one page from the last: its first row is the third of the month.
    page.locator('#keys-pager-bottom a[rel="prev"]').click()
    expect(page.locator("tbody tr").first).to_have_attribute("data-event", seen[2])
    page.locator('#keys-pager a[rel="first"], #keys-pager a[rel="prev"]').first.click()
    expect(page.locator("tbody tr").first).to_have_attribute("data-event", seen[0])
