"""A station whose heartbeats say its policy has expired raises policy_expired once (ja/en
wording), until a heartbeat says otherwise; a restart of the rules remembers it is out."""
from __future__ import annotations

from tests.hub.helpers import heartbeat


def hb(station: str, expired: bool | None) -> dict:
    body = heartbeat(station)
    body["policy_version"] = 7
    if expired is not None:
        body["policy_expired"] = expired
    return body


def test_an_expired_policy_raises_policy_expired_once_until_it_is_fresh_again(stack):
    stack.feed(*(("heartbeat", "cabinet-1", hb("cabinet-1", True)) for _ in range(3)))
    [alert] = stack.alerts("policy_expired")
    assert alert["station"] == "cabinet-1" and alert["severity"] == "warning"
    assert alert["params"]["held_version"] == 7 and "expired" in alert["message"]
    stack.stop_rules()  # a restart remembers it is out while the station still says so
    stack.start_rules()
    stack.feed(("heartbeat", "cabinet-1", hb("cabinet-1", True)))
    assert len(stack.alerts("policy_expired")) == 1
    stack.feed(("heartbeat", "cabinet-1", hb("cabinet-1", None)),  # fresh policy: field left out
               ("heartbeat", "cabinet-1", hb("cabinet-1", True)))
    assert len(stack.alerts("policy_expired")) == 2
    assert stack.alerts("policy_expired", station="cabinet-2") == []
