"""Every station kind answers the whole station-logic interface: what a kind has no use for
(a cabinet's extra inputs, a shredder's door, a printer's door) changes nothing and records
nothing, so the agent hands every input to every logic the same way."""
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import get_args

import pytest

from device.unit_file import load
from device.stations import StationLogic, make_logic
from device.stations.effects import CheckQueue
from device.wire import SiteAlarm
from kagiban.wire import StationKind

EXAMPLES = Path(__file__).resolve().parents[3] / "config"
T0 = datetime(2026, 12, 5, 9, 0, tzinfo=timezone(timedelta(hours=9)))


@pytest.mark.parametrize("kind", get_args(StationKind))
def test_inputs_a_kind_does_not_use_change_nothing(kind):
    logic = make_logic(load(EXAMPLES / f"{kind}.example.yaml"))
    assert isinstance(logic, StationLogic)  # every method the agent calls is there
    logic.assume_door(False, 0.0, T0)
    unused = {"cabinet": ["stop_button", "bin", "tray", "silence"], "door": ["stop_button", "bin", "tray", "silence"],
              "shredder": ["tray", "silence"], "printer": ["stop_button", "bin", "silence"],
              "annunciator": ["stop_button", "bin", "tray"],
              "rollcall": ["stop_button", "bin", "tray", "silence"]}[kind]
    for name in unused:
        assert logic.input(name, True, 1.0, T0) == [], (kind, name)
    if kind != "annunciator":  # only an annunciator follows the site's critical alerts
        assert logic.hears_site_alarm is False and logic.signal is None
        assert logic.site_alarm(SiteAlarm(site="s", at=T0, count=1, alerts=[1]), 1.0, T0) == []
    logic.roll_call(None)  # the agent tells every kind the policy's roll-call session before a tap
    if kind in ("shredder", "printer", "annunciator", "rollcall"):
        assert logic.door(True, 1.0, T0) == [] and logic.door_open is False
    if kind != "printer":
        assert logic.work_done(CheckQueue(), None, 1.0, T0) == []
        assert logic.print_server_up is None

