"""Roll call by badge tap end to end: a real mosquitto, a real hub whose policies come from its
registry, a key cabinet and a roll-call unit on mock pins. A part-timer without the training is
refused at the cabinet; a supervisor opens a training roll call for the section's part-timers;
the unit learns it from its signed policy; three taps (one on time, one late, one by someone not
expected) answer with the LEDs and are recorded at the hub as present, late and not expected;
closing the roll call on the page records the attendance and republishes the policies, and the
part-timer is let in at the cabinet within seconds. Taps made while the hub is stopped wait in the
unit's outbox and count once it is back. Nothing but the broker links units and hub."""
from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta

import pytest
import yaml

from device import unit_file
from device.agent import Agent
from hub import config as hub_config
from hub import registry
from hub.accounts.users import add_user
from hub.procedures import service as procedures
from hub.rollcall import service
from hub.service import Hub
from hub.store import migrate
from hub.store.db import make_engine
from tests.support.mosquitto import wait_for
from tests.support.stack import ALWAYS, hub_db, query, write_hub, write_unit
from tests.support.web_app import PASSWORD, csrf_from, login

pytestmark = pytest.mark.e2e

CABINET, UNIT = "cabinet-1", "rollcall-1"
LOCK, GREEN, RED = 27, 22, 23
ACTOR = "test-admin"
TRAINING = "個人情報保護研修"
SECTION = "戸籍係"
# Staff number (named 職員<number>), employment, section, badge.
PART_TIMER, OTHER_PART_TIMER, VISITOR = "0012", "0031", "0099"
PEOPLE = [(PART_TIMER, "part_time", SECTION, "0012000000000012"),
          (OTHER_PART_TIMER, "part_time", SECTION, "0031000000000031"),
          (VISITOR, "part_time", "住民係", "0099000000000099")]
BADGE = {number: badge for number, _e, _s, badge in PEOPLE}


def seed(path) -> None:
    """The training the cabinet requires (nobody has it) and the three people with badges."""
    cfg = hub_config.load(path)
    engine = make_engine(cfg.db_url())
    try:
        migrate.upgrade(engine)
        registry.add_training(engine, ACTOR, TRAINING, ["cabinet"], 365)
        for number, employment, section, badge in PEOPLE:
            registry.add_person(engine, ACTOR, number, f"職員{number}", kana=f"ショクイン{number}", section=section,
                                employment=employment, role="係員")
            registry.add_badge(engine, ACTOR, number, badge)
        add_user(engine, "sup-01", PASSWORD, "supervisor")
    finally:
        engine.dispose()


@pytest.fixture
def office(broker, prefix, tmp_path):
    """A registry-fed hub with a cabinet and a roll-call unit, both units running."""
    path = hub_file(broker, prefix, tmp_path)
    made: list = []
    hub = Hub(hub_config.load(path))
    hub.start()
    made.append(hub)
    try:
        cabinet = Agent(unit_file.load(write_unit(tmp_path, broker.port, prefix, CABINET, "cabinet",
                                                  pins={"door": 17, "lock": LOCK})))
        unit = Agent(unit_file.load(write_unit(tmp_path, broker.port, prefix, UNIT, "rollcall", pins={})))
        for agent in (cabinet, unit):
            agent.start()
            made.append(agent)
        for agent in (cabinet, unit):
            wait_for(lambda a=agent: BADGE[PART_TIMER] in a.call(
                lambda x: x.policy.current.badges if x.policy.current else {}), timeout=15,
                what="the registry's policy at the unit")
        yield hub, cabinet, unit, hub_db(path)
    finally:
        for thing in reversed(made):
            thing.stop()


def hub_file(broker, prefix, tmp_path):
    """The hub's file (cabinet and roll-call unit, policies from the registry), its store seeded."""
    path = write_hub(tmp_path, broker.port, prefix, [
        {"id": CABINET, "kind": "cabinet", "name": "Key cabinet", "hours": ALWAYS},
        {"id": UNIT, "kind": "rollcall", "name": "会議室", "hours": ALWAYS}])
    body = yaml.safe_load(path.read_text())
    body.pop("staff_file", None)  # the registry is the policies' source
    path.write_text(yaml.safe_dump(body, allow_unicode=True))
    seed(path)
    return path


def rises(agent, pin: int) -> int:
    """How often the output on ``pin`` went on (the mock pin keeps its history)."""
    levels = [bool(s.state) for s in agent.pin_factory.pin(pin).states]
    return sum(1 for a, b in zip(levels, levels[1:]) if not a and b)


def taps_at_hub(db) -> dict[str, str]:
    return {person: json.loads(data)["answer"] for person, data in query(
        db, "SELECT person, data FROM events WHERE station=? AND kind='rollcall.tap'", UNIT)}


def cabinet_refused(db) -> list[str]:
    return [json.loads(d)["reason"] for (d,) in query(
        db, "SELECT data FROM events WHERE station=? AND kind='badge.denied' AND person=?", CABINET, PART_TIMER)]


def test_a_roll_call_by_tap_trains_a_part_timer_who_is_then_let_in_at_the_cabinet(office):
    hub, cabinet, unit, db = office
    cabinet.reader.tap(BADGE[PART_TIMER])
    wait_for(lambda: cabinet_refused(db) == ["untrained"], timeout=15, what="the part-timer refused, untrained")
    assert cabinet.pin_factory.pin(LOCK).state == 0

    # Opened with its on-time part ending in 10 s, so the test sees a late tap without waiting long.
    zone = hub.cfg.zone()
    start = datetime.now(zone) - timedelta(seconds=50)
    sid = service.open_session(hub.engine, hub.cfg, "sup-01", service.SessionInput(
        kind="training", training=TRAINING, starts_at=start, window_min=1, stations=(UNIT,), section=SECTION,
        employment="part_time"))
    late_after = start + timedelta(minutes=1)
    wait_for(lambda: unit.call(lambda a: a.policy.current.rollcall is not None), timeout=10,
             what="the open roll call in the unit's signed policy")
    session = unit.call(lambda a: a.policy.current.rollcall)
    assert (session.session, sorted(session.expected)) == (sid, [PART_TIMER, OTHER_PART_TIMER])

    assert datetime.now(zone) < late_after - timedelta(seconds=1), "the policy took too long to arrive"
    unit.reader.tap(BADGE[PART_TIMER])
    unit.reader.tap(BADGE[VISITOR])
    time.sleep(max(0.0, (late_after - datetime.now(zone)).total_seconds()) + 0.5)
    unit.reader.tap(BADGE[OTHER_PART_TIMER])
    wait_for(lambda: len(taps_at_hub(db)) == 3, timeout=15, what="three taps stored at the hub")
    assert taps_at_hub(db) == {PART_TIMER: "present", VISITOR: "unexpected", OTHER_PART_TIMER: "late"}
    # What each person was shown (the LEDs blink on gpiozero's own threads).
    wait_for(lambda: rises(unit, GREEN) == 2 and rises(unit, RED) == 1, timeout=5, what="green twice, red once")

    # The hub's own judgement, live on the page.
    client = hub.web.app.test_client()
    assert login(client, "sup-01").status_code == 302
    page = client.get(f"/rollcall/{sid}").get_data(as_text=True)
    for number, status in ((PART_TIMER, "present"), (OTHER_PART_TIMER, "late"), (VISITOR, "unexpected")):
        assert f'data-staff="{number}" data-status="{status}"' in page

    closed_at = time.monotonic()
    response = client.post(f"/rollcall/{sid}/close", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    wait_for(lambda: cabinet.call(lambda a: a.policy.decide(BADGE[PART_TIMER], a.wall()).decision) != "deny",
             timeout=10, what="the part-timer allowed in the cabinet's policy")
    cabinet.reader.tap(BADGE[PART_TIMER])
    wait_for(lambda: cabinet.pin_factory.pin(LOCK).state == 1, timeout=5, what="the cabinet unlocked")
    allowed_in = time.monotonic() - closed_at
    assert allowed_in < 10
    print(f"closed -> part-timer let in at the cabinet: {allowed_in:.2f} s")
    wait_for(lambda: unit.call(lambda a: a.policy.current.rollcall) is None, timeout=10,
             what="the closed session off the unit's policy")
    assert [r["training"] for r in registry.person_record(hub.engine, PART_TIMER)] == [TRAINING]
    assert [r["training"] for r in registry.person_record(hub.engine, OTHER_PART_TIMER)] == [TRAINING]
    assert registry.person_record(hub.engine, VISITOR) == []


def test_taps_made_while_the_hub_is_away_count_once_it_is_back(broker, prefix, tmp_path):
    path = hub_file(broker, prefix, tmp_path)
    hub = Hub(hub_config.load(path))
    hub.start()
    unit = None
    try:
        unit = Agent(unit_file.load(write_unit(tmp_path, broker.port, prefix, UNIT, "rollcall", pins={}))).start()
        zone = hub.cfg.zone()
        sid = service.open_session(hub.engine, hub.cfg, "sup-01", service.SessionInput(
            kind="meeting", topic="朝礼: 鍵の返却手順", starts_at=datetime.now(zone), window_min=15,
            stations=(UNIT,), staff_numbers=(PART_TIMER, OTHER_PART_TIMER)))
        wait_for(lambda: unit.call(lambda a: a.policy.current is not None and a.policy.current.rollcall is not None),
                 timeout=15, what="the open roll call at the unit")
        hub.stop()

        unit.reader.tap(BADGE[PART_TIMER])  # answered from the unit's own policy, kept in its outbox
        wait_for(lambda: rises(unit, GREEN) == 1, timeout=5, what="the unit answering present")
        assert unit.call(lambda a: a.outbox.depth()) >= 1

        hub = Hub(hub_config.load(path))
        hub.start()
        wait_for(lambda: [r.status for r in service.roster(hub.engine, sid).rows if r.staff_no == PART_TIMER]
                 == ["present"], timeout=20, what="the tap made while the hub was away, counted")
        closed = service.close_session(hub.engine, hub.cfg, "sup-01", sid)
        assert (closed.present, closed.late) == ((PART_TIMER,), ())
    finally:
        if unit is not None:
            unit.stop()
        hub.stop()


def test_a_reading_roll_call_confirms_a_procedure_and_the_cabinet_lets_in_only_who_came(office):
    """Issue 15 item 2 by tap: a new version of a procedure the cabinet requires puts the section on
    the to-confirm list and the cabinet refuses them; a reading roll call for that version, one tap
    at the unit, closed on the page: the one who came is let in within seconds, the other is still
    refused with ``unconfirmed_procedure``."""
    hub, cabinet, unit, db = office
    session = registry.add_session(hub.engine, ACTOR, TRAINING, datetime.now(hub.cfg.zone()).date())
    registry.record_attendance(hub.engine, ACTOR, session, [PART_TIMER, OTHER_PART_TIMER])  # trained
    procedures.add_document(hub.engine, ACTOR, "鍵の取扱手順書", "procedure", sections=[SECTION],
                            station_kinds=["cabinet"])
    version = procedures.upload_version(hub.engine, ACTOR, "鍵の取扱手順書", "keys.md", "# 鍵の取扱手順\n".encode())
    assert {PART_TIMER, OTHER_PART_TIMER} <= {p.staff_no for p in procedures.pending(hub.engine, date.today())}
    for number in (PART_TIMER, OTHER_PART_TIMER):
        wait_for(lambda n=number: cabinet.call(lambda a: a.policy.decide(BADGE[n], a.wall()).reason)
                 == "unconfirmed_procedure", timeout=15, what="the new version's requirement at the cabinet")

    sid = service.open_session(hub.engine, hub.cfg, "sup-01", service.SessionInput(
        kind="meeting", topic="読み合わせ: 鍵の取扱手順書", starts_at=datetime.now(hub.cfg.zone()), window_min=15,
        stations=(UNIT,), section=SECTION, employment="part_time", procedure_version_id=version.id))
    wait_for(lambda: unit.call(lambda a: a.policy.current.rollcall is not None), timeout=10,
             what="the reading roll call at the unit")
    unit.reader.tap(BADGE[PART_TIMER])
    wait_for(lambda: taps_at_hub(db) == {PART_TIMER: "present"}, timeout=15, what="the tap stored at the hub")

    client = hub.web.app.test_client()
    assert login(client, "sup-01").status_code == 302
    page = client.get(f"/rollcall/{sid}").get_data(as_text=True)
    assert '<dd id="session-reading">鍵の取扱手順書 第1版</dd>' in page
    closed_at = time.monotonic()
    assert client.post(f"/rollcall/{sid}/close", data={"csrf_token": csrf_from(page)}).status_code == 302
    wait_for(lambda: cabinet.call(lambda a: a.policy.decide(BADGE[PART_TIMER], a.wall()).decision) != "deny",
             timeout=10, what="the reader allowed in the cabinet's policy")
    cabinet.reader.tap(BADGE[PART_TIMER])
    wait_for(lambda: cabinet.pin_factory.pin(LOCK).state == 1, timeout=5, what="the cabinet unlocked")
    assert time.monotonic() - closed_at < 10
    [confirmed] = procedures.confirmations(hub.engine, "鍵の取扱手順書")
    assert (confirmed.staff_no, confirmed.via, confirmed.session_id) == (PART_TIMER, "rollcall", sid)

    cabinet.reader.tap(BADGE[OTHER_PART_TIMER])  # did not come to the reading: still refused, with its reason
    refused = wait_for(lambda: [json.loads(d)["reason"] for (d,) in query(
        db, "SELECT data FROM events WHERE station=? AND kind='badge.denied' AND person=?", CABINET,
        OTHER_PART_TIMER)], timeout=10, what="the other part-timer refused at the cabinet")
    assert refused == ["unconfirmed_procedure"]


def test_a_cabinet_picked_for_a_roll_call_checks_people_in_instead_of_unlocking_until_it_is_closed(office):
    hub, cabinet, unit, db = office
    session = registry.add_session(hub.engine, ACTOR, TRAINING, datetime.now(hub.cfg.zone()).date())
    registry.record_attendance(hub.engine, ACTOR, session, [OTHER_PART_TIMER])  # may use the cabinet
    wait_for(lambda: cabinet.call(lambda a: a.policy.decide(BADGE[OTHER_PART_TIMER], a.wall()).decision) != "deny",
             timeout=15, what="the trained part-timer allowed at the cabinet")
    sid = service.open_session(hub.engine, hub.cfg, "sup-01", service.SessionInput(
        kind="meeting", topic="朝礼", starts_at=datetime.now(hub.cfg.zone()), window_min=15,
        stations=(CABINET,), staff_numbers=(OTHER_PART_TIMER,)))
    wait_for(lambda: cabinet.call(lambda a: a.policy.current.rollcall is not None), timeout=10,
             what="the roll call on the cabinet's policy")

    cabinet.reader.tap(BADGE[OTHER_PART_TIMER])
    checked_in = wait_for(lambda: query(db, "SELECT station, data FROM events WHERE kind='rollcall.tap'"), timeout=15,
                          what="the check-in stored at the hub")
    assert [(station, json.loads(data)["answer"]) for station, data in checked_in] == [(CABINET, "present")]
    assert rises(cabinet, LOCK) == 0  # checked in, not let in
    assert query(db, "SELECT kind FROM events WHERE station=? AND kind LIKE 'badge.%'", CABINET) == []

    service.close_session(hub.engine, hub.cfg, "sup-01", sid)
    wait_for(lambda: cabinet.call(lambda a: a.policy.current.rollcall is None), timeout=10,
             what="the closed roll call off the cabinet's policy")
    cabinet.reader.tap(BADGE[OTHER_PART_TIMER])  # its usual use again
    wait_for(lambda: cabinet.pin_factory.pin(LOCK).state == 1, timeout=5, what="the cabinet unlocked")
