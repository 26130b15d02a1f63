"""Filing, reviewing and sharing near-miss cases: what is stored, who sees the reporter's
name, the evidence an alert brings, the refusals, the trail (``kagiban verify``) and the
analysis counts."""
from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text, update

from hub.audit import verify
from hub.nearmiss import service
from hub.nearmiss.model import CaseInput, NearMissError
from hub.store.chain import verify_side
from hub.store.schema import nearmiss_cases

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2025, 4, 10, 3, 0, tzinfo=timezone.utc)


def _case(**changes) -> CaseInput:
    values = dict(occurred_at=datetime(2025, 4, 2, 10, 30, tzinfo=JST), category="keys",
                  what="The cabinet key was left in the lock over lunch.", why="The holder was called away.",
                  severity="moderate", station="cabinet-1")
    values.update(changes)
    return CaseInput(**values)


def _verify_lines(cfg) -> list[str]:
    out = io.StringIO()
    verify.run(cfg.db_url(), out)
    return out.getvalue().splitlines()


def test_a_case_goes_from_filed_to_reviewed_to_shared_and_each_step_is_in_the_trail(engine, cfg):
    case_id = service.file_case(engine, cfg, _case(anonymous=True), "staff-07", now=NOW)
    service.review(engine, case_id, "Keys go back into the cabinet before anyone leaves the desk.", "sup-01",
                   now=NOW + timedelta(hours=1))
    service.share(engine, case_id, "sup-01", now=NOW + timedelta(hours=2))

    case = service.get_case(engine, case_id)
    assert (case.state, case.reviewed_by, case.shared_by) == ("shared", "sup-01", "sup-01")
    assert case.occurred_at == "2025-04-02T01:30:00.000000Z"
    with engine.connect() as conn, conn.begin():
        entries = [e.body() for e in verify_side(conn, "nearmiss").entries]
    assert [e["op"] for e in entries] == ["filed", "reviewed", "shared"]
    # Anonymous to colleagues, never to the trail.
    assert entries[0]["reporter"] == "staff-07" and entries[0]["anonymous"] is True
    assert entries[1]["countermeasure"].startswith("Keys go back")
    assert "nearmiss: OK: 3 entries (1 cases, 1 shared, 0 digests)" in "\n".join(_verify_lines(cfg))


def test_an_anonymous_reporter_is_hidden_from_colleagues_but_not_from_supervisors(engine, cfg):
    case = service.get_case(engine, service.file_case(engine, cfg, _case(anonymous=True), "staff-07", now=NOW))
    assert case.reporter_for("staff", "staff-08") is None
    assert case.reporter_for("auditor", "aud-01") is None
    assert case.reporter_for("staff", "staff-07") == "staff-07"  # their own report
    assert case.reporter_for("supervisor", "sup-01") == "staff-07"
    named = service.get_case(engine, service.file_case(engine, cfg, _case(), "staff-09", now=NOW))
    assert named.reporter_for("staff", "staff-08") == "staff-09"


def test_only_shared_cases_are_readable_by_other_staff(engine, cfg):
    case_id = service.file_case(engine, cfg, _case(), "staff-07", now=NOW)
    case = service.get_case(engine, case_id)
    assert not case.readable_by("staff", "staff-08")
    assert case.readable_by("staff", "staff-07") and case.readable_by("auditor", "aud-01")
    service.review(engine, case_id, "Lock it.", "sup-01")
    service.share(engine, case_id, "sup-01")
    assert service.get_case(engine, case_id).readable_by("staff", "staff-08")


@pytest.mark.parametrize("changes, code", [
    ({"category": "coffee"}, "nearmiss.bad_choice"),
    ({"severity": "huge"}, "nearmiss.bad_choice"),
    ({"what": "   "}, "nearmiss.missing"),
    ({"why": "x" * 4001}, "nearmiss.too_long"),
    ({"station": None, "place": ""}, "nearmiss.no_place"),
    ({"station": "cabinet-99"}, "nearmiss.unknown_station"),
    ({"occurred_at": NOW + timedelta(hours=1)}, "nearmiss.future"),
])
def test_bad_input_is_refused_with_a_code_and_nothing_is_stored(engine, cfg, changes, code):
    with pytest.raises(NearMissError) as caught:
        service.file_case(engine, cfg, _case(**changes), "staff-07", now=NOW)
    assert caught.value.code == code
    assert caught.value.text("ja") != caught.value.text("en")  # worded in both languages
    assert service.list_cases(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM side_heads WHERE part = 'nearmiss'")).scalar() == 0


def test_a_place_without_a_station_is_enough(engine, cfg):
    case_id = service.file_case(engine, cfg, _case(station=None, place="窓口 2", category="counter"), "staff-07",
                                now=NOW)
    assert service.get_case(engine, case_id).place == "窓口 2"


def test_steps_out_of_order_are_refused(engine, cfg):
    case_id = service.file_case(engine, cfg, _case(), "staff-07", now=NOW)
    with pytest.raises(NearMissError) as caught:
        service.share(engine, case_id, "sup-01")
    assert caught.value.code == "nearmiss.wrong_state"
    service.review(engine, case_id, "Lock it.", "sup-01")
    service.review(engine, case_id, "Lock it, and check at noon.", "sup-02")  # rewritten before sharing
    service.share(engine, case_id, "sup-01")
    with pytest.raises(NearMissError):
        service.review(engine, case_id, "Too late.", "sup-01")
    assert service.get_case(engine, case_id).countermeasure == "Lock it, and check at noon."
    with pytest.raises(NearMissError) as caught:
        service.review(engine, 999, "x", "sup-01")
    assert caught.value.code == "nearmiss.not_found"


def test_an_alert_becomes_a_case_with_its_events_and_photo_linked(engine, cfg, forced_alert):
    alert_id, forced_id, before_id, other_id = forced_alert
    draft = service.alert_draft(engine, cfg, alert_id)
    assert (draft.station, draft.category) == ("cabinet-1", "keys")
    assert draft.event_ids[0] == forced_id and before_id in draft.event_ids and other_id not in draft.event_ids
    case_id = service.file_case(engine, cfg, _case(occurred_at=draft.occurred_at, what=draft.what), "sup-01",
                                alert_id=alert_id, now=NOW)
    case = service.get_case(engine, case_id)
    assert (case.source, case.alert_id) == ("alert", alert_id)
    linked = service.evidence(engine, case)
    assert [e["event_id"] for e in linked] == list(draft.event_ids)
    assert [e["has_snapshot"] for e in linked if e["event_id"] == forced_id] == [True]
    with pytest.raises(NearMissError) as caught:
        service.alert_draft(engine, cfg, 12345)
    assert caught.value.code == "nearmiss.alert_not_found"


def test_verify_names_a_case_altered_or_inserted_behind_the_trail(engine, cfg):
    case_id = service.file_case(engine, cfg, _case(anonymous=True), "staff-07", now=NOW)
    with engine.begin() as conn:
        conn.execute(update(nearmiss_cases).where(nearmiss_cases.c.id == case_id).values(reporter="someone-else"))
    lines = _verify_lines(cfg)
    assert any(line.startswith("nearmiss: TAMPERED") and "reporter" in line for line in lines), lines
    with engine.begin() as conn:
        conn.execute(update(nearmiss_cases).where(nearmiss_cases.c.id == case_id).values(reporter="staff-07"))
        conn.execute(nearmiss_cases.insert().values(
            occurred_at="2025-04-01T00:00:00.000000Z", place="x", category="pc", what="w", why="y",
            severity="minor", reporter="r", filed_by="r", filed_at="2025-04-01T00:00:00.000000Z",
            source="form", state="filed"))
    lines = _verify_lines(cfg)
    assert any(line.startswith("nearmiss: TAMPERED") and "(inserted)" in line for line in lines), lines


def test_the_analysis_counts_by_category_place_month_and_severity(engine, cfg):
    rows = [("keys", "cabinet-1", "", datetime(2025, 1, 31, 23, 30, tzinfo=JST), "minor"),
            ("keys", "cabinet-1", "", datetime(2025, 2, 3, 9, 0, tzinfo=JST), "serious"),
            ("counter", None, "窓口 2", datetime(2025, 2, 4, 9, 0, tzinfo=JST), "minor"),
            ("pc", None, "窓口 2", datetime(2025, 3, 1, 0, 10, tzinfo=JST), "moderate"),
            ("pc", None, "窓口 2", datetime(2025, 5, 1, 0, 10, tzinfo=JST), "moderate")]  # after the range
    for category, station, place, when, severity in rows:
        service.file_case(engine, cfg, _case(category=category, station=station, place=place, occurred_at=when,
                                             severity=severity), "staff-07", now=NOW + timedelta(days=60))
    result = service.analysis(engine, JST, date(2025, 1, 1), date(2025, 3, 31))
    assert result.total == 4
    assert dict(result.by_category) == {"keys": 2, "printer": 0, "shredder": 0, "counter": 1, "pc": 1, "mail": 0,
                                        "other": 0}
    # 2025-01-31 23:30 JST is 14:30 UTC: counted in January, the hub's month.
    assert result.by_month == (("2025-01", 1), ("2025-02", 2), ("2025-03", 1))
    assert result.by_place == (("cabinet-1", 2), ("窓口 2", 2))
    assert dict(result.by_severity) == {"minor": 2, "moderate": 1, "serious": 1}


def test_the_monthly_report_counts_the_sites_cases_of_the_month(engine, cfg):
    from hub.ledgers import monthly

    for when, station, place in ((datetime(2025, 4, 1, 0, 10, tzinfo=JST), "cabinet-1", ""),
                                 (datetime(2025, 4, 30, 23, 50, tzinfo=JST), None, "窓口 2"),
                                 (datetime(2025, 5, 1, 0, 10, tzinfo=JST), "cabinet-1", ""),
                                 (datetime(2025, 3, 31, 23, 50, tzinfo=JST), "cabinet-2", "")):
        service.file_case(engine, cfg, _case(occurred_at=when, station=station, place=place), "staff-07",
                          now=NOW + timedelta(days=60))
    report = monthly.build(engine, cfg, "ward-a", "2025-04", now=NOW + timedelta(days=60))
    assert report.near_misses == 2
