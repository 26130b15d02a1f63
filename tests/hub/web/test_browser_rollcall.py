"""A roll call in a real Chromium over the app served by waitress: a supervisor opens one for
the section's part-timers on the form, watches the session page fill by itself as taps are
stored (present, late, not expected; the one who did not come stays absent), closes it, and
downloads the roster."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from hub import registry
from hub.config import load
from hub.rollcall import service
from tests.hub.helpers import event
from tests.hub.rollcall.conftest import ACTOR, JST, PEOPLE, SECTION, TRAINING
from tests.support.web_app import STATIONS, browser_signed_in, store, write_config

from playwright import sync_api as playwright_api

pytestmark = [pytest.mark.timeout(120)]

REFRESH_MS = 15_000  # the page brings itself up to date every 5 s


@pytest.fixture
def cfg(tmp_path):
    return load(write_config(tmp_path / "hub", stations=[
        *STATIONS, {"id": "rollcall-1", "site": "ward-a", "kind": "rollcall", "name": "会議室の点呼端末"}]))


def _tap(seq: int, number: str, at: datetime) -> tuple[str, dict]:
    return ("event", event("rollcall-1", seq, kind="rollcall.tap", at=at.isoformat(), person=number,
                           badge=f"{number}000000000000", data={"session": 1, "answer": "present"}))


def test_a_supervisor_opens_a_roll_call_watches_it_fill_and_closes_it(browser, server, engine, users):
    registry.add_training(engine, ACTOR, TRAINING, ["cabinet"], 365)
    for number, kana, section, employment, badge in PEOPLE:
        registry.add_person(engine, ACTOR, number, f"職員{number}", kana=kana, section=section,
                            employment=employment, role="係員")
    base = f"http://127.0.0.1:{server.port}/"
    expect = playwright_api.expect
    context, page = browser_signed_in(browser, base, users["supervisor"], accept_downloads=True)
    try:
        page.goto(f"{base}rollcall/")
        page.click("#open-button")
        page.select_option("select[name=kind]", "training")
        page.select_option("select[name=training]", TRAINING)
        # Started 20 minutes ago with a 10-minute window: every tap from now on is late.
        page.fill("input[name=starts_at]", (datetime.now(JST) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M"))
        page.fill("input[name=window_min]", "10")
        page.select_option("select[name=section]", SECTION)
        page.select_option("select[name=employment]", "part_time")
        page.check("input[name=stations][value=rollcall-1]")
        page.click("#rollcall-form button.primary")
        expect(page.locator("#session-state")).to_have_text("受付中")
        expect(page.locator("tr.person[data-status=absent]")).to_have_count(2)

        sid = service.list_sessions(engine)[0].id
        opened = service.get_session(engine, sid).opened_at
        store(engine, [_tap(1, "0012", opened), _tap(2, "0099", opened)])
        # Nobody reloads: the open session's page brings itself up to date, and stays the same page.
        page.evaluate("window.__same_page = true")
        expect(page.locator('tr.person[data-staff="0012"]')).to_have_attribute("data-status", "late",
                                                                                timeout=REFRESH_MS)
        expect(page.locator('tr.person[data-staff="0099"]')).to_have_attribute("data-status", "unexpected")
        expect(page.locator("#count-late strong")).to_have_text("1")
        expect(page.locator("#count-absent strong")).to_have_text("1")
        assert page.evaluate("window.__same_page") is True

        with page.expect_download() as download:
            page.click("#export-csv")
        text = download.value.path().read_bytes().decode("utf-8-sig")
        assert "職員0012" in text and "遅刻" in text and "欠席" in text

        page.click("#close-form button.primary")
        expect(page.locator("#session-state")).to_have_text("締切済み")
        expect(page.locator(".flash")).to_contain_text("締め切りました")
        assert [r["training"] for r in registry.person_record(engine, "0012")] == [TRAINING]
    finally:
        context.close()
