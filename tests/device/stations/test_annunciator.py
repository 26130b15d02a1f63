"""Annunciator rules, with the hub's alarm state and the silence button passed in: it lights
and sounds for open critical alerts, a silence stops only the buzzer, a new alert sounds again."""
from datetime import datetime, timedelta, timezone

from device.stations.annunciator import SILENCE, AnnunciatorLogic
from device.stations.effects import Emit, Signal
from device.wire import SiteAlarm

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=timezone(timedelta(hours=9)))


def alarm(*ids: int) -> SiteAlarm:
    return SiteAlarm(site="ward-a", at=T0, count=len(ids), alerts=sorted(ids))


def test_nothing_open_keeps_it_dark_and_quiet():
    logic = AnnunciatorLogic()
    assert logic.site_alarm(alarm(), 0.0, T0) == []
    assert logic.signal == "off"


def test_an_open_critical_alert_lights_and_sounds_it():
    logic = AnnunciatorLogic()
    assert logic.site_alarm(alarm(7), 0.0, T0) == [Signal(lamp=True, sound=True)]
    assert logic.signal == "sounding"


def test_the_silence_button_stops_the_buzzer_records_it_and_keeps_the_lamp_lit():
    logic = AnnunciatorLogic()
    logic.site_alarm(alarm(7, 9), 0.0, T0)
    effects = logic.input(SILENCE, True, 1.0, T0)
    emits = [e for e in effects if isinstance(e, Emit)]
    assert [(e.kind, e.data) for e in emits] == [("annunciator.silenced", {"alerts": [7, 9], "count": 2})]
    assert Signal(lamp=True, sound=False) in effects
    assert logic.signal == "lit"
    # The button released, and pressed again while quiet: nothing more is recorded.
    assert logic.input(SILENCE, False, 1.5, T0) == []
    assert logic.input(SILENCE, True, 2.0, T0) == []


def test_the_same_alerts_published_again_stay_silenced():
    logic = AnnunciatorLogic()
    logic.site_alarm(alarm(7), 0.0, T0)
    logic.input(SILENCE, True, 1.0, T0)
    assert logic.site_alarm(alarm(7), 2.0, T0) == []
    assert logic.signal == "lit"


def test_a_new_critical_alert_sounds_again_after_a_silence():
    logic = AnnunciatorLogic()
    logic.site_alarm(alarm(7), 0.0, T0)
    logic.input(SILENCE, True, 1.0, T0)
    assert logic.site_alarm(alarm(7, 8), 2.0, T0) == [Signal(lamp=True, sound=True)]
    assert logic.signal == "sounding"


def test_all_alerts_acknowledged_turns_it_dark():
    logic = AnnunciatorLogic()
    logic.site_alarm(alarm(7), 0.0, T0)
    logic.input(SILENCE, True, 1.0, T0)
    assert logic.site_alarm(alarm(), 2.0, T0) == [Signal(lamp=False, sound=False)]
    assert logic.signal == "off"


def test_an_alert_acknowledged_while_another_sounds_keeps_it_sounding():
    logic = AnnunciatorLogic()
    logic.site_alarm(alarm(7, 8), 0.0, T0)
    assert logic.site_alarm(alarm(8), 1.0, T0) == []
    assert logic.signal == "sounding"


def test_other_inputs_do_nothing():
    logic = AnnunciatorLogic()
    logic.site_alarm(alarm(7), 0.0, T0)
    assert logic.input("stop_button", True, 1.0, T0) == []
    assert logic.signal == "sounding"
