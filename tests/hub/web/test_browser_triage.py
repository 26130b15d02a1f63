"""Triage in a real Chromium over a real hub, agent and mosquitto: repeats grouped, the
critical one pinned on top and counted in the tab title; notifications switched on by the
supervisor (remembered across a reload) and sounded for a new critical alert that arrives
live; two groups acknowledged with one comment; the history page filtered and exported; a
cabinet stopped on purpose shown as stopped with no offline alert."""
from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from device import unit_file
from device.agent import Agent
from hub import config as hub_config
from hub.accounts.users import add_user
from hub.service import Hub
from hub.store.schema import alerts
from tests.support.mosquitto import wait_for
from tests.support.stack import write_hub_config, write_unit_config

from playwright import sync_api as playwright_api

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PASSWORD = "correct horse 01"
WAIT_MS = 5_000  # every wait for the page is bounded


def _raise(hub, rule: str, severity: str) -> int:
    return hub.alerts.raise_alert(site="ward-a", station="cabinet-1", rule=rule, severity=severity,
                                  message=f"{rule} at cabinet-1",
                                  params={"station": "cabinet-1", "at": "2026-12-04T09:00:00+09:00"})


def _states(hub) -> dict[int, str]:
    with hub.engine.connect() as conn:
        return {r.id: r.state for r in conn.execute(select(alerts.c.id, alerts.c.state))}


def test_a_supervisor_triages_grouped_pinned_alerts_live(broker, prefix, tmp_path, browser):
    hub = Hub(hub_config.load(write_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    agent = Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix)))
    context = None
    try:
        add_user(hub.engine, "sup-01", PASSWORD, "supervisor", display_name="Supervisor 01")
        agent.start()
        wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the station")
        held = [_raise(hub, "held_open", "warning") for _ in range(3)]
        denied = _raise(hub, "denied", "warning")
        forced = _raise(hub, "forced", "critical")

        context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", accept_downloads=True,
                                      viewport={"width": 1366, "height": 900})
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        expect = playwright_api.expect
        page.goto(f"{hub.web_url}login?next=/")
        page.fill("input[name=username]", "sup-01")
        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        expect(page.locator("#live-state.ok")).to_be_visible()

        # Grouped: three held-open alerts are one row; the critical one is pinned on top.
        rows = page.locator("#open-alerts tr.alert")
        expect(rows).to_have_count(3)
        expect(rows.nth(0)).to_have_attribute("data-group", "forced--cabinet-1")
        expect(rows.nth(0).locator(".pill.pin")).to_have_text("上部に固定")
        held_row = page.locator('#open-alerts tr[data-group="held_open--cabinet-1"]')
        expect(held_row.locator("[data-field=count]")).to_have_text("3 件")
        expect(page).to_have_title(re.compile(r"^\(重大 1 / 未対応 5\) 状況"))
        # The stations come first on the page.
        assert page.locator("#stations").bounding_box()["y"] < page.locator("#open-alerts").bounding_box()["y"]

        # Notifications: off until the supervisor presses the button; remembered after a reload.
        button = page.locator("#enable-notify")
        expect(button).to_be_visible()
        button.click()
        expect(button).to_be_hidden()
        page.reload()
        expect(page.locator("#live-state.ok")).to_be_visible()
        expect(page.locator("#enable-notify")).to_be_hidden()
        assert page.evaluate("document.documentElement.dataset.notifyCritical") == "on"
        page.evaluate("window.kagibanNotReloaded = true")

        # A new critical alert arrives live: the group grows, the title follows, the alarm sounds.
        _raise(hub, "forced", "critical")
        expect(page.locator('#open-alerts tr[data-group="forced--cabinet-1"] [data-field=count]')).to_have_text("2 件")
        expect(page).to_have_title(re.compile(r"^\(重大 2 / 未対応 6\) 状況"))
        wait_for(lambda: page.evaluate("window.kagibanAlarms || 0") >= 1, timeout=5, what="the alarm")
        assert page.evaluate("window.kagibanNotReloaded") is True

        # Two groups acknowledged with one comment: each of their alerts recorded.
        held_row.locator("input.tick").check()
        page.locator('#open-alerts tr[data-group="denied--cabinet-1"] input.tick').check()
        page.fill("#bulk-ack input[name=comment]", "巡回で確認、異常なし")
        page.click("#bulk-ack button[type=submit]")
        expect(page.locator(".flash-ok")).to_have_text("4 件のアラートを確認済みにしました。")
        expect(page.locator("#open-alerts tr.alert")).to_have_count(1)
        states = _states(hub)
        assert all(states[i] == "acknowledged" for i in (*held, denied)) and states[forced] == "open"

        # A filtered view is a link: only critical ones.
        page.goto(f"{hub.web_url}?severity=critical")
        expect(page.locator("#open-alerts tr.alert")).to_have_count(1)

        # The history: filtered by state, exported as CSV.
        page.click("header nav >> text=アラート")
        page.select_option("select[name=state]", "acknowledged")
        page.click("#history-filters button[type=submit]")
        expect(page).to_have_url(re.compile(r"state=acknowledged"))
        expect(page.locator("#history-rows tr")).to_have_count(4)
        with page.expect_download() as info:
            page.click("#export-csv")
        raw = Path(info.value.path()).read_bytes().decode("utf-8-sig")
        got = list(csv.DictReader(io.StringIO(raw)))
        assert len(got) == 4 and all(r["コメント"] == "巡回で確認、異常なし" for r in got)

        # The cabinet is stopped on purpose: shown as stopped, no offline alert, nothing to ack.
        page.goto(hub.web_url)
        expect(page.locator("#live-state.ok")).to_be_visible()
        agent.stop()
        expect(page.locator("#station-cabinet-1 [data-field=state]")).to_have_text("計画停止", timeout=10_000)
        time.sleep(1.0)  # the rules run every second: give them a chance to (wrongly) alert
        with hub.engine.connect() as conn:
            assert conn.execute(select(alerts.c.id).where(alerts.c.rule == "offline")).first() is None
    finally:
        if context is not None:
            context.close()
        agent.stop()
        hub.stop()
