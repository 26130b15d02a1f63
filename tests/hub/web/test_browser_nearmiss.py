"""Near-misses in a real Chromium over the app served by waitress: a staff user files one
anonymously; a supervisor turns a forced-door alert into a case (its events and photo linked),
reviews the staff report and shares it; a colleague then reads it with its countermeasure and
no name; the analysis page draws its charts."""
from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from PIL import Image

from hub.accounts.users import add_user
from hub.nearmiss import service
from tests.hub.helpers import event, snapshot
from tests.support.web_app import BROWSER_WAIT_MS, PASSWORD, browser_signed_in, store

from playwright import sync_api as playwright_api

pytestmark = [pytest.mark.timeout(120)]

CHART_MS = 30_000


def _photo() -> bytes:
    """A real (small) JPEG, so the browser can draw it."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(out, format="JPEG")
    return out.getvalue()


def test_staff_files_a_supervisor_turns_an_alert_into_a_case_reviews_and_shares(
        browser, server, engine, cfg, alert_center, users):
    add_user(engine, "staff-07", PASSWORD, "staff", display_name="Staff 07")
    add_user(engine, "staff-08", PASSWORD, "staff", display_name="Staff 08")
    forced = event("cabinet-1", 5, kind="door.forced", person=None, badge=None)
    store(engine, [("event", event("cabinet-1", 1)), ("event", forced)], snapshots=[snapshot("cabinet-1", forced["id"], image=_photo())])
    alert_id = alert_center.raise_alert(site="ward-a", station="cabinet-1", rule="forced", severity="critical",
                                        message="door forced at cabinet-1", params={"station": "cabinet-1"},
                                        event_id=forced["id"], raised_at=datetime(2025, 4, 1, 0, 0, 6, tzinfo=timezone.utc))
    base = f"http://127.0.0.1:{server.port}/"
    expect = playwright_api.expect
    contexts = []
    try:
        # A staff user lands on the near-miss page and files one, anonymously.
        ctx, staff = browser_signed_in(browser, base, "staff-07")
        contexts.append(ctx)
        expect(staff).to_have_url(f"{base}nearmiss/")
        expect(staff.locator("header nav a")).to_have_count(1)
        staff.click("#file-button")
        staff.fill("input[name=occurred_at]", "2025-04-02T10:30")
        staff.select_option("select[name=station]", "cabinet-1")
        staff.select_option("select[name=category]", "keys")
        staff.select_option("select[name=severity]", "moderate")
        staff.fill("textarea[name=what]", "鍵を差したまま昼休みに離席した")
        staff.fill("textarea[name=why]", "電話で呼ばれて急いだ")
        staff.check("input[name=anonymous]")
        staff.click("#nearmiss-form button.primary")
        expect(staff.locator(".flash-ok")).to_contain_text("報告しました")
        expect(staff.locator("#case-state")).to_have_text("報告済み")
        staff_case = int(staff.url.rstrip("/").rsplit("/", 1)[1])
        # Anything else is refused.
        assert staff.goto(f"{base}alerts").status == 403

        # The supervisor turns the alert into a case from the alert history.
        ctx, sup = browser_signed_in(browser, base, users["supervisor"])
        contexts.append(ctx)
        sup.goto(f"{base}alerts")
        sup.locator(f"#alert-{alert_id} a.to-nearmiss").click()
        expect(sup.locator("#draft-source")).to_contain_text(f"アラート {alert_id}")
        expect(sup.locator("select[name=station]")).to_have_value("cabinet-1")
        expect(sup.locator("select[name=category]")).to_have_value("keys")
        sup.select_option("select[name=severity]", "serious")
        sup.fill("textarea[name=why]", "扉の閉め忘れ")
        sup.click("#nearmiss-form button.primary")
        expect(sup.locator("#evidence tr.evidence")).to_have_count(2)
        expect(sup.locator(f'#evidence tr[data-event-id="{forced["id"]}"] img.thumb')).to_be_visible()
        sup.wait_for_function("() => { const img = document.querySelector('#evidence img.thumb');"
                              " return img && img.complete && img.naturalWidth === 64; }", timeout=BROWSER_WAIT_MS)

        # It reviews the staff report (it sees who filed it) and shares it.
        sup.goto(f"{base}nearmiss/{staff_case}")
        expect(sup.locator("#case-reporter")).to_have_text("staff-07")
        sup.fill("#review-form textarea[name=countermeasure]", "離席前に鍵をキャビネットへ戻す")
        sup.click("#review-form button.primary")
        expect(sup.locator("#case-state")).to_have_text("対策済み")
        sup.click("#share-form button")
        expect(sup.locator("#case-state")).to_have_text("共有済み")

        # A colleague reads it among the shared cases, with the countermeasure, anonymous; the
        # reporter sees it moved from their own list to the shared ones.
        ctx, colleague = browser_signed_in(browser, base, "staff-08")
        contexts.append(ctx)
        row = colleague.locator(f"#shared-cases #case-{staff_case}")
        expect(row.locator("[data-field=reporter]")).to_have_text("匿名")
        row.locator("a").first.click()
        expect(colleague.locator("#case-countermeasure")).to_have_text("離席前に鍵をキャビネットへ戻す")
        expect(colleague.locator("#case-reporter")).to_have_text("匿名")
        expect(colleague.locator("#review")).to_have_count(0)
        staff.goto(f"{base}nearmiss/")
        expect(staff.locator(f"#shared-cases #case-{staff_case}")).to_have_count(1)
        expect(staff.locator(f"#my-cases #case-{staff_case}")).to_have_count(0)

        # The analysis page: two cases in April 2025, both keys, with charts.
        # The first chart of the process imports matplotlib (seconds on a busy machine).
        sup.goto(f"{base}nearmiss/analysis?since=2025-01&until=2025-06", timeout=CHART_MS)
        expect(sup.locator("#by-category tr[data-category=keys] td")).to_have_text("2")
        expect(sup.locator("#by-month tr[data-month='2025-04'] td")).to_have_text("2")
        expect(sup.locator("#by-category .chart svg")).to_be_visible()
        expect(sup.locator("#by-month .chart svg")).to_be_visible()
        assert sup.locator("#by-category .chart svg").bounding_box()["width"] > 300
    finally:
        for ctx in contexts:
            ctx.close()
    assert {c.state for c in service.list_cases(engine)} == {"shared", "filed"}
