"""The two import pages (registry attendance, near-miss cases) take a file the same way
(hub.web.uploads): a file larger than the app's form limit but within 10 MiB is read, one past
it is refused with 413, a post without its CSRF token with 400 and nothing imported, a post with
no file says to choose one; each page shows a refused file's problems in the same panel."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from hub import registry
from hub.store.schema import nearmiss_cases
from hub.web.uploads import IMPORT_MAX_BYTES
from tests.support.web_app import csrf_from, login

PAGES = ["/registry/import", "/nearmiss/import"]
NEARMISS = ("発生日時,場所,分類,内容,原因,重大度\r\n"
            "2025-04-03 14:00,窓口 2,窓口,別の人の書類を渡しかけた,番号札を確認しなかった,重大\r\n")


@pytest.fixture
def as_admin(client, users):
    assert login(client, users["admin"]).status_code == 302
    return client


def _post(client, path: str, body: bytes | None, name: str = "list.csv", token: str | None = None):
    if token is None:
        token = csrf_from(client.get(path).get_data(as_text=True))
    data: dict = {"csrf_token": token} if token else {}
    if body is not None:
        data["file"] = (io.BytesIO(body), name)
    return client.post(path, data=data, content_type="multipart/form-data", follow_redirects=True)


@pytest.mark.parametrize("path", PAGES)
def test_both_import_pages_check_the_upload_the_same_way(as_admin, path):
    # No file chosen: said on the page.
    assert "CSV または Excel のファイルを選んでください。" in _post(as_admin, path, None).get_data(as_text=True)
    # No CSRF token: refused before the file is read.
    assert _post(as_admin, path, NEARMISS.encode(), token="").status_code == 400
    # Past the import's own limit: 413.
    assert _post(as_admin, path, b"x" * (IMPORT_MAX_BYTES + 1)).status_code == 413
    # A file with problems (not a table of either kind): the same panel on both pages.
    refused = _post(as_admin, path, "a,b\r\n1,2\r\n".encode(), name="wrong.csv")
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert 'id="import-problems"' in page and "wrong.csv" in page and 'id="import-form"' in page


def test_a_near_miss_file_larger_than_the_form_limit_is_imported(as_admin, engine):
    # Far past the app's 64 KiB form limit, well within the import's.
    padding = "".join(f"2025-04-{d % 28 + 1:02d} 09:{d % 60:02d},窓口 {d},窓口,書類の渡し間違い {d},確認不足,軽微\r\n"
                      for d in range(2000))
    body = (NEARMISS + padding).encode()
    assert len(body) > 64 * 1024
    answer = _post(as_admin, "/nearmiss/import", body)
    assert answer.status_code == 200 and "追加した事例：2001" in answer.get_data(as_text=True)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(nearmiss_cases)).scalar() == 2001
    assert len(registry.history(engine, entity="nearmiss_case", limit=None)) == 2001
