"""The site's own error pages in a real Chromium: a wrong address, a page the role may not
open, a value the page cannot use and a fault in a view each get the site's page (with its
menu and the language switch) in Japanese, and in English after switching; never the
framework's English "Not Found"."""
from __future__ import annotations

import pytest
from playwright import sync_api as playwright_api

from tests.support.web_app import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 5_000  # every wait for the page is bounded
PAGES = {  # status -> the address that answers it
    404: "no/such/page",
    403: "registry/people/new",  # a supervisor is not an admin
    400: "events?day=someday",
    500: "test-only/fails",
}
TITLES = {
    "ja": {404: "ページが見つかりません", 403: "許可されていません", 400: "要求の内容が正しくありません",
           500: "問題が発生しました"},
    "en": {404: "Not found", 403: "Not allowed", 400: "The request is not valid", 500: "Something went wrong"},
}


def test_error_pages_are_the_sites_own_in_japanese_and_english(app, server, users, browser):
    @app.get("/test-only/fails")
    def _fails():
        raise RuntimeError("a fault in a view")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the 500 page, not a traceback
    base = f"http://127.0.0.1:{server.port}/"
    expect = playwright_api.expect
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1366, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(f"{base}login?next=/")
    page.fill("input[name=username]", users["supervisor"])
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    expect(page).to_have_url(base)

    for lang in ("ja", "en"):
        for status, path in PAGES.items():
            response = page.goto(base + path)
            assert response is not None and response.status == status, (lang, path)
            expect(page.locator("html")).to_have_attribute("lang", lang)
            expect(page.locator("main h1, h1").first).to_have_text(TITLES[lang][status])
            body = page.locator("body").inner_text()
            for framework in ("Not Found", "Internal Server Error", "Forbidden", "Bad Request"):
                assert framework not in body, (lang, status, framework)
            # The way back is in the reader's language too.
            expect(page.locator("a[href='/']").last).to_be_visible()
        if lang == "ja":
            # Switch on the error page itself, as a lost reader would.
            page.locator("form.lang button[value=en]").click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
    context.close()
