"""The annunciator on the status page, in a real Chromium over a real hub, mosquitto, a key
cabinet and an annunciator on mock pins: its lamp as the unit reports it (off, sounding after a
forced door, lit once silenced at the unit, off again once the alert is acknowledged), with the
site's open critical alerts beside it, in Japanese; the open page follows each change live (the
site's alarm and the unit's heartbeat through the page's stream), without a reload."""
from __future__ import annotations

import time

import pytest

from device import unit_file
from device.agent import Agent
from device.simulate import set_door, set_input
from hub import config as hub_config
from hub.accounts.users import add_user
from hub.alerting.alerts import list_alerts
from hub.service import Hub
from tests.support.mosquitto import wait_for
from tests.support.stack import ALWAYS, write_hub, write_unit

from playwright import sync_api as playwright_api

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PASSWORD = "correct horse 01"
WAIT_MS = 5_000  # every wait for the page is bounded
ANNUNCIATOR = "annunciator-1"


def _lamp_reads(page, text: str) -> None:
    """The open page's annunciator lamp comes to read ``text`` by itself (the heartbeat that
    carries a change comes within a second here)."""
    row = page.locator(f'#annunciators tr[data-station="{ANNUNCIATOR}"]')
    playwright_api.expect(row.locator(".pill.signal")).to_have_text(text, timeout=15_000)


def test_the_status_page_shows_the_annunciators_lamp(broker, prefix, tmp_path, browser):
    hub = Hub(hub_config.load(write_hub(tmp_path, broker.port, prefix, [
        {"id": "cabinet-1", "kind": "cabinet", "name": "鍵保管庫", "hours": ALWAYS},
        {"id": ANNUNCIATOR, "kind": "annunciator", "name": "事務室の警報灯"}])))
    hub.start()
    cabinet = Agent(unit_file.load(write_unit(tmp_path, broker.port, prefix, "cabinet-1", "cabinet",
                                              pins={"door": 17, "lock": 27})))
    annunciator = Agent(unit_file.load(write_unit(
        tmp_path, broker.port, prefix, ANNUNCIATOR, "annunciator", reader="none", heartbeat_s=0.5,
        pins={"lamp": 5, "buzzer": 6, "silence_button": 13})))
    context = None
    try:
        add_user(hub.engine, "sup-01", PASSWORD, "supervisor", display_name="Supervisor 01")
        cabinet.start()
        annunciator.start()
        wait_for(lambda: cabinet.call(lambda a: a.policy.version), timeout=15, what="policy at the cabinet")
        context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo",
                                      viewport={"width": 1366, "height": 900})
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        expect = playwright_api.expect
        page.goto(f"{hub.web_url}login?next=/")
        page.fill("input[name=username]", "sup-01")
        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        expect(page.locator("#live-state.ok")).to_be_visible()
        page.evaluate("window.kagibanNotReloaded = true")
        _lamp_reads(page, "消灯")
        row = page.locator(f'#annunciators tr[data-station="{ANNUNCIATOR}"]')
        expect(page.locator("#annunciators h2")).to_have_text("警報灯")
        expect(row.locator("td").first).to_have_text("事務室の警報灯")
        expect(row.locator("td.num")).to_have_text("0")

        set_door(cabinet, True)  # forced: no badge
        # The site's alarm reaches the block at once, before the annunciator's next heartbeat.
        expect(row.locator("td.num")).to_have_text("1")
        _lamp_reads(page, "鳴動中")
        assert annunciator.pin_factory.pin(6).state == 1

        set_input(annunciator, "silence", True)
        time.sleep(0.2)
        set_input(annunciator, "silence", False)
        _lamp_reads(page, "点灯（警報音停止中）")
        expect(row.locator("td.num")).to_have_text("1")  # silenced, still open

        [forced] = [a["id"] for a in list_alerts(hub.engine, state="open") if a["severity"] == "critical"]
        assert hub.alerts.acknowledge(forced, "sup-01", "確認済み")
        _lamp_reads(page, "消灯")
        expect(row.locator("td.num")).to_have_text("0")
        assert page.evaluate("window.kagibanNotReloaded") is True  # all of it live, no reload
    finally:
        if context is not None:
            context.close()
        annunciator.stop()
        cabinet.stop()
        hub.stop()
