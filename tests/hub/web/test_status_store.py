"""The status page's store box: the size now, growth per day over the last 7 days (from the
sizes the signed checkpoints recorded), the photo retention and the last checkpoint."""
from __future__ import annotations

import os
import re
from datetime import timedelta

from hub.audit.checkpoints import CheckpointWriter
from hub.store.timestamps import now_utc
from tests.hub.helpers import event, snapshot
from tests.support.web_app import csrf_from, login, store


def _day_row(page: str, day: str) -> str:
    return page.split(f"<td>{day}</td>")[1].split("</tr>")[0]


def test_the_store_box_shows_its_size_and_what_each_day_added(client, users, engine, cfg):
    writer = CheckpointWriter(engine, cfg)
    now = now_utc()
    writer.make("periodic", now=now - timedelta(days=2))
    ev = event("cabinet-1", 1)
    # Two photos of about 600 KB each, received "yesterday" as far as the checkpoints go.
    photos = [snapshot("cabinet-1", ev["id"], image=b"\xff\xd8\xff\xe0" + os.urandom(600_000) + b"\xff\xd9")]
    ev2 = event("cabinet-1", 2)
    photos.append(snapshot("cabinet-1", ev2["id"], image=b"\xff\xd8\xff\xe0" + os.urandom(600_000) + b"\xff\xd9"))
    store(engine, [("event", ev), ("event", ev2)], snapshots=photos)
    writer.make("periodic", now=now - timedelta(days=1))

    assert login(client, users["supervisor"]).status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "監査記録の保存領域" in page and "写真は90日間保存した後に削除されます" in page
    assert re.search(r"現在の容量: [\d.]+ MB", page)
    yesterday = (now - timedelta(days=1)).astimezone(cfg.zone()).date().isoformat()
    assert re.search(r"\+1\.[1-9] MB", _day_row(page, yesterday)), _day_row(page, yesterday)
    assert "最後の署名付きチェックポイント" in page
    assert page.count('<tr><td>20') >= 7  # one row per day of the last week

    client.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    page = client.get("/").get_data(as_text=True)
    assert "Audit store" in page and "Growth per day (last 7 days)" in page
    assert "Photos are kept 90 days, then deleted" in page


def test_a_store_without_checkpoints_says_so(as_supervisor):
    page = as_supervisor.get("/").get_data(as_text=True)
    assert "署名付きチェックポイントはまだありません。" in page
