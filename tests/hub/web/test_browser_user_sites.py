"""The admin's users page in a real Chromium: ticking a site for a supervisor and saving it
shows who sees what at once, the supervisor's key ledger then holds that site's rows only,
and un-ticking every site gives the supervisor every site again."""
from __future__ import annotations

import pytest
import yaml
from playwright import sync_api as playwright_api

from hub.config import load
from tests.support.two_sites import NAME_A, NAME_B, SITE_B, SITES, STAFF, STATIONS, day_of_both, DAY
from tests.support.web_app import browser_signed_in, store, write_config

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def cfg(tmp_path, store):
    path = write_config(tmp_path / "hub", stations=STATIONS, sites=SITES)
    (tmp_path / "hub" / "staff.yaml").write_text(yaml.safe_dump(STAFF, allow_unicode=True))
    return load(path)


def test_an_admin_gives_a_supervisor_one_site_and_takes_it_back(browser, server, engine, users):
    assert store(engine, day_of_both()).quarantined == 0
    base = f"http://127.0.0.1:{server.port}/"
    context, page = browser_signed_in(browser, base, users["admin"])
    try:
        page.goto(f"{base}account")
        page.click("#users-link")
        row = page.locator("#user-sup-01")
        playwright_api.expect(row.locator(".scope-now")).to_have_text("すべての拠点")
        row.get_by_label("Ward B office").check()
        row.get_by_role("button", name="拠点を保存").click()
        playwright_api.expect(page.locator(".flash-ok")).to_contain_text("sup-01 の担当拠点を保存しました")
        playwright_api.expect(page.locator("#user-sup-01 .scope-now")).to_have_text(f"担当: {SITE_B}")
    finally:
        context.close()

    context, page = browser_signed_in(browser, base, users["supervisor"])
    try:
        page.goto(f"{base}ledger/keys?day={DAY}")
        playwright_api.expect(page.locator("main")).to_contain_text(NAME_B)
        assert NAME_A not in page.locator("main").inner_text()
    finally:
        context.close()

    context, page = browser_signed_in(browser, base, users["admin"])
    try:
        page.goto(f"{base}users")
        row = page.locator("#user-sup-01")
        row.get_by_label("Ward B office").uncheck()
        row.get_by_role("button", name="拠点を保存").click()
        playwright_api.expect(page.locator("#user-sup-01 .scope-now")).to_have_text("すべての拠点")
    finally:
        context.close()
