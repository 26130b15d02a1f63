"""The central status page's Offices table in a real Chromium over a real hub, mosquitto and a
key cabinet on mock pins at one of two offices: the open page shows the office reachable while
its cabinet's heartbeats arrive, stale with the warning naming it once nothing has been heard for
rules.site_stale_after_s (the cabinet stopped: nothing arrives, only the clock moves), and
reachable again when a cabinet there is heard, all without a reload."""
from __future__ import annotations

import pytest

from device import unit_file
from device.agent import Agent
from hub import config as hub_config
from hub.accounts.users import add_user
from hub.service import Hub
from tests.support.mosquitto import wait_for
from tests.support.stack import ALWAYS, write_hub, write_unit
from tests.support.web_app import PASSWORD, browser_signed_in

from playwright import sync_api as playwright_api

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

STALE_AFTER_S = 3  # short, so the office goes stale within the test
# The watch looks every second; stale needs STALE_AFTER_S of silence after the last heartbeat
# (the margin is for a loaded machine).
STALE_WAIT_MS = (STALE_AFTER_S + 12) * 1000


def test_an_office_goes_stale_and_back_on_the_open_page(broker, prefix, tmp_path, browser):
    hub = Hub(hub_config.load(write_hub(
        tmp_path, broker.port, prefix, [
            {"id": "cabinet-1", "kind": "cabinet", "name": "鍵保管庫 A", "hours": ALWAYS},
            {"id": "cabinet-9", "site": "ward-b", "kind": "cabinet", "name": "鍵保管庫 B", "hours": ALWAYS}],
        sites={"ward-a": {"name": "A支所"}, "ward-b": {"name": "B支所"}},
        rules={"site_stale_after_s": STALE_AFTER_S})))
    hub.start()
    unit = write_unit(tmp_path, broker.port, prefix, "cabinet-1", "cabinet", heartbeat_s=0.5,
                      pins={"door": 17, "lock": 27})
    cabinet = Agent(unit_file.load(unit))
    again: Agent | None = None
    context = None
    try:
        add_user(hub.engine, "sup-01", PASSWORD, "supervisor", display_name="Supervisor 01")
        cabinet.start()
        wait_for(lambda: cabinet.call(lambda a: a.policy.version), timeout=15, what="policy at the cabinet")
        context, page = browser_signed_in(browser, hub.web_url, "sup-01")
        expect = playwright_api.expect
        expect(page.locator("#live-state.ok")).to_be_visible()
        page.evaluate("window.kagibanNotReloaded = true")
        ward_a = page.locator('#offices tr[data-site="ward-a"]')
        warning = page.locator("#office-stale-warning")
        expect(ward_a).to_have_attribute("data-state", "fresh")
        expect(ward_a.locator(".pill.state")).to_have_text("受信中")
        expect(page.locator('#offices tr[data-site="ward-b"] .pill.state')).to_have_text("未受信")
        expect(warning).to_have_count(0)

        # The cabinet stops: nothing more arrives from A; the clock alone makes it stale.
        cabinet.stop()
        expect(ward_a).to_have_attribute("data-state", "stale", timeout=STALE_WAIT_MS)
        expect(ward_a.locator(".pill.state")).to_have_text("途絶")
        expect(warning).to_be_visible()
        expect(warning).to_contain_text("A支所 から受信がありません")
        expect(warning).not_to_contain_text("B支所")

        # The cabinet is back: its first message makes A reachable again, and the warning goes.
        again = Agent(unit_file.load(unit))
        again.start()
        expect(ward_a).to_have_attribute("data-state", "fresh", timeout=15_000)
        expect(ward_a.locator(".pill.state")).to_have_text("受信中")
        expect(warning).to_have_count(0)
        assert page.evaluate("window.kagibanNotReloaded") is True  # all of it live, no reload
    finally:
        if context is not None:
            context.close()
        if again is not None:
            again.stop()
        cabinet.stop()
        hub.stop()
