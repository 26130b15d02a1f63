"""Roll-call sessions at the hub: opening puts the session on the unit's policy; the hub
judges each tap by its time (present, late, unexpected; absent for no tap); closing fixes the
roster, records the training's attendance (so the cabinet allows the newly trained), logs every
step in the change log, confirms the procedure version a reading session was for, and takes the session off the unit's policy."""
from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook

from hub import registry
from hub.audit import verify
from hub.procedures import service as procedures
from hub.rollcall import io as rollcall_io
from hub.rollcall import service
from hub.rollcall.service import RollcallError, SessionInput
from tests.hub.helpers import event
from tests.hub.rollcall.conftest import ACTOR, OPENED, PEOPLE, SECTION, START, TRAINING
from tests.support.web_app import store

BADGE = {number: badge for number, _k, _s, _e, badge in PEOPLE}


def training_input(**changes) -> SessionInput:
    base = dict(kind="training", training=TRAINING, starts_at=START.replace(tzinfo=None).isoformat(timespec="minutes"),
                window_min="10", stations=("rollcall-1",), section=SECTION, employment="part_time")
    return SessionInput(**{**base, **changes})


def tap(station: str, seq: int, number: str | None, at, session: int | None = 1) -> dict:
    return event(station, seq, kind="rollcall.tap", at=at.isoformat(), person=number,
                 badge=BADGE.get(number or "", "FFFF000000000000"), data={"session": session, "answer": "present"})


def cabinet_decision(engine, cfg, number: str, now) -> tuple[str, str]:
    [found] = [d for d in registry.badge_decisions(engine, cfg, BADGE[number], now=now) if d.station == "cabinet-1"]
    return found.decision, found.reason


def test_opening_puts_the_session_on_the_units_policy_with_the_section_part_timers_expected(office, cfg):
    sid = service.open_session(office, cfg, ACTOR, training_input(), now=OPENED)
    policies = registry.compile_all(office, cfg, now=OPENED)
    rollcall = policies["rollcall-1"][1]["rollcall"]
    assert rollcall["session"] == sid and rollcall["title"] == TRAINING
    assert rollcall["expected"] == ["0012", "0031"]
    assert datetime.fromisoformat(rollcall["late_after"]) == START + timedelta(minutes=10)
    assert datetime.fromisoformat(rollcall["opens_at"]) == OPENED
    assert "rollcall" not in policies["rollcall-2"][1] and "rollcall" not in policies["cabinet-1"][1]
    assert registry.to_policy(policies["rollcall-1"][1]).rollcall.answer("0031", START) == "present"
    [opened] = registry.history(office, entity="rollcall")
    assert (opened.action, opened.actor, opened.after["expected"]) == ("open", ACTOR, ["0012", "0031"])


def test_the_person_page_decisions_leave_out_the_roll_call_units_whose_taps_grant_nothing(office, cfg):
    decided = {d.station for d in registry.badge_decisions(office, cfg, BADGE["0012"], now=OPENED)}
    assert "cabinet-1" in decided and not decided & {"rollcall-1", "rollcall-2", "annunciator-1"}


def test_any_station_with_a_reader_can_be_a_check_in_point_and_gets_the_session_on_its_policy(office, cfg):
    assert service.checkin_stations(office, cfg) == {"rollcall-1": "rollcall", "rollcall-2": "rollcall",
                                                      "cabinet-1": "cabinet"}  # the annunciator has no reader
    sid = service.open_session(office, cfg, ACTOR, training_input(stations=("cabinet-1",)), now=OPENED)
    policies = registry.compile_all(office, cfg, now=OPENED)
    assert policies["cabinet-1"][1]["rollcall"]["session"] == sid
    assert "rollcall" not in policies["rollcall-1"][1]
    store(office, [("event", tap("cabinet-1", 1, "0012", START + timedelta(minutes=2)))])
    assert [(r.staff_no, r.status, r.station) for r in service.roster(office, sid).of("present")] == [
        ("0012", "present", "cabinet-1")]


def test_taps_are_judged_by_their_time_and_the_roster_is_live(office, cfg):
    sid = service.open_session(office, cfg, ACTOR, training_input(), now=OPENED)
    store(office, [("event", tap("rollcall-1", 1, "0012", START - timedelta(minutes=20))),  # before it opened
                   ("event", tap("rollcall-1", 2, "0012", START + timedelta(minutes=3))),
                   ("event", tap("rollcall-1", 3, "0012", START + timedelta(minutes=30))),  # again: first counts
                   ("event", tap("rollcall-1", 4, "0099", START + timedelta(minutes=5))),
                   ("event", tap("rollcall-2", 1, "0031", START + timedelta(minutes=1))),  # another unit
                   ("event", tap("rollcall-1", 5, None, START + timedelta(minutes=2)))])  # names nobody
    live = service.roster(office, sid)
    assert [(r.staff_no, r.status) for r in live.rows] == [
        ("0012", "present"), ("0099", "unexpected"), ("0031", "absent")]
    assert live.of("present")[0].tapped_at == START + timedelta(minutes=3)

    store(office, [("event", tap("rollcall-1", 6, "0031", START + timedelta(minutes=10, seconds=1)))])
    assert [(r.staff_no, r.status) for r in service.roster(office, sid).rows] == [
        ("0012", "present"), ("0031", "late"), ("0099", "unexpected")]


def test_closing_records_attendance_allows_the_cabinet_and_takes_the_session_off_the_unit(office, cfg):
    sid = service.open_session(office, cfg, ACTOR, training_input(), now=OPENED)
    store(office, [("event", tap("rollcall-1", 1, "0012", START + timedelta(minutes=3))),
                   ("event", tap("rollcall-1", 2, "0031", START + timedelta(minutes=14))),
                   ("event", tap("rollcall-1", 3, "0099", START + timedelta(minutes=5)))])
    after = START + timedelta(minutes=40)
    assert cabinet_decision(office, cfg, "0012", after) == ("deny", "untrained")
    closed = service.close_session(office, cfg, "supervisor-1", sid, now=after)
    assert (closed.present, closed.late, closed.closed_by) == (("0012",), ("0031",), "supervisor-1")
    assert closed.procedure_version_id is None

    # Trained now: let in (flagged only as not the cabinet's designated holder).
    assert cabinet_decision(office, cfg, "0012", after) == ("allow_flag", "not_designated")
    assert cabinet_decision(office, cfg, "0031", after) == ("allow_flag", "not_designated")  # late, but attended
    assert cabinet_decision(office, cfg, "0099", after) == ("deny", "untrained")  # not expected: not recorded
    [record] = registry.person_record(office, "0031")
    assert (record["training"], record["held_on"]) == (TRAINING, START.date())
    assert "rollcall" not in registry.compile_all(office, cfg, now=after)["rollcall-1"][1]

    roster = service.roster(office, sid)
    assert not roster.session.is_open and roster.session.training_session_id == record["session_id"]
    assert [(r.staff_no, r.status) for r in roster.rows] == [
        ("0012", "present"), ("0031", "late"), ("0099", "unexpected")]
    logged = {(e.key, e.action) for e in registry.history(office, entity="rollcall_checkin")}
    assert logged == {(f"{sid}/0012", "present"), (f"{sid}/0031", "late"), (f"{sid}/0099", "unexpected")}
    assert [e.action for e in registry.history(office, entity="rollcall")] == ["close", "open"]
    assert {e.key for e in registry.history(office, entity="attendance")} == {
        f"{record['session_id']}/0012", f"{record['session_id']}/0031"}
    # A tap after the close changes nothing any more.
    store(office, [("event", tap("rollcall-1", 4, "0044", after + timedelta(minutes=1)))])
    assert len(service.roster(office, sid).rows) == 3
    with pytest.raises(RollcallError) as again:
        service.close_session(office, cfg, "supervisor-1", sid, now=after)
    assert again.value.code == "rollcall.closed"


def test_a_reading_session_confirms_the_version_for_those_who_came_and_leaves_the_absent_to_confirm(office, cfg):
    procedures.add_document(office, ACTOR, "鍵の取扱手順書", "procedure", sections=[SECTION],
                            station_kinds=["cabinet"], now=OPENED)
    version = procedures.upload_version(office, ACTOR, "鍵の取扱手順書", "keys.md", "# 手順\n".encode(), now=OPENED)
    sid = service.open_session(office, cfg, ACTOR, training_input(
        kind="meeting", training=None, topic="読み合わせ", procedure_version_id=str(version.id)), now=OPENED)
    assert service.roster(office, sid).session.procedure_version_id == version.id
    store(office, [("event", tap("rollcall-1", 1, "0012", START + timedelta(minutes=3))),
                   ("event", tap("rollcall-1", 2, "0099", START + timedelta(minutes=4)))])
    to_confirm = {p.staff_no for p in procedures.pending(office, START.date())}
    assert {"0012", "0031"} <= to_confirm

    service.close_session(office, cfg, "supervisor-1", sid, now=START + timedelta(minutes=40))
    [confirmed] = procedures.confirmations(office, "鍵の取扱手順書")
    assert (confirmed.staff_no, confirmed.via, confirmed.session_id) == ("0012", "rollcall", sid)
    to_confirm = {p.staff_no for p in procedures.pending(office, START.date())}
    assert "0012" not in to_confirm and "0031" in to_confirm  # absent: still to confirm
    assert [e.key for e in registry.history(office, entity="confirmation")] == ["鍵の取扱手順書/v1/0012"]


def test_an_absent_person_is_recorded_absent_and_gets_no_attendance(office, cfg):
    sid = service.open_session(office, cfg, ACTOR, training_input(), now=OPENED)
    closed = service.close_session(office, cfg, ACTOR, sid, now=START + timedelta(hours=1))
    assert closed.present == () and closed.late == ()
    assert [(r.staff_no, r.status) for r in service.roster(office, sid).rows] == [
        ("0012", "absent"), ("0031", "absent")]
    assert registry.person_record(office, "0012") == []


def test_a_morning_meeting_keeps_its_roster_and_touches_no_training_record(office, cfg):
    sid = service.open_session(office, cfg, ACTOR, SessionInput(
        kind="meeting", topic="朝礼: 鍵の返却", starts_at=START, window_min=5, stations=("rollcall-2",),
        staff_numbers=("0044", "0099")), now=OPENED)
    store(office, [("event", tap("rollcall-2", 1, "0044", START + timedelta(minutes=1)))])
    closed = service.close_session(office, cfg, ACTOR, sid, now=START + timedelta(minutes=20))
    assert (closed.present, closed.procedure_version_id) == (("0044",), None)
    assert registry.list_sessions(office) == []
    assert service.get_session(office, sid).topic == "朝礼: 鍵の返却"


@pytest.mark.parametrize("changes,code", [
    ({"kind": "party"}, "rollcall.bad_kind"),
    ({"training": "無い研修"}, "rollcall.unknown_training"),
    ({"starts_at": "tomorrow"}, "rollcall.bad_start"),
    ({"window_min": "0"}, "rollcall.bad_window"),
    ({"stations": ()}, "rollcall.no_station"),
    ({"stations": ("nowhere-9",)}, "rollcall.unknown_station"),
    ({"stations": ("annunciator-1",)}, "rollcall.unknown_station"),
    ({"section": "無い係"}, "rollcall.nobody_expected"),
    ({"section": "", "staff_numbers": ("9999",)}, "rollcall.unknown_person"),
    ({"procedure_version_id": "v2"}, "rollcall.bad_procedure"),
    ({"procedure_version_id": "77"}, "rollcall.unknown_procedure"),
])
def test_a_bad_form_is_refused_naming_what_is_wrong_and_nothing_is_written(office, cfg, changes, code):
    with pytest.raises(RollcallError) as refused:
        service.open_session(office, cfg, ACTOR, training_input(**changes), now=OPENED)
    assert refused.value.code == code
    assert refused.value.text("ja") and refused.value.text("en")
    assert service.list_sessions(office) == []
    assert registry.history(office, entity="rollcall") == []


def test_a_unit_takes_one_open_session_at_a_time(office, cfg):
    first = service.open_session(office, cfg, ACTOR, training_input(), now=OPENED)
    with pytest.raises(RollcallError) as busy:
        service.open_session(office, cfg, ACTOR, training_input(stations=("rollcall-1", "rollcall-2")), now=OPENED)
    assert (busy.value.code, busy.value.params) == ("rollcall.station_busy", {"station": "rollcall-1", "id": first})
    service.close_session(office, cfg, ACTOR, first, now=START)
    assert service.open_session(office, cfg, ACTOR, training_input(), now=START) > first


def test_the_roster_exports_as_csv_and_xlsx_in_the_readers_language(office, cfg):
    sid = service.open_session(office, cfg, ACTOR, training_input(), now=OPENED)
    store(office, [("event", tap("rollcall-1", 1, "0031", START + timedelta(minutes=12)))])
    roster = service.roster(office, sid)
    text = rollcall_io.export_roster(roster, "csv", cfg.zone(), "ja").decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0].split(",")[4:6] == ["職員番号", "氏名"]
    assert any("0031" in line and "遅刻" in line and "2026-12-07 09:12:00" in line for line in lines)
    assert any("0012" in line and "欠席" in line for line in lines)
    assert "Late" in rollcall_io.export_roster(roster, "csv", cfg.zone(), "en").decode("utf-8-sig")
    sheet = load_workbook(io.BytesIO(rollcall_io.export_roster(roster, "xlsx", cfg.zone(), "ja"))).active
    assert [c.value for c in sheet[2]][4] in ("0031", "0012")
    with pytest.raises(RollcallError):
        rollcall_io.export_roster(roster, "pdf", cfg.zone())


def test_kagiban_verify_checks_the_sessions_and_outcomes_against_the_registry_log(office, cfg, tmp_path):
    sid = service.open_session(office, cfg, ACTOR, training_input(), now=OPENED)
    store(office, [("event", tap("rollcall-1", 1, "0012", START))])
    service.close_session(office, cfg, ACTOR, sid, now=START + timedelta(minutes=30))
    out = io.StringIO()
    assert verify.run(str(office.url), out=out) == 0
    assert "rollcall: OK: matching the registry log (1 roll calls, 1 closed, 2 outcomes)" in out.getvalue()

    # The roster's table changed behind the service's back: the absent part-timer made present.
    with office.begin() as conn:
        conn.exec_driver_sql("UPDATE rollcall_people SET status = 'present' WHERE staff_no = '0031'")
    out = io.StringIO()
    assert verify.run(str(office.url), out=out) == 1
    assert (f"rollcall: TAMPERED: outcome of 0031 in roll call {sid} altered (status) against log entry"
            in out.getvalue())

    # The log itself rewritten to match: the registry's side log shows it.
    with office.begin() as conn:
        conn.exec_driver_sql("UPDATE registry_log SET after = replace(after, '\"absent\"', '\"present\"') "
                             "WHERE entity = 'rollcall_checkin'")
    out = io.StringIO()
    assert verify.run(str(office.url), out=out) == 1
    assert "registry: TAMPERED" in out.getvalue()
