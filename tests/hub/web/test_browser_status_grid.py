"""The status page's stations as a grid of cards in a real Chromium at a laptop's 1366 x 768:
several cards side by side before the alerts, each state in colour and in words, a door and a
lock only where the station has them, the lock following the station's heartbeats live; and
the menu on one line at that width in Japanese and in English, for every role's menu."""
from __future__ import annotations

import pytest

from tests.hub.helpers import heartbeat, status
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
