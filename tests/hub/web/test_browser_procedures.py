"""Procedures in a real Chromium over the app served by waitress: an admin adds a document for
part-time staff that cabinets require and uploads a Markdown version (its script shown as text,
never run); a supervisor sees the two part-timers on the to-confirm list, records one's
confirmation on the page, and the list keeps only the other."""
from __future__ import annotations

import hashlib

import pytest

from hub import registry
from tests.support.web_app import browser_signed_in

from playwright import sync_api as playwright_api

pytestmark = [pytest.mark.timeout(120)]

MANUAL = "# 鍵の取扱手順\n\n1. 鍵は使用後すぐに戻す。\n\n<script>window.ran = true; alert('x')</script>\n".encode()


def test_an_admin_uploads_a_procedure_and_a_supervisor_records_a_confirmation(browser, server, engine, users, tmp_path):
    for number, employment in (("0012", "regular"), ("0021", "part_time"), ("0022", "part_time")):
        registry.add_person(engine, "adm-01", number, f"職員{number}", kana=f"ショクイン{number}", section="戸籍係",
                            employment=employment, role="係員")
    manual = tmp_path / "keys.md"
    manual.write_bytes(MANUAL)
    base = f"http://127.0.0.1:{server.port}/"
    expect = playwright_api.expect
    contexts = []
    try:
        ctx, admin = browser_signed_in(browser, base, "adm-01")
        contexts.append(ctx)
        dialogs: list[str] = []
        admin.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        admin.goto(f"{base}procedures/")
        admin.fill("#add-document input[name=name]", "鍵の取扱手順書")
        admin.select_option("#add-document select[name=kind]", "procedure")
        admin.check("#add-document input[name=employments][value=part_time]")
        admin.check("#add-document input[name=station_kinds][value=cabinet]")
        admin.click("#add-document button.primary")
        expect(admin.locator(".flash-ok")).to_contain_text("第1版を登録してください")
        admin.set_input_files("#upload-form input[type=file]", str(manual))
        admin.click("#upload-form button.primary")
        expect(admin.locator(".flash-ok")).to_contain_text("対象者全員が未確認者の一覧に載りました")
        expect(admin.locator("#versions tr.version")).to_have_count(1)
        expect(admin.locator("#versions")).to_contain_text(hashlib.sha256(MANUAL).hexdigest())
        admin.click("#versions tr.version a >> nth=0")
        expect(admin.locator("#body h1")).to_have_text("鍵の取扱手順")
        expect(admin.locator("#body")).to_contain_text("<script>")  # shown as text
        assert admin.evaluate("window.ran === undefined") and dialogs == []

        ctx, supervisor = browser_signed_in(browser, base, "sup-01")
        contexts.append(ctx)
        supervisor.goto(f"{base}procedures/pending")
        expect(supervisor.locator("tr.pending")).to_have_count(2)
        expect(supervisor.locator("tr.pending[data-staff='0012']")).to_have_count(0)
        supervisor.goto(f"{base}procedures/")
        supervisor.click("tr.document a")
        supervisor.fill("#confirm-form textarea[name=staff_nos]", "0021")
        supervisor.click("#confirm-form button.primary")
        expect(supervisor.locator(".flash-ok")).to_contain_text("確認を1件記録しました")
        expect(supervisor.locator("#confirmations tr.confirmation[data-staff='0021']")).to_contain_text("責任職が記録")
        supervisor.goto(f"{base}procedures/pending")
        expect(supervisor.locator("tr.pending")).to_have_count(1)
        expect(supervisor.locator("tr.pending")).to_have_attribute("data-staff", "0022")
    finally:
        for c in contexts:
            c.close()
