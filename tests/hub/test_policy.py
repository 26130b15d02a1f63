"""Staff file -> per-station policies: compiled from YAML or CSV, versioned only on change,
published retained so a station that connects later still gets its policy."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import pytest

from hub import migrate
from hub.db import make_engine
from hub.policy import compile_policies, load_staff, store_policies, stored_policies
from hub.service import Hub
from hub.config import load
from kagiban.configfile import ConfigError
from kagiban.protocol import Policy
from tests.hub.helpers import SITE, encode, status, write_hub_config
from tests.support.mosquitto import wait_for

TARGETS = {"cabinet-1": SITE, "cabinet-2": SITE}

STAFF_YAML = """\
people:
  - id: chief
    name: Section chief
    badges: ["012e4cd2a5b71f03"]
    stations: ["*"]
  - id: staff-001
    name: Staff 001
    badges: ["01010312A1B2C3D4", "01010312A1B2C3D5"]
    stations: [cabinet-1]
  - id: temp-001
    name: Temporary staff 001
    badges: ["01010312A1B2C3F7"]
    stations: [cabinet-2]
    decision: allow_flag
"""

STAFF_CSV = (
    "\ufeffperson,name,badges,stations,decision\n"
    "chief,Section chief,012e4cd2a5b71f03,*,\n"
    'staff-001,Staff 001,"01010312A1B2C3D4; 01010312A1B2C3D5",cabinet-1,allow\n'
    "temp-001,Temporary staff 001,01010312A1B2C3F7,cabinet-2,allow_flag\n"
)


def _decisions(compiled, station):
    _site, badges = compiled[station]
    return {badge: (e.person, e.decision) for badge, e in badges.items()}


EXPECTED = {
    "cabinet-1": {
        "012E4CD2A5B71F03": ("chief", "allow"),
        "01010312A1B2C3D4": ("staff-001", "allow"),
        "01010312A1B2C3D5": ("staff-001", "allow"),
    },
    "cabinet-2": {
        "012E4CD2A5B71F03": ("chief", "allow"),
        "01010312A1B2C3F7": ("temp-001", "allow_flag"),
    },
}


@pytest.mark.parametrize("name, text", [("staff.yaml", STAFF_YAML), ("staff.csv", STAFF_CSV)])
def test_staff_file_compiles_to_per_station_policies(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    compiled = compile_policies(load_staff(path), TARGETS)
    assert _decisions(compiled, "cabinet-1") == EXPECTED["cabinet-1"]
    assert _decisions(compiled, "cabinet-2") == EXPECTED["cabinet-2"]
    assert compiled["cabinet-1"][1]["012E4CD2A5B71F03"].name == "Section chief"


def test_badge_in_no_entry_is_denied_at_the_station(tmp_path):
    path = tmp_path / "staff.yaml"
    path.write_text(STAFF_YAML)
    site, badges = compile_policies(load_staff(path), TARGETS)["cabinet-2"]
    policy = Policy(version=1, issued_at=datetime.now(timezone.utc), site=site,
                    station="cabinet-2", badges=badges)
    assert policy.decide("01010312A1B2C3D4").decision == "deny"  # staff-001 is cabinet-1 only
    assert policy.decide("01010312A1B2C3F7").decision == "allow_flag"


# (case, file name, text, what the error must say)
BAD_STAFF = [
    ("unknown key", "staff.yaml",
     "people:\n  - id: a\n    name: A\n    badges: ['0123456789ABCDEF']\n    stations: ['*']\n    role: x\n",
     ["line 6", "people.0.role", "unknown key"]),
    ("badge read as a number", "staff.yaml",
     "people:\n  - id: a\n    name: A\n    badges: [1234567890123456]\n    stations: ['*']\n",
     ["line 4", "people.0.badges.0", "in quotes"]),
    ("not hex", "staff.yaml",
     "people:\n  - id: a\n    name: A\n    badges: ['0123-4567-89AB']\n    stations: ['*']\n",
     ["people.0.badges.0", "not a badge id"]),
    ("missing name", "staff.yaml",
     "people:\n  - id: a\n    badges: ['0123456789ABCDEF']\n    stations: ['*']\n",
     ["line 2", "people.0.name", "missing value"]),
    ("badge of two people", "staff.yaml",
     "people:\n  - {id: a, name: A, badges: ['0123456789ABCDEF'], stations: ['*']}\n"
     "  - {id: b, name: B, badges: ['0123456789abcdef'], stations: ['*']}\n",
     ["line 3", "people.1", "badge 0123456789ABCDEF also belongs to a"]),
    ("not YAML", "staff.yaml", "people: [\n", ["not valid YAML"]),
    ("CSV header", "staff.csv", "who,name,badges,stations\n", ["line 1", "header"]),
    ("CSV bad badge", "staff.csv",
     "person,name,badges,stations\na,A,0123456789ABCDEF,*\nb,B,XYZ,*\n",
     ["line 3", "badges", "not a badge id"]),
    ("CSV bad decision", "staff.csv",
     "person,name,badges,stations,decision\na,A,0123456789ABCDEF,*,maybe\n",
     ["line 2", "decision"]),
]


@pytest.mark.parametrize("name, text, says", [c[1:] for c in BAD_STAFF], ids=[c[0] for c in BAD_STAFF])
def test_bad_staff_file_error_names_file_place_and_reason(tmp_path, name, text, says):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_staff(path)
    message = str(err.value)
    assert str(path) in message
    for part in says:
        assert part in message


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'kagiban.db'}")
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def test_version_changes_only_when_content_changes(tmp_path, engine):
    path = tmp_path / "staff.yaml"
    path.write_text(STAFF_YAML)
    t0 = datetime(2025, 4, 1, tzinfo=timezone.utc)
    t0_ms = int(t0.timestamp() * 1000)
    both = {"cabinet-1", "cabinet-2"}

    def store(now):
        return store_policies(engine, compile_policies(load_staff(path), TARGETS), now=now)

    def versions():
        return {s: p.version for s, p in stored_policies(engine).items()}

    assert store(t0) == both
    assert versions() == {"cabinet-1": t0_ms, "cabinet-2": t0_ms}

    # Same content later: nothing changes, not even the issue time.
    later = t0 + timedelta(hours=1)
    assert store(later) == set()
    assert stored_policies(engine)["cabinet-1"].issued_at == t0

    # temp-001 becomes a plain allow: only cabinet-2 changes. A clock that did not move still bumps.
    path.write_text(STAFF_YAML.replace("    decision: allow_flag\n", ""))
    assert store(t0) == {"cabinet-2"}
    assert versions() == {"cabinet-1": t0_ms, "cabinet-2": t0_ms + 1}

    path.write_text(STAFF_YAML)
    assert store(later) == {"cabinet-2"}
    assert versions() == {"cabinet-1": t0_ms, "cabinet-2": int(later.timestamp() * 1000)}


class PolicyWatcher:
    """A client that subscribes to every policy topic under a prefix and keeps what arrives."""

    def __init__(self, broker, prefix):
        self.got: dict[str, list[tuple[bool, Policy]]] = {}
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"w-{uuid.uuid4().hex[:10]}", protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{prefix}/+/+/policy", qos=1)
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        wait_for(ready.is_set, timeout=10, what="policy watcher subscribed")

    def _on_message(self, _c, _u, msg):
        with self._lock:
            self.got.setdefault(msg.topic, []).append((msg.retain, Policy.model_validate_json(msg.payload)))

    def latest(self, topic_name):
        with self._lock:
            items = self.got.get(topic_name)
            return items[-1][1] if items else None

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_policies_are_published_retained_and_again_when_the_staff_file_changes(
    tmp_path, broker, prefix, start_hub
):
    staff = tmp_path / "hub" / "staff.yaml"
    staff.parent.mkdir(parents=True)
    staff.write_text(STAFF_YAML)
    names = ("cabinet-1", "cabinet-2", "cabinet-3")
    listed = [{"id": name, "site": SITE, "kind": "cabinet"} for name in names]
    hub = start_hub(staff_file="staff.yaml", stations=listed)
    topics = {name: f"{prefix}/{SITE}/{name}/policy" for name in ("cabinet-1", "cabinet-2", "cabinet-3")}
    first = {name: None for name in topics}

    watcher = PolicyWatcher(broker, prefix)
    try:
        wait_for(lambda: all(watcher.latest(t) for t in topics.values()), timeout=10,
                 what="policies for three cabinets")
        # A station connecting after the hub published still gets them: they are retained.
        late = PolicyWatcher(broker, prefix)
        try:
            wait_for(lambda: all(late.latest(t) for t in topics.values()), timeout=10,
                     what="retained policies for a late subscriber")
            assert all(items[0][0] for items in late.got.values())  # retain flag set
        finally:
            late.close()
        for name, t in topics.items():
            first[name] = watcher.latest(t)
        assert set(first["cabinet-1"].badges) == set(EXPECTED["cabinet-1"])
        assert set(first["cabinet-3"].badges) == {"012E4CD2A5B71F03"}  # only the "*" entry
        assert first["cabinet-1"].station == "cabinet-1" and first["cabinet-1"].site == SITE

        # staff-001 gets a spare badge: cabinet-1 changes, cabinet-3 keeps its version.
        staff.write_text(STAFF_YAML.replace('"01010312A1B2C3D5"]', '"01010312A1B2C3D5", "01010312A1B2C3D6"]'))
        wait_for(lambda: watcher.latest(topics["cabinet-1"]).version > first["cabinet-1"].version,
                 timeout=8, what="a new cabinet-1 policy after the staff file changed")
        assert "01010312A1B2C3D6" in watcher.latest(topics["cabinet-1"]).badges
        assert stored_policies(hub.engine)["cabinet-3"].version == first["cabinet-3"].version
        assert watcher.latest(topics["cabinet-3"]).version == first["cabinet-3"].version
    finally:
        watcher.close()


def test_a_station_seen_for_the_first_time_gets_a_policy(tmp_path, broker, prefix, start_hub, station):
    staff = tmp_path / "hub" / "staff.yaml"
    staff.parent.mkdir(parents=True)
    staff.write_text(STAFF_YAML)
    start_hub(staff_file="staff.yaml")  # no station list: any station is accepted
    watcher = PolicyWatcher(broker, prefix)
    try:
        station("cabinet-7").publish("status", encode(status("cabinet-7", "online")))
        policy_topic = f"{prefix}/{SITE}/cabinet-7/policy"
        wait_for(lambda: watcher.latest(policy_topic), timeout=8, what="a policy for cabinet-7")
        assert set(watcher.latest(policy_topic).badges) == {"012E4CD2A5B71F03"}
    finally:
        watcher.close()


def test_hub_does_not_start_with_a_bad_staff_file(tmp_path, broker, prefix):
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "staff.yaml").write_text("people:\n  - id: a\n")
    hub = Hub(load(write_hub_config(folder, broker, prefix, staff_file="staff.yaml")))
    try:
        with pytest.raises(ConfigError, match="people.0.name"):
            hub.start()
    finally:
        hub.stop()


def test_a_broken_edit_keeps_the_published_policies(tmp_path, broker, prefix, start_hub, caplog):
    staff = tmp_path / "hub" / "staff.yaml"
    staff.parent.mkdir(parents=True)
    staff.write_text(STAFF_YAML)
    hub = start_hub(staff_file="staff.yaml", stations=[{"id": "cabinet-1", "site": SITE, "kind": "cabinet"}])
    before = stored_policies(hub.engine)["cabinet-1"]

    staff.write_text("people: [\n")  # saved half-way
    wait_for(lambda: "staff file not used" in caplog.text, timeout=8, what="the broken file refused")
    assert str(staff) in caplog.text
    assert stored_policies(hub.engine)["cabinet-1"] == before
    watcher = PolicyWatcher(broker, prefix)
    try:
        policy_topic = f"{prefix}/{SITE}/cabinet-1/policy"
        wait_for(lambda: watcher.latest(policy_topic), timeout=8, what="the retained policy")
        assert watcher.latest(policy_topic) == before
    finally:
        watcher.close()
