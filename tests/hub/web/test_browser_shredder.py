"""The shredding ledger in a real Chromium, over a real hub, a shredder agent (mock pins, the
stand-in reader and camera) and mosquitto: two people shred, a supervisor opens
シュレッダー管理簿 from the menu, sees both names, the flag and the photo link, exports it as
Excel and CSV, looks at the month, and finds the session on the close-out page.

Chromium is Debian's (/usr/bin/chromium), driven by Playwright's Python API.
"""
from __future__ import annotations

import csv
import io
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from device import unit_file
from device.agent import Agent
from device.simulate import set_input
from hub import config as hub_config
from hub import registry
from hub.service import Hub
from hub.accounts.users import add_user
from tests.support.stack import (
    ALWAYS,
    BIN_PIN,
    POWER_PIN,
    SHREDDER,
    STOP_PIN,
    write_hub,
    write_unit,
)
from tests.support.web_app import PASSWORD
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, STANDIN, hub_db, query

from playwright import sync_api as playwright_api

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 5_000  # every wait for the page is bounded
ZONE = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def stack(broker, prefix, tmp_path):
    """A hub with its web page, one shredder agent with its policy, a supervisor account."""
    hub = Hub(hub_config.load(write_hub(tmp_path, broker.port, prefix, [
        {"id": SHREDDER, "kind": "shredder", "name": "Shredder 2F", "hours": ALWAYS}])))
    hub.start()
    agent = None
    try:
        assert hub.web_url, "the hub's web page did not start"
        add_user(hub.engine, "sup-01", PASSWORD, "supervisor", display_name="Supervisor 01")
        unit = write_unit(tmp_path, broker.port, prefix, SHREDDER, "shredder",
                          pins={"power_relay": POWER_PIN, "stop_button": STOP_PIN, "bin_sensor": BIN_PIN},
                          pair_window_s=5, shred_max_s=60)
        agent = Agent(unit_file.load(unit))
        agent.start()
        wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the shredder")
        yield hub, agent, hub_db(tmp_path / "hub.yaml")
    finally:
        if agent is not None:
            agent.stop()
        hub.stop()



def shred(agent) -> None:
    """Staff 001 and Staff 002 tap in turn, shred, and press the stop button."""
    agent.reader.tap(HOLDER)
    agent.reader.tap(STANDIN)
    wait_for(lambda: agent.pin_factory.pin(POWER_PIN).state == 1, timeout=5, what="shredder on")
    time.sleep(0.4)
    set_input(agent, "stop_button", True)
    time.sleep(0.2)
    set_input(agent, "stop_button", False)
    wait_for(lambda: agent.pin_factory.pin(POWER_PIN).state == 0, timeout=5, what="shredder off")


def test_a_supervisor_reads_and_exports_the_shredding_ledger(stack, browser, tmp_path):
    hub, agent, db = stack
    registry.add_person(hub.engine, "admin", "S001", "Staff 001")
    registry.add_person(hub.engine, "admin", "S002", "Staff 002")
    shred(agent)
    wait_for(lambda: query(db, "SELECT event_id FROM events WHERE kind='shred.ended'"), timeout=15,
             what="the session stored")
    [(started_id,)] = query(db, "SELECT event_id FROM events WHERE kind='shred.started'")
    wait_for(lambda: query(db, "SELECT 1 FROM snapshots WHERE event_id=?", started_id), timeout=10,
             what="the photo stored")
    today = datetime.now(ZONE).date()

    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", accept_downloads=True,
                                  viewport={"width": 1280, "height": 820})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    expect = playwright_api.expect
    page.goto(hub.web_url)
    page.fill("input[name=username]", "sup-01")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    expect(page).to_have_url(hub.web_url)

    # From the menu; today's sessions are shown.
    page.click("header nav >> text=シュレッダー管理簿")
    expect(page.locator("h1")).to_contain_text("シュレッダー管理簿")
    row = page.locator(f"#shredder-{SHREDDER} tr.shred-session")
    expect(row).to_have_count(1)
    expect(row.locator("td.person").nth(0)).to_contain_text("Staff 001")
    expect(row.locator("td.person").nth(1)).to_contain_text("Staff 002")
    expect(row.locator("td.ended-by")).to_have_text("停止ボタン")
    # Nobody was on today's roster: the session is flagged for a supervisor.
    expect(row).to_have_class("shred-session flagged")
    expect(row.locator("td.notes")).to_contain_text("2人とも当番外")
    expect(page.locator(".flash-error")).to_contain_text("要確認の利用が1件")
    page.screenshot(path=str(tmp_path / "shredding-ledger.png"), animations="disabled")
    photo = row.locator("a", has_text="写真")
    assert photo.get_attribute("href") == f"/snapshots/{started_id}.jpg"
    response = page.request.get(hub.web_url.rstrip("/") + photo.get_attribute("href"))
    assert response.ok and response.body()[:2] == b"\xff\xd8"

    with page.expect_download() as info:
        page.click("a.button >> text=Excel")
    xlsx = tmp_path / info.value.suggested_filename
    info.value.save_as(xlsx)
    assert xlsx.name == f"shredding-ledger_all_{today.isoformat()}.xlsx"
    values = [[c.value for c in r] for r in load_workbook(xlsx).active.iter_rows()]
    header = next(r for r in values if r[0] == "シュレッダー")
    session = next(r for r in values if "S001" in r)
    assert session[header.index("氏名（1人目）")] == "Staff 001"
    assert session[header.index("職員番号（2人目）")] == "S002"
    assert session[header.index("終了の理由")] == "停止ボタン"
    assert session[header.index("2人とも当番外")] == "○"
    assert session[header.index("写真")].endswith(f"/snapshots/{started_id}.jpg")

    with page.expect_download() as info:
        page.click("a.button >> text=CSV")
    raw = Path(info.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    [line] = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert (line["職員番号（1人目）"], line["職員番号（2人目）"]) == ("S001", "S002")
    assert line["イベントID"] == started_id

    # The month: the same session, with its day.
    page.click("#shred-month button[type=submit]")
    expect(page.locator("h1")).to_contain_text(today.strftime("%Y-%m"))
    expect(page.locator("tr.shred-session")).to_have_count(1)
    expect(page.locator("tr.shred-session td").first).to_have_text(today.isoformat())

    # English.
    page.click("button[name=lang][value=en]")
    expect(page.locator("h1")).to_contain_text("Shredding ledger")
    expect(page.locator("tr.shred-session td.ended-by")).to_have_text("Stop button")
    page.click("button[name=lang][value=ja]")

    # The events list says who shredded and how it ended.
    page.goto(f"{hub.web_url}events?station={SHREDDER}")
    ended = page.locator("tr.kind-shred-ended")
    expect(ended.locator(".kind")).to_have_text("シュレッダー停止")
    expect(ended.locator(".details")).to_contain_text("Staff 001 (S001) + Staff 002 (S002)")
    expect(ended.locator(".details")).to_contain_text("停止ボタン")

    # The close-out lists the flagged session among what is to check, before anything in order.
    page.click("header nav >> text=終業点検")
    problem = page.locator("tr.closeout-item.problem.section-shredding")
    expect(problem).to_contain_text("Staff 001 (S001)・Staff 002 (S002)")
    items = page.locator("tr.closeout-item")
    classes = [items.nth(i).get_attribute("class") for i in range(items.count())]
    first_ok = next((i for i, c in enumerate(classes) if c.endswith(" ok")), len(classes))
    assert all(c.endswith(" problem") for c in classes[:first_ok])
    assert not any(c.endswith(" problem") for c in classes[first_ok:])
    page.screenshot(path=str(tmp_path / "closeout.png"), animations="disabled", full_page=True)
    context.close()
