"""The policy rules: a station that refuses a policy (policy_rejected) and one that keeps an
old policy for longer than the grace (policy_stale), through a real Ingest and the rules
thread over a real SQLite file, read back as a supervisor would."""
from __future__ import annotations

from datetime import timedelta

import pytest

from hub.alerting.wording import alert_text
from hub.registry.policy import store_policies
from hub.alerting.rules import POLICY_STALE_S
from hub.store.timestamps import now_utc
from kagiban.protocol import PolicyEntry
from tests.hub.helpers import heartbeat, status
from tests.support.alert_stack import TUESDAY, Stack, ev

SITE = "ward-a"


@pytest.fixture
def stack(tmp_path):
    # The tests move the rules' clock minutes ahead: the stations must not go offline meanwhile.
    s = Stack(tmp_path, rules={"offline_grace_s": 3600})
    s.start_rules()
    yield s
    s.close()


def publish(s: Stack, station: str = "cabinet-1", badges: int = 0) -> int:
    """Store a new policy version for ``station`` (with ``badges`` entries, so a different
    count is a new content), as the publisher does; the version."""
    entries = {f"{n + 1:016X}": PolicyEntry(person=f"S{n:03d}", decision="allow") for n in range(badges)}
    store_policies(s.engine, {station: (SITE, entries)}, now=now_utc())
    with s.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT version FROM policies WHERE station = ?", (station,)).scalar_one()


def test_the_grace_is_a_minute():
    # Documented on the status page and in hub.alerting.rules: a policy reaches a station in a second or two.
    assert POLICY_STALE_S == 60.0


def test_a_forged_policy_refused_by_a_station_is_a_critical_alert(stack):
    stack.feed(ev("cabinet-1", 1, "policy.rejected", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None,
                  data={"reason": "unknown_key", "offered_version": 9000, "held_version": 42}))
    [alert] = stack.alerts("policy_rejected")
    assert alert["severity"] == "critical" and alert["state"] == "open"
    params = alert["params"]
    assert (params["reason"], params["offered_version"], params["held_version"]) == ("unknown_key", 9000, 42)
    assert alert["message"] == ("Key cabinet 1 refused policy version 9000 (reason: signed with an unknown key; "
                                "holding version 42) at 2025-04-01 10:00:00.")
    assert alert_text("policy_rejected", params, "ja") == (
        "Key cabinet 1がポリシー（版9000）を拒否しました（理由: ハブ以外の鍵で署名、保持中の版42、"
        "2025-04-01 10:00:00）。")


def test_an_older_policy_refused_is_a_warning_and_each_refusal_is_alerted_once(stack):
    msg = ev("cabinet-2", 1, "policy.rejected", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None,
             data={"reason": "older_version", "offered_version": 41, "held_version": None})
    stack.feed(msg, msg)
    [alert] = stack.alerts("policy_rejected")
    assert alert["severity"] == "warning"
    assert "holding version none" in alert["message"]
    assert "保持中の版なし" in alert_text("policy_rejected", alert["params"], "ja")
    # A restart runs the recent events through the rules again: nothing is raised twice.
    stack.stop_rules()
    stack.start_rules()
    assert len(stack.alerts("policy_rejected")) == 1


def test_a_station_holding_an_old_policy_past_the_grace_is_alerted_once(stack):
    latest = publish(stack)
    stack.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1", policy_version=latest - 1)))
    start = now_utc()
    stack.rules.tick(start)
    stack.rules.tick(start + timedelta(seconds=POLICY_STALE_S - 1))
    assert stack.alerts("policy_stale") == []  # on its way: a policy takes a moment
    stack.rules.tick(start + timedelta(seconds=POLICY_STALE_S + 1))
    [alert] = stack.alerts("policy_stale")
    assert alert["severity"] == "warning" and alert["station"] == "cabinet-1"
    assert (alert["params"]["held_version"], alert["params"]["latest_version"]) == (latest - 1, latest)
    assert alert["params"]["grace_s"] == 60
    assert "古いポリシー（版" in alert_text("policy_stale", alert["params"], "ja")
    stack.rules.tick(start + timedelta(seconds=POLICY_STALE_S * 3))
    assert len(stack.alerts("policy_stale")) == 1
    # Still the same after a restart of the rules.
    stack.stop_rules()
    stack.start_rules()
    stack.rules.tick(now_utc() + timedelta(seconds=POLICY_STALE_S * 3))
    assert len(stack.alerts("policy_stale")) == 1


def test_a_station_that_catches_up_in_time_raises_nothing_and_a_later_lag_is_alerted_again(stack):
    latest = publish(stack)
    stack.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1", policy_version=latest - 1)))
    start = now_utc()
    stack.rules.tick(start)
    stack.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1", policy_version=latest)))
    stack.rules.tick(start + timedelta(seconds=POLICY_STALE_S + 5))
    assert stack.alerts("policy_stale") == []

    newer = publish(stack, badges=1)
    assert newer > latest
    stack.rules.tick(start + timedelta(seconds=POLICY_STALE_S + 6))
    stack.rules.tick(start + timedelta(seconds=2 * POLICY_STALE_S + 10))
    [alert] = stack.alerts("policy_stale")
    assert alert["params"]["latest_version"] == newer and alert["params"]["held_version"] == latest


def test_an_offline_station_or_one_never_heard_is_not_called_stale(stack):
    publish(stack, "cabinet-1")
    publish(stack, "cabinet-2")
    stack.feed(("heartbeat", "cabinet-1", heartbeat("cabinet-1", policy_version=1)),
               ("status", "cabinet-1", status("cabinet-1", "offline")))
    start = now_utc()
    stack.rules.tick(start)
    stack.rules.tick(start + timedelta(seconds=POLICY_STALE_S * 2))
    # cabinet-1 is offline (its own alert says so); cabinet-2 never sent a heartbeat.
    assert stack.alerts("policy_stale") == []
    assert stack.alerts("offline")
