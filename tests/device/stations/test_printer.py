"""Printer logic without hardware or CUPS: taps, print-server answers and the tray sensor in,
events and print requests out."""
from datetime import datetime, timedelta, timezone

import pytest

from device.printing.jobs import COMPLETED, ExpireResult, HeldJob, JobState, QueueResult, ReleaseResult
from device.stations.effects import CheckQueue, Emit, ExpireJobs, Feedback, ReleaseJobs
from device.stations.printer import PrinterLogic
from device.wire import PolicyEntry

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=9)))
STAFF = "0123456789ABCDEF"
OTHER_NAME = "1111222233334444"
UNKNOWN = "FFFFEEEEDDDDCCCC"

ENTRIES = {
    STAFF: PolicyEntry(person="S001", name="Staff 001", decision="allow", reason="allowed"),
    # Known at the print server by another name than the staff number.
    OTHER_NAME: PolicyEntry(person="S002", name="Staff 002", decision="allow", reason="allowed", print_user="u-s002"),
}


def decide(badge: str) -> PolicyEntry:
    return ENTRIES.get(badge) or PolicyEntry(decision="deny", reason="unknown")


def wall(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def emitted(effects, kind=None):
    return [e for e in effects if isinstance(e, Emit) and (kind is None or e.kind == kind)]


@pytest.fixture
def logic():
    return PrinterLogic(hold_max_s=3600, tray_alert_s=300, check_s=60, tray_clear_s=2)


def job(job_id, user, title="doc", age_s=0.0, now_unix=T0.timestamp()):
    return HeldJob(job_id, user, title, now_unix - age_s)


def test_a_tap_asks_to_release_that_persons_jobs_under_their_print_name(logic):
    effects = logic.badge(STAFF, decide(STAFF), 1.0, wall(1))
    [release] = [e for e in effects if isinstance(e, ReleaseJobs)]
    assert (release.user, release.person, release.badge) == ("S001", "S001", STAFF)
    assert emitted(effects, "badge.granted")[0].data["print_user"] == "S001"
    [other] = [e for e in logic.badge(OTHER_NAME, decide(OTHER_NAME), 2.0, wall(2)) if isinstance(e, ReleaseJobs)]
    assert other.user == "u-s002"


def test_an_unknown_badge_releases_nothing(logic):
    effects = logic.badge(UNKNOWN, decide(UNKNOWN), 1.0, wall(1))
    assert Feedback("denied") in effects
    assert not [e for e in effects if isinstance(e, ReleaseJobs)]
    assert emitted(effects, "badge.denied")[0].data["reason"] == "unknown"


def test_released_jobs_are_recorded_with_titles_and_the_person_gets_green(logic):
    [release] = [e for e in logic.badge(STAFF, decide(STAFF), 1.0, wall(1)) if isinstance(e, ReleaseJobs)]
    result = ReleaseResult(user="S001", released=(job(7, "S001", "juminhyo"), job(9, "S001", "koseki")))
    effects = logic.work_done(release, result, 1.2, wall(1.2))
    assert Feedback("granted") in effects
    [ev] = emitted(effects, "print.released")
    assert ev.person == "S001" and ev.data["count"] == 2
    assert [j["title"] for j in ev.data["jobs"]] == ["juminhyo", "koseki"]
    # The released jobs are watched until CUPS says they printed, with the pages it counted.
    [check] = [e for e in logic.tick(logic.next_deadline(), wall(5)) if isinstance(e, CheckQueue)]
    assert check.watch == (7, 9)
    done = QueueResult(watched=(JobState(7, COMPLETED, 2), JobState(9, COMPLETED, 1)))
    [printed] = emitted(logic.work_done(check, done, 5.0, wall(5)), "print.printed")
    assert printed.data["jobs"] == [{"id": 7, "state": "completed", "pages": 2},
                                    {"id": 9, "state": "completed", "pages": 1}]


def test_a_tap_with_nothing_held_says_so(logic):
    [release] = [e for e in logic.badge(STAFF, decide(STAFF), 1.0, wall(1)) if isinstance(e, ReleaseJobs)]
    effects = logic.work_done(release, ReleaseResult(user="S001"), 1.1, wall(1.1))
    assert Feedback("denied") in effects
    assert emitted(effects, "print.release_failed")[0].data["reason"] == "no_jobs"


def test_cups_down_is_reported_once_and_a_tap_meanwhile_releases_nothing(logic):
    [check] = logic.tick(0.0, wall(0))
    assert isinstance(check, CheckQueue)
    first = logic.work_done(check, QueueResult(error="cups_down"), 0.1, wall(0.1))
    assert [e.kind for e in emitted(first)] == ["cups.down"]
    [release] = [e for e in logic.badge(STAFF, decide(STAFF), 1.0, wall(1)) if isinstance(e, ReleaseJobs)]
    effects = logic.work_done(release, ReleaseResult(user="S001", error="cups_down"), 1.1, wall(1.1))
    assert [e.kind for e in emitted(effects)] == ["print.release_failed"]  # no second cups.down
    assert emitted(effects)[0].data["reason"] == "cups_down" and Feedback("denied") in effects
    [check] = logic.tick(61.0, wall(61))
    back = logic.work_done(check, QueueResult(held=(job(3, "S001"),)), 61.1, wall(61.1))
    assert "cups.up" in [e.kind for e in emitted(back)]


def test_a_double_tap_while_releasing_asks_only_once(logic):
    first = logic.badge(STAFF, decide(STAFF), 1.0, wall(1))
    second = logic.badge(STAFF, decide(STAFF), 1.5, wall(1.5))
    assert len([e for e in first + second if isinstance(e, ReleaseJobs)]) == 1


def test_the_queue_is_reported_and_old_jobs_expire_unprinted(logic):
    now_unix = T0.timestamp()
    held = (job(1, "S001", "old", age_s=4000, now_unix=now_unix), job(2, "S002", "new", age_s=10, now_unix=now_unix))
    [check] = logic.tick(0.0, wall(0))
    effects = logic.work_done(check, QueueResult(held=held, server_time=now_unix), 0.1, wall(0))
    [queue] = emitted(effects, "print.queue")
    assert queue.data == {"held": 2, "oldest_s": 4000.0}
    [expire] = [e for e in effects if isinstance(e, ExpireJobs)]
    assert [j.id for j in expire.jobs] == [1]
    # The next check, before the cancel came back, does not ask again.
    [check] = logic.tick(61.0, wall(61))
    assert not [e for e in logic.work_done(check, QueueResult(held=held, server_time=now_unix + 61), 61.1, wall(61))
                if isinstance(e, ExpireJobs)]
    [ev] = emitted(logic.work_done(expire, ExpireResult(cancelled=(held[0],)), 0.2, wall(0.2)), "print.expired")
    assert ev.data["count"] == 1 and ev.data["jobs"][0]["user"] == "S001" and ev.data["limit_s"] == 3600


def test_printouts_left_in_the_tray_alert_once_and_a_flicker_is_not_a_collection(logic):
    assert logic.input("tray", True, 10.0, wall(10)) == []
    # The sensor flickers while someone straightens the stack: still the same stack.
    logic.input("tray", False, 100.0, wall(100))
    logic.input("tray", True, 100.5, wall(100.5))
    assert not emitted(logic.tick(101.0, wall(101)), "tray.collected")
    [late] = emitted(logic.tick(310.0, wall(310)), "tray.uncollected")
    assert late.data["minutes"] == 5.0 and late.snapshot
    assert not emitted(logic.tick(400.0, wall(400)), "tray.uncollected")
    logic.input("tray", False, 500.0, wall(500))
    [taken] = emitted(logic.tick(502.0, wall(502)), "tray.collected")
    assert taken.data["after_alert"] is True and taken.data["lay_s"] == 490.0
