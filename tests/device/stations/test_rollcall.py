"""Roll-call unit rules, with the policy's open session and decisions passed in: a tap checks
the person in and answers present, late, unexpected or no session; it is always recorded and
never unlocks anything."""
from datetime import datetime, timedelta, timezone

import pytest

from device import unit_file
from device.stations.effects import Answer, Emit, Unlock
from device.stations.rollcall import RollcallLogic, RollcallUnit
from kagiban.configfile import ConfigError
from device.wire import PolicyEntry, RollCall
from tests.device.test_unit_file import ROOT

JST = timezone(timedelta(hours=9))
START = datetime(2026, 12, 7, 9, 0, tzinfo=JST)
SESSION = RollCall(session=7, title="個人情報保護研修", opens_at=START - timedelta(minutes=20),
                   late_after=START + timedelta(minutes=10), expected=["職員0012", "職員0031"])


def entry(person: str | None, decision: str = "allow", reason: str = "allowed") -> PolicyEntry:
    return PolicyEntry(person=person, decision=decision, reason=reason)


def tap(logic: RollcallLogic, badge: str, who: PolicyEntry, at: datetime, now: float = 0.0):
    effects = logic.badge(badge, who, now, at)
    [answer] = [e for e in effects if isinstance(e, Answer)]
    [emit] = [e for e in effects if isinstance(e, Emit)]
    assert not any(isinstance(e, Unlock) for e in effects)
    return answer.result, emit


def open_logic() -> RollcallLogic:
    logic = RollcallLogic()
    logic.roll_call(SESSION)
    return logic


def test_an_expected_person_within_the_window_is_present_and_recorded_with_the_session():
    result, emit = tap(open_logic(), "B1", entry("職員0012"), START + timedelta(minutes=3))
    assert result == "present"
    assert (emit.kind, emit.badge, emit.person) == ("rollcall.tap", "B1", "職員0012")
    assert emit.data == {"session": 7, "answer": "present"}


def test_a_tap_after_the_on_time_part_is_late():
    result, emit = tap(open_logic(), "B2", entry("職員0031"), START + timedelta(minutes=10, seconds=1))
    assert result == "late"
    assert emit.data["answer"] == "late"


def test_someone_not_on_the_list_is_unexpected_but_still_recorded_by_name():
    result, emit = tap(open_logic(), "B3", entry("職員0099"), START)
    assert result == "unexpected"
    assert emit.person == "職員0099"


def test_a_person_refused_for_lack_of_training_still_checks_in_to_the_training():
    result, emit = tap(open_logic(), "B1", entry("職員0012", "deny", "untrained"), START)
    assert (result, emit.person) == ("present", "職員0012")


@pytest.mark.parametrize("reason", ["revoked", "inactive", "badge_expired", "unknown"])
def test_a_badge_that_is_no_longer_its_holders_names_nobody(reason):
    result, emit = tap(open_logic(), "B1", entry("職員0012", "deny", reason), START)
    assert (result, emit.person) == ("unexpected", None)


def test_with_no_session_open_the_tap_is_still_recorded_and_answered_no_session():
    logic = RollcallLogic()
    logic.roll_call(None)
    result, emit = tap(logic, "B1", entry("職員0012"), START)
    assert result == "no_session"
    assert emit.data == {"session": None, "answer": "no_session"}


def test_a_tap_before_the_session_opens_is_no_session():
    result, _emit = tap(open_logic(), "B1", entry("職員0012"), SESSION.opens_at - timedelta(seconds=1))
    assert result == "no_session"


def test_the_same_card_held_again_is_the_same_tap_answered_again_without_a_new_record():
    logic = RollcallLogic(repeat_s=2.0)
    logic.roll_call(SESSION)
    tap(logic, "B1", entry("職員0012"), START, now=10.0)
    again = logic.badge("B1", entry("職員0012"), 11.0, START)
    assert again == [Answer("present")]


def test_the_example_unit_file_loads_and_a_unit_without_its_buzzer_is_refused(tmp_path):
    cfg = unit_file.load(ROOT / "config" / "rollcall.example.yaml")
    assert isinstance(cfg, RollcallUnit)
    assert (cfg.pins.led_granted, cfg.pins.led_denied, cfg.pins.buzzer) == (22, 23, 24)
    assert isinstance(cfg.make_logic(), RollcallLogic)
    text = (ROOT / "config" / "rollcall.example.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "rollcall.yaml"
    broken.write_text(text.replace("  buzzer: 24\n", ""), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        unit_file.load(broken)
    assert "pins.buzzer: missing value" in str(err.value)
