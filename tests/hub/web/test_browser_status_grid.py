"""The status page's stations as a grid of cards in a real Chromium at a laptop's 1366 x 768:
several cards side by side before the alerts, each state in colour and in words, a door and a
lock only where the station has them, the lock following the station's heartbeats live, and its
taps and openings between heartbeats (a real hub and cabinet); and
the menu on one line at that width in Japanese and in English, for every role's menu."""
from __future__ import annotations

import pytest

from device import unit_file
from device.agent import Agent
from device.simulate import set_door
from hub import config as hub_config
from hub.accounts.users import add_user
from hub.service import Hub
from tests.hub.helpers import heartbeat, status
from tests.support.mosquitto import wait_for
from tests.support.stack import ALWAYS, HOLDER, write_hub, write_unit
from tests.support.web_app import PASSWORD, store

from playwright import sync_api as playwright_api

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 5_000  # every wait for the page is bounded
LAPTOP = {"width": 1366, "height": 768}


def _beat(station: str, kind: str, **fields) -> dict:
    hb = heartbeat(station)
    hb.update(kind=kind, **fields)
    return hb


def _signed_in(browser, server, user: str, locale: str = "ja-JP"):
    context = browser.new_context(locale=locale, timezone_id="Asia/Tokyo", viewport=LAPTOP)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{server.port}/login?next=/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    playwright_api.expect(page.locator("#live-state.ok")).to_be_visible()
    return context, page


def _border(page, station: str) -> str:
    return page.locator(f"#station-{station}").evaluate("e => getComputedStyle(e).borderLeftColor")


def test_the_stations_are_a_grid_of_cards_read_at_a_glance(server, users, engine, bus, alert_center, browser,
                                                             tmp_path):
    store(engine, [
        ("heartbeat", _beat("cabinet-1", "cabinet", door="closed", locked=True)),
        ("heartbeat", _beat("shredder-1", "shredder", door="closed", locked=None)),
        ("heartbeat", _beat("door-1", "door", door="open", locked=None)),
        ("status", status("cabinet-2", "offline")),
    ])
    alert_center.raise_alert(site="ward-a", station="door-1", rule="intrusion", severity="critical",
                             message="intrusion", params={"station": "door-1", "at": "2025-04-01T09:00:00+09:00"})
    context, page = _signed_in(browser, server, users["supervisor"])
    expect = playwright_api.expect
    try:
        cards = page.locator("#stations article.station-card")
        expect(cards).to_have_count(4)
        # A grid: the first cards side by side on one row, and the stations before the alerts.
        first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
        assert first["y"] == second["y"] and second["x"] > first["x"] + first["width"] - 1
        assert page.locator("#stations").bounding_box()["y"] < page.locator("#open-alerts").bounding_box()["y"]
        assert cards.nth(3).bounding_box()["y"] + cards.nth(3).bounding_box()["height"] < 768  # one screen

        # Each state in words and in colour.
        online, offline = page.locator("#station-cabinet-1"), page.locator("#station-cabinet-2")
        expect(online.locator("[data-field=state]")).to_have_text("オンライン")
        expect(offline.locator("[data-field=state]")).to_have_text("オフライン")
        assert _border(page, "cabinet-1") != _border(page, "cabinet-2")
        expect(online.locator("[data-field=door]")).to_have_text("閉")
        expect(online.locator("[data-field=lock]")).to_have_text("施錠")
        # No door nor lock on a shredder; a restricted door without a lock relay shows its door only.
        shredder = page.locator("#station-shredder-1")
        expect(shredder.locator("[data-field=door]")).to_have_count(0)
        expect(shredder.locator("[data-field=lock]")).to_have_count(0)
        expect(page.locator("#station-door-1 [data-field=door]")).to_have_text("開")
        expect(page.locator("#station-door-1 [data-field=lock]")).to_have_count(0)

        # The cabinet reports its lock released: the card follows without a reload.
        page.evaluate("window.kagibanNotReloaded = true")
        bus.publish("heartbeat", {**_beat("cabinet-1", "cabinet", door="closed", locked=False)})
        expect(online.locator("[data-field=lock]")).to_have_text("解錠中")
        expect(online.locator("[data-field=lock]")).to_have_class("pill lock lock-unlocked")
        assert page.evaluate("window.kagibanNotReloaded") is True
        page.screenshot(path=str(tmp_path / "status-grid.png"))
    finally:
        context.close()


@pytest.mark.parametrize("role", ["supervisor", "admin"])
@pytest.mark.parametrize("locale", ["ja-JP", "en-US"])
def test_the_menu_fits_on_one_line_at_1366_px(server, users, browser, role, locale):
    context, page = _signed_in(browser, server, users[role])
    try:
        if locale.startswith("en"):
            page.click("header .lang button[value=en]")
            playwright_api.expect(page.locator("html")).to_have_attribute("lang", "en")
        nav = page.evaluate("""() => {
            const nav = document.querySelector('header nav');
            const links = [...nav.querySelectorAll('a')];
            // The lines an item's text takes: one line box each, at its own height.
            const lines = a => { const r = document.createRange(); r.selectNodeContents(a);
                                 return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; };
            return {height: nav.getBoundingClientRect().height, count: links.length,
                    tops: links.map(a => Math.round(a.getBoundingClientRect().top)),
                    item: Math.max(...links.map(a => a.getBoundingClientRect().height)),
                    lines: links.map(lines), right: Math.max(...links.map(a => a.getBoundingClientRect().right)),
                    width: document.documentElement.clientWidth};
        }""")
        assert nav["count"] >= 9
        # One line: every item's text on one line, every item at the same height, the menu no
        # taller than one item, and nothing past the window's right edge.
        assert set(nav["lines"]) == {1}, nav
        assert len(set(nav["tops"])) == 1, nav
        assert nav["height"] <= nav["item"] + 1 and nav["right"] <= nav["width"], nav
    finally:
        context.close()


def test_the_lock_follows_the_cabinets_taps_and_openings_between_heartbeats(broker, prefix, tmp_path, browser):
    """A real hub, mosquitto and a key cabinet on mock pins whose heartbeat comes once a minute:
    a tap's few seconds unlocked show on its card, and so does the relock at the opening and at
    the end of an unused window, each without a reload and without a heartbeat."""
    hub = Hub(hub_config.load(write_hub(tmp_path, broker.port, prefix, [
        {"id": "cabinet-1", "kind": "cabinet", "name": "鍵保管庫", "hours": ALWAYS}])))
    hub.start()
    cabinet = Agent(unit_file.load(write_unit(tmp_path, broker.port, prefix, "cabinet-1", "cabinet",
                                              pins={"door": 17, "lock": 27}, heartbeat_s=60, unlock_s=3)))
    context = None
    try:
        add_user(hub.engine, "sup-01", PASSWORD, "supervisor", display_name="職員0001")
        cabinet.start()
        wait_for(lambda: cabinet.call(lambda a: a.policy.version), timeout=15, what="policy at the cabinet")
        context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport=LAPTOP)
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        page.goto(f"{hub.web_url}login?next=/")
        page.fill("input[name=username]", "sup-01")
        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        expect = playwright_api.expect
        expect(page.locator("#live-state.ok")).to_be_visible()
        card = page.locator("#station-cabinet-1")
        lock = card.locator("[data-field=lock]")
        expect(lock).not_to_have_text("解錠中")
        page.evaluate("window.kagibanNotReloaded = true")
        heartbeat = card.locator("[data-field=heartbeat]").inner_text()

        cabinet.reader.tap(HOLDER)
        expect(lock).to_have_text("解錠中")
        expect(lock).to_have_class("pill lock lock-unlocked")
        set_door(cabinet, True)  # opened within the window: relocked at once
        expect(lock).to_have_text("施錠")
        expect(card.locator("[data-field=door]")).to_have_text("開")
        set_door(cabinet, False)
        expect(card.locator("[data-field=door]")).to_have_text("閉")

        cabinet.reader.tap(HOLDER)  # and never opened: relocked when the 3 s window ends
        expect(lock).to_have_text("解錠中")
        expect(lock).to_have_text("施錠", timeout=10_000)
        expect(card.locator("[data-field=last-kind]")).to_have_text("解錠のみ（扉は開けず）")
        assert card.locator("[data-field=heartbeat]").inner_text() == heartbeat  # no heartbeat told it
        assert page.evaluate("window.kagibanNotReloaded") is True
    finally:
        if context is not None:
            context.close()
        cabinet.stop()
        hub.stop()
