"""Procedures end to end (issue 15, item 2): a real hub (its registry the policy source), a real
cabinet agent over a real mosquitto. An admin uploads a new version of a procedure the cabinet
requires on the web page; everyone it applies to is put on the to-confirm list and the station,
from its re-signed policy, refuses them; a supervisor records one person's confirmation on the
page; that person is let in within seconds while the unconfirmed one is refused with
``unconfirmed_procedure``, stored at the hub, raised as an alert and worded on the events page."""
from __future__ import annotations

import io
import json
import time

import pytest

from hub.accounts.users import add_user
from hub.alerting.alerts import list_alerts
from hub.procedures import service
from tests.support.mosquitto import wait_for
from tests.support.registry_stack import ACTOR, CLERK, running_cabinet, write_registry_hub_config
from tests.support.stack import HOLDER, query
from tests.support.web_app import PASSWORD, csrf_from, login

pytestmark = pytest.mark.e2e
LOCK_PIN = 27
DOCUMENT = "鍵の取扱手順書"


@pytest.fixture
def stack(broker, prefix, tmp_path):
    path = write_registry_hub_config(tmp_path, broker.port, prefix)

    def users_and_document(hub):
        add_user(hub.engine, "adm-01", PASSWORD, "admin")
        add_user(hub.engine, "sup-01", PASSWORD, "supervisor")
        # The procedure exists before it has a version: it requires nothing yet.
        service.add_document(hub.engine, ACTOR, DOCUMENT, "procedure", sections=["戸籍係"], station_kinds=["cabinet"])

    with running_cabinet(path, broker.port, prefix, tmp_path, users_and_document) as running:
        yield running


def _entry(agent, badge):
    entry = agent.call(lambda a: a.policy.current.badges[badge])
    return entry.person, entry.decision, entry.reason


def _lock_energised(agent) -> bool:
    return agent.pin_factory.pin(LOCK_PIN).state == 1


def _post(client, page: str, url: str, data: dict, **kwargs):
    token = csrf_from(client.get(page).get_data(as_text=True))
    response = client.post(url, data={**data, "csrf_token": token}, **kwargs)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


def test_a_new_version_refuses_the_unconfirmed_and_a_recorded_confirmation_lets_one_in(stack):
    hub, agent, db = stack
    assert _entry(agent, CLERK) == ("S003", "allow_flag", "not_designated")
    doc_id = service.get_document(hub.engine, DOCUMENT).id
    page = f"/procedures/{doc_id}"

    admin = hub.web.app.test_client()
    assert login(admin, "adm-01").status_code == 302
    _post(admin, page, f"{page}/versions", {"file": (io.BytesIO("# 鍵の取扱手順\n\n1. 使用後すぐに戻す\n".encode()),
                                                     "keys.md")}, content_type="multipart/form-data")
    listed = admin.get("/procedures/pending").get_data(as_text=True)
    assert all(f'data-staff="{n}"' in listed for n in ("S001", "S002", "S003", "S004"))
    wait_for(lambda: _entry(agent, HOLDER)[1:] == ("deny", "unconfirmed_procedure"), timeout=15,
             what="the new version's requirement in the station's policy")

    supervisor = hub.web.app.test_client()
    assert login(supervisor, "sup-01").status_code == 302
    recorded = time.monotonic()
    _post(supervisor, page, f"{page}/confirmations", {"number": "1", "via": "supervisor", "staff_nos": "S001"})
    wait_for(lambda: _entry(agent, HOLDER) == ("S001", "allow", "designated_holder"), timeout=15,
             what="the confirmation in the station's policy")
    reached = time.monotonic() - recorded
    assert reached < 10, f"the confirmation took {reached:.1f} s to reach the station"
    listed = supervisor.get("/procedures/pending").get_data(as_text=True)
    assert 'data-staff="S001"' not in listed and 'data-staff="S003"' in listed

    agent.reader.tap(CLERK)  # trained, not confirmed: refused at the station, with its reason
    rows = wait_for(lambda: query(db, "SELECT person, data FROM events WHERE kind='badge.denied'"), timeout=10,
                    what="the refusal stored at the hub")
    assert rows[0][0] == "S003" and json.loads(rows[0][1])["reason"] == "unconfirmed_procedure"
    assert not _lock_energised(agent)
    alert = wait_for(lambda: [a for a in list_alerts(hub.engine) if a["rule"] == "denied"], timeout=10,
                     what="the denied alert")[0]
    assert alert["params"]["reason"] == "unconfirmed_procedure"
    assert "現行の規程・手順書が未確認" in supervisor.get("/events").get_data(as_text=True)

    agent.reader.tap(HOLDER)  # confirmed: let in
    wait_for(lambda: _lock_energised(agent), timeout=5, what="unlocked for the confirmed holder")
    granted = wait_for(lambda: query(db, "SELECT person FROM events WHERE kind='badge.granted'"), timeout=10,
                       what="the grant stored at the hub")
    assert granted[0][0] == "S001"
