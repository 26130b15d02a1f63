"""The status page in a real Chromium, over a real hub, agent and mosquitto: sign in (a wrong
password first), watch a forced door appear live without reloading, acknowledge its alert,
switch to English and back, and export the key ledger as Excel and CSV.

Chromium is Debian's (/usr/bin/chromium), driven by Playwright's Python API. The status page
screenshot goes to the test's folder; with KAGIBAN_UPDATE_SCREENSHOT=1 it replaces
docs/img/status.png (so ordinary runs leave the repository unchanged).
"""
from __future__ import annotations

import csv
import io
import os
import re
import time
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import select

from device import unit_file
from device.agent import Agent
from device.simulate import set_door
from hub import config as hub_config
from hub.store.schema import alerts
from hub.service import Hub
from hub.accounts.users import add_user
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, write_hub_config, write_unit_config
from tests.support.web_app import PASSWORD

from playwright import sync_api as playwright_api

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "img" / "status.png"
LOCK_PIN = 27
WAIT_MS = 5_000  # every wait for the page is bounded


@pytest.fixture
def stack(broker, prefix, tmp_path):
    """A running hub with its web page on a free port, one cabinet agent with its policy."""
    hub = Hub(hub_config.load(write_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    agent = None
    try:
        assert hub.web_url, "the hub's web page did not start"
        add_user(hub.engine, "sup-01", PASSWORD, "supervisor", display_name="Supervisor 01")
        agent = Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix)))
        agent.start()
        wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the station")
        yield hub, agent
    finally:
        if agent is not None:
            agent.stop()
        hub.stop()



def key_use(agent) -> None:
    """Staff 001 taps, opens the cabinet, takes the key and closes it again."""
    agent.reader.tap(HOLDER)
    wait_for(lambda: agent.pin_factory.pin(LOCK_PIN).state == 1, timeout=5, what="lock released")
    set_door(agent, True)
    time.sleep(0.3)
    set_door(agent, False)


def test_supervisor_sees_a_forced_door_live_acknowledges_and_exports(stack, browser, tmp_path):
    hub, agent = stack
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", accept_downloads=True,
                                  viewport={"width": 1200, "height": 820})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    expect = playwright_api.expect

    # Signing in: a wrong password is refused with a clear message.
    page.goto(hub.web_url)
    expect(page).to_have_url(f"{hub.web_url}login?next=/")
    page.fill("input[name=username]", "sup-01")
    page.fill("input[name=password]", "not the password")
    page.click("button.primary")
    expect(page.locator(".flash-error")).to_have_text("ユーザー名またはパスワードが正しくありません。")
    page.fill("input[name=username]", "sup-01")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    expect(page).to_have_url(hub.web_url)

    # The stations, and the live link.
    expect(page.locator("#station-cabinet-1")).to_be_visible()
    expect(page.locator("#station-cabinet-1 [data-field=state]")).to_have_text("オンライン")
    expect(page.locator("#live-state.ok")).to_be_visible()
    page.evaluate("window.kagibanNotReloaded = true")

    # Someone forces the cabinet open: the event and its alert appear without a reload.
    set_door(agent, True)
    forced_row = page.locator("#recent-events tr.kind-door-forced")
    expect(forced_row).to_have_count(1)
    expect(forced_row).to_contain_text("扉のこじ開け")
    expect(page.locator("#station-cabinet-1 [data-field=door]")).to_have_text("開")
    forced_id = wait_for(lambda: _alert_id(hub, "forced"), timeout=5, what="the forced alert stored")
    alert_row = page.locator(f"#open-alerts #alert-{forced_id}")
    expect(alert_row).to_contain_text("扉のこじ開け")
    expect(alert_row).to_have_class(re.compile(r"\bsev-critical\b"))
    assert page.evaluate("window.kagibanNotReloaded") is True
    set_door(agent, False)
    expect(page.locator("#station-cabinet-1 [data-field=door]")).to_have_text("閉")
    shot = tmp_path / "status.png"
    page.screenshot(path=str(shot), animations="disabled")
    assert shot.stat().st_size > 10_000
    if os.environ.get("KAGIBAN_UPDATE_SCREENSHOT") == "1":
        # A small palette PNG for the docs: the page has few colours, the text stays sharp.
        Image.open(shot).convert("RGB").quantize(colors=96, dither=Image.Dither.NONE).save(SCREENSHOT, optimize=True)

    # Acknowledge it from the row that arrived live (its form carries a valid CSRF token).
    alert_row.locator("input[name=comment]").fill("現地確認済み、鍵は全てそろっている")
    alert_row.locator("button[type=submit]").click()
    expect(page.locator(".flash-ok")).to_have_text("アラートを確認済みにしました。")
    acked = page.locator(f"#acked-alerts #alert-{forced_id}")
    expect(acked).to_contain_text("確認者: sup-01")
    expect(acked).to_contain_text("現地確認済み、鍵は全てそろっている")
    with hub.engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == forced_id)).one()
    assert (row.state, row.acked_by) == ("acknowledged", "sup-01") and row.acked_at

    # A normal key use, seen live, for the ledger.
    expect(page.locator("#live-state.ok")).to_be_visible()
    key_use(agent)
    expect(page.locator("#recent-events tr.kind-key-used")).to_contain_text("Staff 001 (S001)", timeout=10_000)

    # English and back.
    page.click("button[name=lang][value=en]")
    expect(page.locator("header nav")).to_contain_text("Key ledger")
    expect(page.locator("h1")).to_contain_text("Open alerts")
    page.click("button[name=lang][value=ja]")
    expect(page.locator("header nav")).to_contain_text("鍵の使用簿")

    # The key ledger, exported as Excel and CSV.
    page.click("header nav >> text=鍵の使用簿")
    expect(page.locator("tr.entry-use.last")).to_contain_text("Staff 001")
    expect(page.locator("tr.entry-forced")).to_have_count(1)
    with page.expect_download() as info:
        page.click("a.button >> text=Excel")
    xlsx = tmp_path / info.value.suggested_filename
    info.value.save_as(xlsx)
    sheet = load_workbook(xlsx).active
    values = [[c.value for c in r] for r in sheet.iter_rows()]
    header = next(r for r in values if r[0] == "鍵保管庫")
    use = next(r for r in values if "S001" in r)
    assert use[header.index("区分")] == "鍵の使用" and use[header.index("氏名")] == "Staff 001"
    assert use[header.index("本日最後の使用者")] == "○"
    assert any(r[header.index("区分")] == "こじ開け" for r in values if r is not header and len(r) > 2)
    with page.expect_download() as info:
        page.click("a.button >> text=CSV")
    raw = Path(info.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert any(r["職員番号"] == "S001" and r["区分"] == "鍵の使用" for r in rows)
    context.close()


def _alert_id(hub, rule: str) -> int | None:
    with hub.engine.connect() as conn:
        return conn.execute(select(alerts.c.id).where(alerts.c.rule == rule)).scalar()


def test_a_camera_that_stops_working_shows_on_the_status_page_live(broker, prefix, tmp_path, browser):
    from device.camera.standin import StandInCamera

    hub = Hub(hub_config.load(write_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    camera = StandInCamera(320, 240, 70, "cabinet-1")
    agent = Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix)), camera=camera)
    context = None
    try:
        add_user(hub.engine, "sup-01", PASSWORD, "supervisor", display_name="Supervisor 01")
        agent.start()
        context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        expect = playwright_api.expect
        page.goto(f"{hub.web_url}login?next=/")
        page.fill("input[name=username]", "sup-01")
        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        camera_pill = page.locator("#station-cabinet-1 [data-peripheral=camera]")
        expect(camera_pill).to_have_text("カメラ: 正常")
        expect(page.locator("#live-state.ok")).to_be_visible()
        camera.fault = "raise"  # the camera breaks: the next photo fails
        set_door(agent, True)
        # The next heartbeat (every 2 s) brings it to the open page, without a reload.
        expect(camera_pill).to_have_text("カメラ: 撮影エラー", timeout=10_000)
        expect(camera_pill).to_have_class(re.compile(r"\bperiph-failed\b"))
        expect(page.locator("#open-alerts")).to_contain_text("カメラの故障", timeout=10_000)
        expect(page.locator("#recent-events")).to_contain_text("写真を撮れなかった")
        set_door(agent, False)
    finally:
        if context is not None:
            context.close()
        agent.stop()
        hub.stop()
