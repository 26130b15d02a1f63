"""The end-of-day close-out (終業点検) of a site, from stored events, heartbeats and alerts
(real payloads through a real Ingest into a real SQLite file): what is not in order comes
first; the daily run stores it once and sends it to the supervisors (a real HTTP receiver on
loopback, through Apprise)."""
from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from openpyxl import load_workbook

from hub import registry
from hub.ledgers import closeout
from hub.alerting.notify import Notifier
from tests.hub.helpers import SITE
from tests.support.sinks import HttpSink
from tests.support.alert_stack import TUESDAY, Stack, ev
from tests.support.mosquitto import wait_for
from tests.support.workday import DAY, STATIONS, ZONE, beat, day_of_work

@pytest.fixture
def stack(tmp_path, store):
    s = Stack(tmp_path, stations=STATIONS)
    s.start_rules()
    yield s
    s.close()


def by_station(c: closeout.Closeout, section: str) -> dict[str, closeout.Item]:
    return {i.station: i for i in c.items if i.section == section}


def test_what_is_not_in_order_comes_first(stack):
    day_of_work(stack)
    c = closeout.build(stack.engine, stack.cfg, SITE, DAY)
    oks = [i.ok for i in c.items]
    assert oks == sorted(oks)  # every problem before everything in order
    cabinets = by_station(c, "cabinet")
    assert cabinets["cabinet-1"].ok and cabinets["cabinet-1"].facts["door"] == "closed"
    assert not cabinets["cabinet-2"].ok and cabinets["cabinet-2"].facts["door"] == "open"
    assert not cabinets["cabinet-9"].ok and cabinets["cabinet-9"].facts["door"] == "unknown"
    assert by_station(c, "door")["door-1"].ok
    last = by_station(c, "last_user")
    assert last["cabinet-1"].facts["who"] == "Staff 001 (S001)"
    assert last["cabinet-2"].facts["person"] is None
    printer = by_station(c, "printer")["printer-1"]
    assert not printer.ok and printer.facts["held"] == 2 and len(printer.facts["jobs"]) == 2
    shredding = by_station(c, "shredding")["shredder-1"]
    assert not shredding.ok and shredding.facts["not_on_roster"]  # nobody was on the roster
    offline = by_station(c, "offline")
    assert set(offline) == {"shredder-1", "cabinet-9"}  # offline, and never heard from
    # The alerts nobody has acknowledged yet, whatever raised them.
    assert sorted(i.facts["rule"] for i in c.items if i.section == "alert") == [
        "held_open", "offline", "shred_flagged"]

    lines = {i.station + "/" + i.section: closeout.describe(i, "ja", c.zone) for i in c.items}
    assert lines["cabinet-2/cabinet"] == f"Key cabinet 2: 扉が開いています（{TUESDAY} 17:40:00から）"
    assert lines["cabinet-1/last_user"] == f"Key cabinet 1: Staff 001 (S001)（{TUESDAY} 12:00:00に閉）"
    assert "印刷待ちのジョブ2件" in lines["printer-1/printer"] and "住民票 写し" in lines["printer-1/printer"]
    assert lines["shredder-1/shredding"] == (f"Shredder 2F: {TUESDAY} 15:00:00〜{TUESDAY} 15:03:00 Staff 001 (S001)・Staff 002 (S002)"
                                            "（バッジで終了、要確認: 2人とも当番外）")
    english = closeout.describe(by_station(c, "cabinet")["cabinet-1"], "en", c.zone)
    assert english == "Key cabinet 1: closed and locked"


def test_a_closed_cabinet_whose_heartbeat_says_unlocked_is_a_problem(stack):
    stack.feed(beat("cabinet-1", "cabinet", "closed", locked=False))
    c = closeout.build(stack.engine, stack.cfg, SITE, DAY)
    item = by_station(c, "cabinet")["cabinet-1"]
    assert not item.ok and closeout.describe(item, "en", c.zone) == "Key cabinet 1: closed, not locked"


def test_a_rostered_pair_and_an_empty_queue_are_in_order(stack):
    day_of_work(stack)
    registry.set_roster(stack.engine, "admin", "shredder-1", DAY, ["S002"])
    stack.feed(ev("printer-1", 2, "print.queue", f"{TUESDAY}T17:58:00+09:00", data={"held": 0, "oldest_s": None}))
    c = closeout.build(stack.engine, stack.cfg, SITE, DAY)
    assert by_station(c, "shredding")["shredder-1"].ok
    assert by_station(c, "printer")["printer-1"].ok


def test_exports_list_problems_first_in_the_readers_words(stack):
    day_of_work(stack)
    c = closeout.build(stack.engine, stack.cfg, SITE, DAY)
    raw = closeout.to_csv(c)
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0]["Status"] == "To check" and rows[-1]["Status"] == "In order"
    assert {"Station": "Key cabinet 2", "What": "Key cabinet", "Status": "To check",
            "Details": f"door open (since {TUESDAY} 17:40:00)"} in rows
    sheet = load_workbook(io.BytesIO(closeout.to_xlsx(c, title="Close-out"))).active
    values = [[cell.value for cell in r] for r in sheet.iter_rows(min_row=3)]
    assert values[0] == ["Status", "What", "Station", "Details"]
    assert len(values) == len(c.items) + 1


def test_the_daily_run_stores_it_once_and_sends_it_to_the_supervisors(tmp_path, store):
    sink = HttpSink()
    s = Stack(tmp_path, stations=STATIONS, sites={SITE: {
        "name": "Ward A", "closeout": {"at": "18:00"},
        "supervisors": [{"url": f"json://127.0.0.1:{sink.port}/hook", "label": "chat"}]}})
    notifier = Notifier(s.engine, s.cfg).start()
    try:
        s.start_rules()
        day_of_work(s)
        runs = closeout.CloseoutScheduler(s.engine, s.cfg, notifier)
        assert runs.run_due(datetime(2025, 4, 1, 17, 59, tzinfo=ZONE)) == []
        [made] = runs.run_due(datetime(2025, 4, 1, 18, 0, 30, tzinfo=ZONE))
        assert made.day == DAY and made.problems
        # A restart later that evening does not make or send it again.
        assert runs.run_due(datetime(2025, 4, 1, 21, 0, tzinfo=ZONE)) == []

        wait_for(lambda: sink.bodies, timeout=15, what="the close-out delivered")
        [body] = sink.bodies
        assert "終業点検" in body["title"] and "Close-out" in body["title"]
        assert f"要確認{len(made.problems)}件" in body["title"] and body["type"] == "warning"
        text = body["message"]
        assert text.index("■ 要確認") < text.index("Key cabinet 2: 扉が開いています") < text.index("■ 問題なし")
        assert "■ To check" in text and f"Key cabinet 2: door open (since {TUESDAY} 17:40:00)" in text

        wait_for(lambda: closeout.stored(s.engine, SITE, DAY).deliveries.get("chat", {}).get("state") == "sent",
                 timeout=10, what="delivery recorded")
        kept = closeout.stored(s.engine, SITE, DAY)
        assert [(i.section, i.station, i.ok) for i in kept.items] == [
            (i.section, i.station, i.ok) for i in made.items]
        assert kept.generated_at == made.generated_at.replace(microsecond=kept.generated_at.microsecond)

        # On the page: the stored one as it was sent, and to whom; the exports say the same.
        client = _signed_in(s)
        page = client.get(f"/closeout?site={SITE}&day={DAY}").get_data(as_text=True)
        assert 'id="closeout-stored"' in page and "chat: 送信済み" in page
        assert page.index(f"扉が開いています（{TUESDAY} 17:40:00から）") < page.index("閉・施錠")
        assert 'id="closeout-live"' in client.get(f"/closeout?site={SITE}&day={DAY}&live=1").get_data(as_text=True)
        raw = client.get(f"/closeout.csv?site={SITE}&day={DAY}").data
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
        assert rows[0]["状況"] == "要確認" and len(rows) == len(kept.items)
    finally:
        notifier.stop()
        s.close()
        sink.close()


def test_the_hub_runs_the_close_out_by_itself_once_its_time_has_passed(start_hub, tmp_path):
    # 00:00: whatever the time now, today's close-out is due, so the hub makes it at start.
    hub = start_hub(sites={SITE: {"name": "Ward A", "closeout": {"at": "00:00"}}}, stations=STATIONS[:1])
    today = datetime.now(ZONE).date()
    made = wait_for(lambda: closeout.stored(hub.engine, SITE, today), timeout=10, what="the day's close-out")
    # Nothing from cabinet-1 yet: its state is unknown and it has never been heard from.
    assert {(i.section, i.ok) for i in made.problems} == {("cabinet", False), ("offline", False)}
    assert hub.closeouts.made == 1


def _signed_in(s: Stack):
    """The web page over the stack's store, with a supervisor signed in (Japanese)."""
    from hub.live import LiveBus
    from hub.accounts.users import add_user
    from hub.web.app import create_app
    from tests.support.web_app import PASSWORD, login

    add_user(s.engine, "sup-01", PASSWORD, "supervisor", display_name="Supervisor 01")
    client = create_app(s.engine, s.cfg, bus=LiveBus(), overrides={"TESTING": True}).test_client()
    assert login(client, "sup-01").status_code == 302
    return client
