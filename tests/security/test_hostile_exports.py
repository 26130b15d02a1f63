"""Spreadsheet formulas smuggled into exports (issue 12, "Exports"), replayed against a real hub on
a real mosquitto: hostile names go in through the registry's web form, an attendance import and
event data over MQTT; then every CSV and XLSX export the web app has (found in its url_map, so a
new export cannot be left out) is opened. No cell is a formula, no text cell starts with
something a spreadsheet evaluates, and every hostile value is still there, as text."""
from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime, timedelta

import openpyxl
import pytest

from hub import config as hub_config
from hub.ledgers.base import staff_names
from hub.service import Hub
from hub.accounts.users import add_user
from tests.hub.helpers import FakeStation, encode, event, write_hub_config
from tests.support.web_app import PASSWORD, csrf_from, login
from tests.support.mosquitto import wait_for

HYPERLINK = '=HYPERLINK("http://x","y")'
# Each reaches the hub through the registry form (which trims spaces, so no tab or CR there).
FORM_VALUES = (HYPERLINK, "=1+1", "@SUM(1)", "+1", "-1+1")
# Event data over MQTT carries every one, tab- and CR-prefixed ones too.
MQTT_VALUES = FORM_VALUES + ("\t=1+1", "\r=1+1")
TRAINING = "-1+1"  # a training named like a formula, added on the form
SESSION_PLACE = HYPERLINK  # where the session added on the form was held
IMPORT_PLACE = "@SUM(1)"  # where the imported sessions were held
PROCEDURE = "=1+2"  # a procedure named like a formula, added on the form; it applies to everyone
STAFF = [f"S10{i}" for i in range(1, len(FORM_VALUES) + 1)]
BADGES = [f"ABCDEF00000000{i:02d}" for i in range(1, len(FORM_VALUES) + 1)]
STATIONS = [
    {"id": "cabinet-1", "site": "ward-a", "kind": "cabinet"},
    {"id": "printer-1", "site": "ward-a", "kind": "printer"},
    {"id": "shredder-1", "site": "ward-a", "kind": "shredder"},
    {"id": "rollcall-1", "site": "ward-a", "kind": "rollcall"},
]
ROLLCALL_TOPIC = "=2+2"  # a 朝礼 topic typed like a formula
# What each export must still hold (as text): the registry's names wherever a person is named,
# every MQTT value wherever event data is shown. The close-out words its own lines.
EXPECTED = {
    "/ledger/keys": set(FORM_VALUES) | set(MQTT_VALUES),
    "/ledger/prints": set(FORM_VALUES) | set(MQTT_VALUES),
    "/ledger/shredder": set(FORM_VALUES) | set(MQTT_VALUES),
    "/closeout": set(),
    "/registry/attendance": set(FORM_VALUES) | {TRAINING, SESSION_PLACE, IMPORT_PLACE},
    # The alert history and the monthly report: every cell written as text (the names they show
    # come from the same hostile registry and events), nothing more is asked of them here.
    "/alerts": set(),
    "/monthly": set(),
    # No near-miss is filed in this store: the export's header and every cell as text.
    "/nearmiss/cases": set(),
    # Everyone has yet to confirm the procedure's first version: its name and every person's.
    "/procedures/pending": set(FORM_VALUES) | {PROCEDURE},
    # A roll call of the hostile people, opened on the form with a hostile topic.
    "/rollcall/<int:rollcall_id>/roster": set(FORM_VALUES) | {ROLLCALL_TOPIC},
}
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NEGATIVE_NUMBER = re.compile(r"^-\d+(\.\d+)?$")  # the hub's own numbers may be negative
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def hub(broker, prefix, tmp_path):
    path = write_hub_config(tmp_path / "hub", broker, prefix, stations=STATIONS, time_zone="Asia/Tokyo")
    h = Hub(hub_config.load(path))
    h.start()
    add_user(h.engine, "admin-1", PASSWORD, "admin")
    add_user(h.engine, "supervisor-1", PASSWORD, "supervisor")  # the monthly report is theirs
    yield h
    h.stop()


def _post(client, page: str, url: str, data: dict, **kwargs):
    token = csrf_from(client.get(page).get_data(as_text=True))
    response = client.post(url, data={**data, "csrf_token": token}, **kwargs)
    assert response.status_code in (200, 302), (url, response.status_code, response.get_data(as_text=True)[:500])
    return response


def _fill_registry_on_the_form(client, held_on: str) -> None:
    _post(client, "/registry/trainings", "/registry/trainings",
          {"name": TRAINING, "station_kinds": ["cabinet", "printer", "shredder"], "valid_days": ""})
    for number, name, badge in zip(STAFF, FORM_VALUES, BADGES, strict=True):
        _post(client, "/registry/people/new", "/registry/people/new",
              {"staff_no": number, "name": name, "section": name, "kana": "", "employment": "regular",
               "role": "", "active_from": "", "active_to": "", "print_user": ""})
        _post(client, f"/registry/people/{number}", f"/registry/people/{number}/badges", {"badge_id": badge})
    made = _post(client, "/registry/sessions", "/registry/sessions",
                 {"training": TRAINING, "held_on": held_on, "place": SESSION_PLACE, "notes": ""})
    session_url = made.headers["Location"]
    assert "/registry/sessions/" in session_url
    _post(client, session_url, f"{session_url}/attendance", {"staff_nos": " ".join(STAFF)})


def _add_procedure_on_the_form(client) -> None:
    made = _post(client, "/procedures/", "/procedures/", {"name": PROCEDURE, "kind": "procedure"})
    page = made.headers["Location"]
    _post(client, page, f"{page}/versions", {"file": (io.BytesIO(b"# v1\n"), "v1.md")},
          content_type="multipart/form-data")


def _import_attendance(client, held_on: str) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["職員番号", "氏名", "研修名", "実施日", "場所"])
    for number, name in zip(STAFF, FORM_VALUES, strict=True):
        writer.writerow([number, name, TRAINING, held_on, IMPORT_PLACE])
    body = buf.getvalue().encode("utf-8-sig")
    response = _post(client, "/registry/import", "/registry/import",
                     {"file": (io.BytesIO(body), "attendance.csv")}, content_type="multipart/form-data")
    assert response.status_code == 200 and "problem" not in response.get_data(as_text=True).lower()


def _send_events(broker, prefix, at: datetime) -> None:
    """Key uses, print releases and shredding sessions whose people, titles, user names and
    reasons are hostile, published by stand-in stations over the broker."""
    stamp = lambda s: (at + timedelta(seconds=s)).isoformat()  # noqa: E731
    sends = {"cabinet-1": [], "printer-1": [], "shredder-1": []}
    people = list(STAFF) + list(MQTT_VALUES)  # registered people (hostile names) and hostile ids
    for n, person in enumerate(people):
        sends["cabinet-1"].append(dict(kind="key.used", person=person, at=stamp(n), data={
            "unlocked_at": stamp(n), "opened_at": stamp(n), "closed_at": stamp(n + 1), "duration_s": 1.0,
            "flagged": False}))
    for n, value in enumerate(MQTT_VALUES):
        sends["printer-1"].append(dict(kind="print.released", person=STAFF[n % len(STAFF)], at=stamp(n), data={
            "user": value, "jobs": [{"id": 100 + n, "title": value, "pages": 2, "user": value}]}))
        sends["printer-1"].append(dict(kind="print.release_failed", person=value, at=stamp(n), data={
            "user": value, "reason": value}))
        pair = [STAFF[n % len(STAFF)], value]
        sends["shredder-1"].append(dict(kind="shred.started", person=value, at=stamp(10 * n),
                                        data={"people": pair, "badges": [], "max_s": 600}))
        sends["shredder-1"].append(dict(kind="shred.ended", person=value, at=stamp(10 * n + 5), data={
            "people": pair, "badges": [], "started_at": stamp(10 * n), "ended_at": stamp(10 * n + 5),
            "duration_s": 5.0, "ended_by": value}))
    for station, bodies in sends.items():
        st = FakeStation(broker, prefix, station)
        try:
            for seq, extra in enumerate(bodies, start=1):
                st.publish("event", encode(event(station, seq, **extra)))
            wait_for(lambda st=st, n=len(bodies): len(st.acked_seqs()) >= n, timeout=20,
                     what=f"{station}'s events acked")
        finally:
            st.close()


def _exports(app) -> list[str]:
    """Every route that sends a CSV or Excel file."""
    return sorted(r.rule for r in app.url_map.iter_rules()
                  if "GET" in r.methods and r.rule.endswith((".csv", ".xlsx")))


def _csv_cells(body: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")) for cell in row]


def _xlsx_cells(body: bytes, where: str) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert not re.search(rb"<(\w+:)?f[ >]", z.read(name)), f"{where}: a formula element in {name}"
    book = openpyxl.load_workbook(io.BytesIO(body))  # formulas kept as formulas, were there any
    texts = []
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{where}: {cell.coordinate} is a formula: {cell.value!r}"
                if isinstance(cell.value, str):
                    assert cell.data_type == "s", f"{where}: {cell.coordinate}"
                    texts.append(cell.value)
    return texts


def test_every_export_writes_hostile_values_as_text_and_keeps_them(broker, prefix, hub):
    zone = hub.cfg.site_zone("ward-a")
    now = datetime.now(zone).replace(microsecond=0)
    day = now.date()
    client = hub.web.app.test_client()
    assert login(client, "admin-1").status_code == 302

    _fill_registry_on_the_form(client, day.isoformat())
    _import_attendance(client, (day - timedelta(days=1)).isoformat())
    _add_procedure_on_the_form(client)
    opened = _post(client, "/rollcall/new", "/rollcall/new", {
        "kind": "meeting", "topic": ROLLCALL_TOPIC, "training": "", "starts_at": now.strftime("%Y-%m-%dT%H:%M"),
        "window_min": "10", "section": "", "employment": "", "staff_numbers": " ".join(STAFF),
        "stations": "rollcall-1"})
    rollcall_id = opened.headers["Location"].rsplit("/", 1)[1]
    # The names reach the ledgers through the policies the hub compiles after each change.
    wait_for(lambda: set(FORM_VALUES) <= set(staff_names(hub.engine).values()), timeout=20,
             what="the hostile names in the published policies")
    # Early in the day, so a minute of events never crosses midnight.
    _send_events(broker, prefix, now.replace(hour=9, minute=0, second=0))

    exports = _exports(hub.web.app)
    families = {rule.rsplit(".", 1)[0] for rule in exports}
    assert families == set(EXPECTED), "a new export: say what it must still hold in EXPECTED"
    supervisor = hub.web.app.test_client()
    assert login(supervisor, "supervisor-1").status_code == 302
    for rule in exports:
        query = f"?day={day.isoformat()}&month={day:%Y-%m}&site=ward-a"
        response = client.get(rule.replace("<int:rollcall_id>", rollcall_id) + query)
        if response.status_code == 403:  # an export for supervisors and auditors only
            response = supervisor.get(rule + query)
        assert response.status_code == 200, rule
        body = response.get_data()
        family, ext = rule.rsplit(".", 1)
        if ext == "csv":
            assert response.mimetype == "text/csv"
            cells = _csv_cells(body)
            for cell in cells:
                assert not cell.startswith(TRIGGERS) or _NEGATIVE_NUMBER.match(cell), f"{rule}: {cell!r} is live"
            missing = {v for v in EXPECTED[family] if "'" + v not in cells}
        else:
            assert response.mimetype == XLSX_TYPE
            cells = _xlsx_cells(body, rule)
            # XML reads a carriage return in text as a line feed; the value is otherwise intact.
            missing = {v for v in EXPECTED[family] if v.replace("\r", "\n") not in cells}
        assert missing == set(), f"{rule} lost {sorted(missing)}"

    # Nothing else the app answers with is a spreadsheet (a page without .csv in its name).
    for rule in hub.web.app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments and rule.rule not in exports \
                and rule.endpoint not in ("pages.stream", "static"):
            mimetype = client.get(rule.rule).mimetype
            assert mimetype not in ("text/csv", XLSX_TYPE), f"{rule.rule} is an export the test does not open"
