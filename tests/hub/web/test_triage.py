"""Triage on the status page and the alert history, as a supervisor checks them (Flask's test
client over a real SQLite store): repeats of one rule at one station are one row with the
count, first and last time; critical ones are pinned on top; the tab title counts them; the
filters are bookmarkable query parameters; several alerts are acknowledged with one comment,
each recorded; maintenance quiets a station's alerts; /alerts pages and exports the history."""
from __future__ import annotations

import csv
import io
import re

from openpyxl import load_workbook
from sqlalchemy import select

from hub.alerting.alerts import get_alert
from hub.store.schema import side_log
from tests.hub.helpers import heartbeat, status
from tests.support.web_app import csrf_from, store


def raise_alert(center, rule: str, severity: str, station: str = "cabinet-1", params: dict | None = None) -> int:
    return center.raise_alert(site="ward-a", station=station, rule=rule, severity=severity,
                              message=f"{rule} at {station}",
                              params={"station": station, "at": "2025-04-01T09:00:00+09:00", **(params or {})})


def open_rows(page: str) -> list[str]:
    body = page.split('id="open-alerts"')[1].split("</tbody>")[0]
    return re.findall(r'<tr id="alert-\d+" class="([^"]*)"[^>]*data-group="([^"]+)" data-count="(\d+)"', body)


def title(page: str) -> str:
    return re.search(r"<title>(.*?)</title>", page, re.S).group(1)


def test_repeats_are_one_row_with_count_and_critical_is_pinned_on_top(as_supervisor, alert_center):
    for _ in range(3):
        raise_alert(alert_center, "held_open", "warning")
    raise_alert(alert_center, "denied", "warning", station="cabinet-2")
    raise_alert(alert_center, "forced", "critical", station="cabinet-2")  # the oldest but critical
    raise_alert(alert_center, "held_open", "warning", station="cabinet-2")
    page = as_supervisor.get("/").get_data(as_text=True)
    rows = open_rows(page)
    assert [(g, int(n)) for _cls, g, n in rows][0] == ("forced--cabinet-2", 1)
    assert "pinned" in rows[0][0] and all("pinned" not in cls for cls, _g, _n in rows[1:])
    assert ("held_open--cabinet-1", 3) in [(g, int(n)) for _c, g, n in rows]
    assert len(rows) == 4  # six alerts, four groups
    group = page.split('data-group="held_open--cabinet-1"')[1].split("</tr>")[0]
    assert "最初：" in group and "最後：" in group and "3 件" in group and "3 件すべて確認" in group
    # Critical first in the tab title, then every open alert.
    assert title(page).startswith("(重大 1 / 未対応 6) 状況")
    assert 'id="open-count" class="count hot">6<' in page


def test_the_stations_come_before_the_alerts(as_supervisor, alert_center):
    raise_alert(alert_center, "forced", "critical")
    page = as_supervisor.get("/").get_data(as_text=True)
    assert page.index('id="stations"') < page.index('id="open-alerts"')


def test_filters_are_query_parameters_and_refuse_nonsense(as_supervisor, alert_center):
    raise_alert(alert_center, "forced", "critical")
    raise_alert(alert_center, "held_open", "warning", station="cabinet-2")
    page = as_supervisor.get("/?severity=warning").get_data(as_text=True)
    assert [g for _c, g, _n in open_rows(page)] == ["held_open--cabinet-2"]
    page = as_supervisor.get("/?station=cabinet-1&rule=forced").get_data(as_text=True)
    assert [g for _c, g, _n in open_rows(page)] == ["forced--cabinet-1"]
    assert 'value="cabinet-1" selected' in page
    assert as_supervisor.get("/?severity=loud").status_code == 400
    panel = as_supervisor.get("/status/alerts?severity=critical").get_data(as_text=True)
    assert 'data-critical="1"' in panel and 'data-group="forced--cabinet-1"' in panel
    assert "held_open" not in panel.split('id="open-alerts"')[1].split("</tbody>")[0]


def test_bulk_acknowledge_records_each_alert_with_who_when_and_comment(as_supervisor, alert_center, engine):
    group = [raise_alert(alert_center, "held_open", "warning") for _ in range(2)]
    single = raise_alert(alert_center, "denied", "warning", station="cabinet-2")
    left = raise_alert(alert_center, "forced", "critical")
    page = as_supervisor.get("/").get_data(as_text=True)
    assert f'name="ids" value="{group[0]},{group[1]}" form="bulk-ack"' in page
    reply = as_supervisor.post("/alerts/ack", data={
        "csrf_token": csrf_from(page), "ids": [f"{group[0]},{group[1]}", str(single)],
        "comment": "巡回で確認、異常なし", "next": "/?severity=warning"})
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/?severity=warning")
    for alert_id in (*group, single):
        a = get_alert(engine, alert_id)
        assert (a["state"], a["acked_by"], a["ack_comment"]) == ("acknowledged", "sup-01", "巡回で確認、異常なし")
    assert get_alert(engine, left)["state"] == "open"
    with engine.connect() as conn:
        entries = conn.execute(select(side_log.c.entry).where(side_log.c.part == "alerts",
                                                             side_log.c.entry.like('%"acknowledged"%'))).scalars().all()
    assert len(entries) == 3 and all("巡回で確認" in e and "sup-01" in e for e in entries)
    page = as_supervisor.get("/").get_data(as_text=True)
    assert "3 件のアラートを確認済みにしました。" in page
    assert [g for _c, g, _n in open_rows(page)] == ["forced--cabinet-1"]


def test_bulk_acknowledge_needs_a_comment_and_a_supervisor(as_supervisor, alert_center, engine, client):
    alert_id = raise_alert(alert_center, "held_open", "warning")
    token = csrf_from(as_supervisor.get("/").get_data(as_text=True))
    reply = as_supervisor.post("/alerts/ack", data={"csrf_token": token, "ids": str(alert_id), "comment": " "})
    assert reply.status_code == 302, reply.get_data(as_text=True)[:300]
    assert get_alert(engine, alert_id)["state"] == "open"
    assert "コメント（確認した内容・対応）を書いてください。" in as_supervisor.get("/").get_data(as_text=True)
    assert as_supervisor.post("/alerts/ack", data={"csrf_token": token, "ids": "1,x", "comment": "ok"}).status_code == 400


def test_an_auditor_sees_alerts_but_cannot_acknowledge(as_auditor, alert_center, engine):
    alert_id = raise_alert(alert_center, "held_open", "warning")
    page = as_auditor.get("/").get_data(as_text=True)
    assert 'id="bulk-ack"' not in page and 'data-group="held_open--cabinet-1"' in page
    reply = as_auditor.post("/alerts/ack", data={"csrf_token": csrf_from(page), "ids": str(alert_id), "comment": "x"})
    assert reply.status_code == 403 and get_alert(engine, alert_id)["state"] == "open"


def test_a_station_back_online_leaves_nothing_to_acknowledge(as_supervisor, alert_center):
    raise_alert(alert_center, "offline", "warning")
    page = as_supervisor.get("/").get_data(as_text=True)
    assert [g for _c, g, _n in open_rows(page)] == ["offline--cabinet-1"]
    raise_alert(alert_center, "online", "info")
    page = as_supervisor.get("/").get_data(as_text=True)
    assert open_rows(page) == [] and "<title>状況" in page
    history = as_supervisor.get("/alerts?state=closed").get_data(as_text=True)
    assert history.count("ハブが自動で終了：端末の復帰") == 2


def test_a_stopped_unit_is_shown_stopped_not_offline(as_supervisor, engine):
    store(engine, [("heartbeat", heartbeat("cabinet-1")), ("status", status("cabinet-1", "stopped"))])
    page = as_supervisor.get("/").get_data(as_text=True)
    row = page.split('id="station-cabinet-1"')[1].split("</article>")[0]
    assert "state-stopped" in page.split('id="station-cabinet-1"')[1][:80] and "計画停止" in row
    assert "オフライン" not in row


def test_maintenance_quiets_a_station_and_is_shown(as_supervisor, alert_center, engine):
    page = as_supervisor.get("/").get_data(as_text=True)
    token = csrf_from(page)
    assert as_supervisor.post("/maintenance", data={"csrf_token": token, "station": "cabinet-1", "hours": "999",
                                                    "reason": "x"}).status_code == 302
    assert "期間は 1〜168" in as_supervisor.get("/").get_data(as_text=True)
    as_supervisor.post("/maintenance", data={"csrf_token": token, "station": "cabinet-1", "hours": "2",
                                             "reason": "カードリーダー交換"})
    raise_alert(alert_center, "forced", "critical")  # during the work
    raise_alert(alert_center, "held_open", "warning", station="cabinet-2")
    page = as_supervisor.get("/").get_data(as_text=True)
    assert "カードリーダー交換" in page.split('id="maintenance-list"')[1]
    assert 'data-field="maintenance">保守中' in page.split('id="station-cabinet-1"')[1].split("</article>")[0]
    assert 'data-field="maintenance"' not in page.split('id="station-cabinet-2"')[1].split("</article>")[0]
    rows = open_rows(page)
    # Not pinned, listed after the others, and not counted in the tab title.
    assert [g for _c, g, _n in rows] == ["held_open--cabinet-2", "forced--cabinet-1"]
    assert "maintenance" in rows[1][0] and "pinned" not in rows[1][0]
    assert title(page).startswith("(未対応 1) 状況")
    as_supervisor.post("/maintenance/end", data={"csrf_token": token, "station": "cabinet-1"})
    assert 'id="maintenance-list"' not in as_supervisor.get("/").get_data(as_text=True)


def test_maintenance_start_and_end_are_in_the_alert_history_with_who_and_comment(as_supervisor, engine):
    token = csrf_from(as_supervisor.get("/").get_data(as_text=True))
    as_supervisor.post("/maintenance", data={"csrf_token": token, "station": "cabinet-1", "hours": "2",
                                             "reason": "カードリーダー交換"})
    long = as_supervisor.post("/maintenance/end", data={"csrf_token": token, "station": "cabinet-1",
                                                        "comment": "x" * 201})
    assert long.status_code == 302 and "コメントが長すぎます" in as_supervisor.get("/").get_data(as_text=True)
    as_supervisor.post("/maintenance/end", data={"csrf_token": token, "station": "cabinet-1",
                                                 "comment": "交換済み、2枚のカードで確認"})
    history = as_supervisor.get("/alerts").get_data(as_text=True).split('id="maintenance-periods"')[1]
    [row] = re.findall(r'<tr id="maintenance-\d+" data-station="cabinet-1">(.*?)</tr>', history, re.S)
    assert "Cabinet 1" in row and "カードリーダー交換" in row and "sup-01" in row
    assert "交換済み、2枚のカードで確認" in row and "（sup-01）" in row
    # Another station's history shows none; the audit trail holds both steps.
    other = as_supervisor.get("/alerts?station=cabinet-2").get_data(as_text=True)
    assert "この範囲に保守期間はありません。" in other
    with engine.connect() as conn:
        ops = [e for e in conn.execute(select(side_log.c.entry).where(side_log.c.part == "maintenance")).scalars()]
    assert ['"op":"started"' in ops[0], '"op":"ended"' in ops[1], len(ops)] == [True, True, 2]


def test_history_filters_pages_and_exports_hostile_text_safely(as_supervisor, alert_center, engine):
    ids = [raise_alert(alert_center, "held_open", "warning") for _ in range(55)]
    hostile = raise_alert(alert_center, "forced", "critical", station="cabinet-2")
    alert_center.acknowledge(hostile, "sup-01", '=HYPERLINK("http://x","y")')
    alert_center.acknowledge_many(ids[:5], "sup-01", "=1+1")
    page = as_supervisor.get("/alerts?rule=held_open").get_data(as_text=True)
    shown = re.findall(r'<tr id="alert-(\d+)"', page)
    assert len(shown) == 50 and int(shown[0]) == ids[-1] and 'id="next-page"' in page
    older = re.search(r'href="([^"]*before=\d+[^"]*)" id="next-page"', page).group(1).replace("&amp;", "&")
    rest = re.findall(r'<tr id="alert-(\d+)"', as_supervisor.get(older).get_data(as_text=True))
    assert [int(i) for i in rest] == sorted(ids[:5], reverse=True)
    acked = as_supervisor.get("/alerts?state=acknowledged").get_data(as_text=True)
    assert len(re.findall(r'<tr id="alert-', acked)) == 6  # five at once, the hostile one alone
    assert as_supervisor.get("/alerts?since=2025-13-01").status_code == 400
    assert len(re.findall(r'<tr id="alert-', as_supervisor.get("/alerts?until=2000-01-01").get_data(as_text=True))) == 0

    body = as_supervisor.get("/alerts.csv?station=cabinet-2").get_data().decode("utf-8-sig")
    [header, row] = list(csv.reader(io.StringIO(body)))
    assert header[:5] == ["番号", "発生日時", "重要度", "端末", "アラート"]
    assert row[9] == "'=HYPERLINK(\"http://x\",\"y\")"  # written as text, never a formula
    assert row[6] == "確認済み" and row[7] == "sup-01"
    xlsx = as_supervisor.get("/alerts.xlsx?state=acknowledged").get_data()
    ws = load_workbook(io.BytesIO(xlsx)).active
    comments = [c.value for c in ws["J"] if c.value == "=1+1"]
    assert len(comments) == 5 and all(c.data_type == "s" for c in ws["J"] if c.value == "=1+1")


def test_the_station_summary_counts_each_state_in_words(as_supervisor, engine):
    store(engine, [("heartbeat", heartbeat("cabinet-1")), ("status", status("cabinet-2", "stopped"))])
    summary = as_supervisor.get("/").get_data(as_text=True).split('id="station-summary"')[1].split("</p>")[0]
    assert "計画停止 1" in summary and "オンライン 1" in summary and "オフライン" not in summary
