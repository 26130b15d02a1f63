"""The print release log in a real Chromium, over a real hub, printer agent, mosquitto and cupsd:
a supervisor reads who released which jobs (names, titles, pages) and when, exports it, and
sees on the status page and the log page that the printer has lost its print server."""
from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import pytest
from openpyxl import load_workbook

from device import unit_file
from device.agent import Agent
from hub import config as hub_config
from hub.service import Hub
from hub.accounts.users import add_user
from tests.support.cups import Cups, write_printer_config, write_printer_hub_config
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, hub_db, query

from playwright import sync_api as playwright_api

# No skip without cupsd: CI installs cups, and a printer test that cannot run fails (CupsUnavailable).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PASSWORD = "correct horse 01"
WAIT_MS = 5_000



def test_supervisor_reads_and_exports_the_release_log_and_sees_cups_down(broker, prefix, tmp_path, browser):
    tag = uuid.uuid4().hex[:8]
    hold, printer = f"hold-{tag}", f"print-{tag}"
    with Cups() as cups:
        cups.add_queues(hold, printer)
        hub = Hub(hub_config.load(write_printer_hub_config(tmp_path, broker.port, prefix)))
        hub.start()
        agent = None
        try:
            add_user(hub.engine, "sup-01", PASSWORD, "supervisor", display_name="Supervisor 01")
            agent = Agent(unit_file.load(write_printer_config(tmp_path, broker.port, prefix, cups, hold, printer)))
            agent.start()
            wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the printer")
            db = hub_db(tmp_path / "hub.yaml")
            cups.submit_job("S001", "住民票の写し", 2, queue=hold)
            cups.submit_job("S002", "戸籍謄本", 3, queue=hold)
            agent.reader.tap(HOLDER)
            wait_for(lambda: query(db, "SELECT 1 FROM events WHERE kind='print.printed'"), timeout=20,
                     what="the release printed and recorded")

            context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", accept_downloads=True)
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            expect = playwright_api.expect
            page.goto(hub.web_url + "login")
            page.fill("input[name=username]", "sup-01")
            page.fill("input[name=password]", PASSWORD)
            page.click("button.primary")
            expect(page).to_have_url(hub.web_url)

            # The release log: Staff 001 released their own job; Staff 002's stays held (no row).
            page.click("header nav >> text=印刷の受け取り記録")
            row = page.locator("tr.entry-released")
            expect(row).to_have_count(1)
            expect(row).to_contain_text("Staff 001")
            expect(row).to_contain_text("住民票の写し")
            expect(row.locator("td.num")).to_have_text("2")
            expect(row).to_contain_text("印刷済み")
            expect(page.locator("body")).not_to_contain_text("戸籍謄本")

            with page.expect_download() as info:
                page.click("a.button >> text=CSV")
            raw = Path(info.value.path()).read_bytes()
            rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
            assert [(r["職員番号"], r["文書名"], r["ページ数"], r["区分"]) for r in rows] == [
                ("S001", "住民票の写し", "2", "受け取り")]
            with page.expect_download() as info:
                page.click("a.button >> text=Excel")
            xlsx = tmp_path / info.value.suggested_filename
            info.value.save_as(xlsx)
            values = [[c.value for c in r] for r in load_workbook(xlsx).active.iter_rows()]
            header = next(r for r in values if r[0] == "プリンター")
            line = next(r for r in values if "S001" in r)
            assert line[header.index("氏名")] == "Staff 001" and line[header.index("ページ数")] == 2

            # The print server goes away: the status page's open alerts and the log page say so.
            cups.stop()
            wait_for(lambda: query(db, "SELECT 1 FROM alerts WHERE rule='cups_down'"), timeout=15,
                     what="the cups_down alert")
            page.goto(hub.web_url)
            expect(page.locator("#open-alerts")).to_contain_text("印刷サーバー（CUPS）に接続できません")
            page.click("header nav >> text=印刷の受け取り記録")
            expect(page.locator("#cups-down-printer-1")).to_contain_text("印刷サーバーに接続できません")
            context.close()
        finally:
            if agent is not None:
                agent.stop()
            hub.stop()
