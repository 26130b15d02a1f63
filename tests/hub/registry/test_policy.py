"""Staff file -> per-station policies: compiled from YAML or CSV, versioned only on change,
published retained so a station that connects later still gets its policy."""
from __future__ import annotations

import stat
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest

from hub.registry import policy as policy_module
from hub.registry.policy import (
    PolicyPublisher,
    compile_policies,
    load_staff,
    next_midnight,
    store_policies,
    stored_policies,
)
from hub.service import Hub
from hub.config import load
from kagiban.configfile import ConfigError
from kagiban import signing
from kagiban.protocol import Hours, Policy, PolicyEntry, SignedPolicy
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
    now = datetime.now(timezone.utc)
    assert policy.decide("01010312A1B2C3D4", now).decision == "deny"  # staff-001 is cabinet-1 only
    assert policy.decide("01010312A1B2C3F7", now).decision == "allow_flag"


def test_staff_file_entries_keep_their_meaning_at_any_hour(tmp_path):
    path = tmp_path / "staff.yaml"
    path.write_text(STAFF_YAML)
    _site, badges = compile_policies(load_staff(path), TARGETS)["cabinet-2"]
    assert badges["012E4CD2A5B71F03"].reason == "allowed"
    assert badges["01010312A1B2C3F7"].reason == "not_designated"
    # Office hours in the policy do not matter: the staff file says nothing about hours.
    policy = Policy(version=1, issued_at=datetime.now(timezone.utc), site=SITE, station="cabinet-2",
                    badges=badges, hours=Hours())
    sunday_night = datetime(2025, 4, 6, 3, 0, tzinfo=timezone(timedelta(hours=9)))
    assert policy.decide("012E4CD2A5B71F03", sunday_night).decision == "allow"
    assert policy.decide("01010312A1B2C3F7", sunday_night).reason == "not_designated"


# (case, file name, text, what the error must say)
BAD_STAFF = [
    ("unknown key", "staff.yaml",
     "people:\n  - id: a\n    name: A\n    badges: ['0123456789ABCDEF']\n    stations: ['*']\n    role: x\n",
     ["line 6", "people.0.role", "unknown key"]),
    ("badge read as a number", "staff.yaml",
     "people:\n  - id: a\n    name: A\n    badges: [1234567890123456]\n    stations: ['*']\n",
     ["line 4", "people.0.badges.0", "in quotes"]),
    ("a length no card has", "staff.yaml",
     "people:\n  - id: a\n    name: A\n    badges: ['0123-4567-89AB']\n    stations: ['*']\n",
     ["line 4", "people.0.badges.0", "'0123-4567-89AB' has 12 hex digits (6 bytes): no card has that",
      "8, 14, 16 or 20"]),
    ("odd length", "staff.yaml",
     "people:\n  - id: a\n    name: A\n    badges:\n      - '0123456789ABCDEF'\n      - '012E4CD2A5B71F0'\n"
     "    stations: ['*']\n",
     ["line 6", "people.0.badges.1", "15 hex digits, not whole bytes"]),
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
     ["line 3", "badges", "'X' is not a hexadecimal digit"]),
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


@pytest.mark.parametrize("name, text", [
    ("staff.yaml", "people:\n  - id: a\n    name: A\n"
                   "    badges: ['01:2e:4c:d2:a5:b7:1f:03', '０４－Ａ２－２Ｂ－１Ａ', '04 5a 2b 1a 6c 3d 80']\n"
                   "    stations: ['*']\n"),
    ("staff.csv", "person,name,badges,stations\na,A,01-2E-4C-D2-A5-B7-1F-03;04:a2:2b:1a 045A2B1A6C3D80,*\n"),
])
def test_staff_file_badges_are_written_as_people_copy_them(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    [entry] = load_staff(path)
    assert entry.badges == ["012E4CD2A5B71F03", "04A22B1A", "045A2B1A6C3D80"]


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
        self.raw: dict[str, list[bytes]] = {}
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
            self.raw.setdefault(msg.topic, []).append(msg.payload)
            self.got.setdefault(msg.topic, []).append(
                (msg.retain, SignedPolicy.model_validate_json(msg.payload).policy))

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


# --- signing, pluggable compile, recompile requests, midnight ---------------------------------


def test_published_policies_are_signed_with_the_hubs_key(tmp_path, broker, prefix, start_hub):
    staff = tmp_path / "hub" / "staff.yaml"
    staff.parent.mkdir(parents=True)
    staff.write_text(STAFF_YAML)
    hub = start_hub(staff_file="staff.yaml", stations=[{"id": "cabinet-1", "site": SITE, "kind": "cabinet"}])
    key_file = tmp_path / "hub" / "data" / "policy-signing.key"  # the default: in data_dir
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = signing.public_key_b64(signing.load_private_key(key_file))
    assert hub.policies.public_key() == public
    watcher = PolicyWatcher(broker, prefix)
    try:
        policy_topic = f"{prefix}/{SITE}/cabinet-1/policy"
        wait_for(lambda: watcher.raw.get(policy_topic), timeout=8, what="the retained policy")
        got = signing.verify(watcher.raw[policy_topic][-1], public)
        assert got == stored_policies(hub.engine)["cabinet-1"]
        assert got.time_zone == "Asia/Tokyo"  # the site's zone (the hub's by default)
    finally:
        watcher.close()


class Collector:
    """A publish callback that keeps what was published, by topic."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent: dict[str, list[bytes]] = {}

    def __call__(self, topic_name: str, payload: bytes) -> None:
        with self.lock:
            self.sent.setdefault(topic_name, []).append(payload)

    def latest(self, topic_name: str, key) -> Policy | None:
        with self.lock:
            items = self.sent.get(topic_name)
            return signing.verify(items[-1], signing.public_key_b64(key)) if items else None

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.sent.values())


ENTRY = {"person": "S001", "decision": "allow", "reason": "designated_holder"}


def make_publisher(engine, compile, key=None, staff=None, **kw):
    collector = Collector()
    key = key or signing.generate_private_key()
    pub = PolicyPublisher(engine, staff, prefix="p", configured={"cabinet-1": SITE}, publish=collector,
                          signing_key=key, compile=compile, **kw)
    return pub, collector, key


def test_a_pluggable_compile_is_the_source_and_recompile_requests_are_coalesced(engine):
    calls = []
    state = {"badges": {"0123456789ABCDEF": ENTRY}}

    def compile(now):
        calls.append(now)
        time.sleep(0.05)  # a compile takes a moment
        return {"cabinet-1": {"site": SITE, "badges": dict(state["badges"]),
                              "hours": {"days": ["mon"], "start": "09:00", "end": "17:00"},
                              "holidays": [date(2025, 5, 5)]}}

    pub, sent, key = make_publisher(engine, compile, poll_s=5.0, min_interval_s=0.3)
    assert pub.refresh() == {"cabinet-1"}
    pub.start()
    try:
        pub.request_publish()
        topic_name = f"p/{SITE}/cabinet-1/policy"
        first = wait_for(lambda: sent.latest(topic_name, key), timeout=5, what="first publication")
        assert first.hours == Hours(days=["mon"], start="09:00", end="17:00")
        assert first.holidays == [date(2025, 5, 5)] and first.time_zone == "UTC"  # the default tz
        n = len(calls)
        state["badges"] = {"0123456789ABCDEF": {**ENTRY, "decision": "deny", "reason": "revoked"}}
        # A burst of registry changes from several threads: far fewer compiles than requests.
        threads = [threading.Thread(target=lambda: [pub.request_recompile() for _ in range(50)])
                   for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        newer = wait_for(lambda: (p := sent.latest(topic_name, key)) and p.version > first.version and p,
                         timeout=5, what="the recompiled policy")
        assert newer.badges["0123456789ABCDEF"].reason == "revoked"
        time.sleep(0.8)
        assert 1 <= len(calls) - n <= 3
        # Nothing changed: a request compiles, finds the same content, publishes nothing new.
        before, m = sent.count(), len(calls)
        pub.request_recompile()
        wait_for(lambda: len(calls) > m, timeout=3, what="another compile")
        time.sleep(0.3)
        assert sent.count() == before
        assert stored_policies(engine)["cabinet-1"].version == newer.version
    finally:
        pub.stop()


def test_a_failing_compile_keeps_the_published_policy_and_is_retried(engine, monkeypatch, caplog):
    monkeypatch.setattr(policy_module, "RETRY_S", 0.2)
    state = {"fail": False, "reason": "allowed"}

    def compile(now):
        if state["fail"]:
            raise RuntimeError("registry locked")
        return {"cabinet-1": (SITE, {"0123456789ABCDEF": PolicyEntry(**{**ENTRY, "reason": state["reason"]})})}

    pub, sent, key = make_publisher(engine, compile, poll_s=0.1, min_interval_s=0.05)
    pub.refresh()
    version = stored_policies(engine)["cabinet-1"].version
    pub.start()
    try:
        state["fail"] = True
        pub.request_recompile()
        wait_for(lambda: "registry locked" in caplog.text, timeout=5, what="the failure logged")
        assert stored_policies(engine)["cabinet-1"].version == version
        state.update(fail=False, reason="stand_in")
        wait_for(lambda: stored_policies(engine)["cabinet-1"].badges["0123456789ABCDEF"].reason == "stand_in",
                 timeout=5, what="retried without a new request")
    finally:
        pub.stop()


def test_at_local_midnight_the_policy_is_compiled_again_and_republished(engine, monkeypatch):
    tokyo = ZoneInfo("Asia/Tokyo")
    clock = {"now": datetime(2025, 4, 1, 23, 59, 58, tzinfo=tokyo)}
    monkeypatch.setattr(policy_module, "now_utc", lambda: clock["now"].astimezone(timezone.utc))
    dates = []

    def compile(now):
        day = now.astimezone(tokyo).date()
        dates.append(day)
        # Training valid through 1 April: from 2 April the compile says "untrained".
        entry = ENTRY if day <= date(2025, 4, 1) else {**ENTRY, "decision": "deny", "reason": "training_expired"}
        return {"cabinet-1": {"site": SITE, "badges": {"0123456789ABCDEF": entry}}}

    pub, sent, key = make_publisher(engine, compile, poll_s=0.05, site_zone=lambda _s: tokyo)
    pub.refresh(clock["now"])
    pub.start()
    try:
        topic_name = f"p/{SITE}/cabinet-1/policy"
        time.sleep(0.3)
        assert dates == [date(2025, 4, 1)] and sent.count() == 0  # nothing due yet
        clock["now"] = datetime(2025, 4, 2, 0, 0, 1, tzinfo=tokyo)
        got = wait_for(lambda: sent.latest(topic_name, key), timeout=5, what="the midnight publication")
        assert got.badges["0123456789ABCDEF"].reason == "training_expired"
        assert got.time_zone == "Asia/Tokyo" and date(2025, 4, 2) in dates
    finally:
        pub.stop()


def test_next_midnight_is_local_to_the_zone():
    tokyo = ZoneInfo("Asia/Tokyo")
    now = datetime(2025, 4, 1, 14, 59, tzinfo=timezone.utc)  # 23:59 in Tokyo
    assert next_midnight(now, tokyo) == datetime(2025, 4, 2, 0, 0, tzinfo=tokyo)
    assert next_midnight(now, timezone.utc) == datetime(2025, 4, 2, 0, 0, tzinfo=timezone.utc)


def test_stored_policies_are_signed_again_under_a_new_key_keeping_their_version(engine):
    compile = lambda now: {"cabinet-1": (SITE, {"0123456789ABCDEF": PolicyEntry(**ENTRY)})}  # noqa: E731
    old, _sent, old_key = make_publisher(engine, compile)
    old.refresh()
    version = stored_policies(engine)["cabinet-1"].version
    new, sent, new_key = make_publisher(engine, compile)
    assert new.refresh() == set()  # same content: no new version
    assert new.publish() == 1
    got = sent.latest(f"p/{SITE}/cabinet-1/policy", new_key)
    assert got.version == version
    with pytest.raises(signing.PolicyRejected):
        signing.verify(sent.sent[f"p/{SITE}/cabinet-1/policy"][-1], signing.public_key_b64(old_key))


def test_a_policy_stored_before_signing_is_signed_when_published(tmp_path, engine):
    path = tmp_path / "staff.yaml"
    path.write_text(STAFF_YAML)
    store_policies(engine, compile_policies(load_staff(path), TARGETS))  # no key: bare JSON stored
    pub, sent, key = make_publisher(engine, None, staff=path)
    assert pub.publish() == 2
    got = sent.latest(f"p/{SITE}/cabinet-1/policy", key)
    assert got == stored_policies(engine)["cabinet-1"]


def test_policy_key_command_prints_the_public_key_for_station_files(tmp_path, capsys):
    from kagiban.cli import main

    (tmp_path / "hub.yaml").write_text("data_dir: ./data\n")
    assert main(["hub", "policy-key", "--config", str(tmp_path / "hub.yaml")]) == 0
    out = capsys.readouterr().out
    key = signing.load_private_key(tmp_path / "data" / "policy-signing.key")
    assert f'public_key: "{signing.public_key_b64(key)}"' in out and out.startswith("policy:\n")
    # Pasted into a unit file, it loads.
    import yaml

    assert yaml.safe_load(out)["policy"]["public_key"] == signing.public_key_b64(key)
    assert main(["hub", "policy-key", "--config", str(tmp_path / "hub.yaml")]) == 0
    assert capsys.readouterr().out == out  # the same key the next time


def test_signing_key_file_may_use_the_credentials_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    (tmp_path / "hub.yaml").write_text(
        "data_dir: ./data\npolicy: {signing_key_file: '${CREDENTIALS_DIRECTORY}/policy-key'}\n")
    assert load(tmp_path / "hub.yaml").policy_key_path() == tmp_path / "creds" / "policy-key"
    (tmp_path / "hub2.yaml").write_text("data_dir: ./data\n")
    assert load(tmp_path / "hub2.yaml").policy_key_path() == tmp_path / "data" / "policy-signing.key"


def test_an_unusable_signing_key_file_stops_the_hub(tmp_path, broker, prefix):
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "bad.key").write_text("not a key\n")
    hub = Hub(load(write_hub_config(folder, broker, prefix, policy={"signing_key_file": "bad.key"})))
    try:
        with pytest.raises(ConfigError, match="policy.signing_key_file"):
            hub.start()
    finally:
        hub.stop()


def test_policies_expire_and_are_issued_again_at_half_their_validity(tmp_path, engine):
    path = tmp_path / "staff.yaml"
    path.write_text(STAFF_YAML)
    week = timedelta(days=7)
    t0 = datetime(2026, 12, 1, tzinfo=timezone.utc)

    def store(now):
        return store_policies(engine, compile_policies(load_staff(path), TARGETS), now=now, validity=week)

    assert store(t0) == {"cabinet-1", "cabinet-2"}
    first = stored_policies(engine)["cabinet-1"]
    assert first.expires_at == t0 + week
    assert store(t0 + timedelta(days=3)) == set()  # unchanged, and not yet half way
    assert store(t0 + timedelta(days=3, hours=12)) == {"cabinet-1", "cabinet-2"}
    again = stored_policies(engine)["cabinet-1"]
    assert again.badges == first.badges and again.version > first.version
    assert again.expires_at == t0 + timedelta(days=3, hours=12) + week


def test_a_stored_version_beyond_the_clock_is_not_continued(tmp_path, engine, caplog):
    path = tmp_path / "staff.yaml"
    path.write_text(STAFF_YAML)
    t0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
    store_policies(engine, compile_policies(load_staff(path), TARGETS), now=t0)
    from sqlalchemy import update

    from hub.store.schema import policies

    with engine.begin() as conn:  # a store that once took a version far ahead (SQLite's largest)
        conn.execute(update(policies).values(version=2**63 - 1, content_sha256="x"))
    store_policies(engine, compile_policies(load_staff(path), TARGETS), now=t0 + timedelta(minutes=1))
    assert stored_policies(engine)["cabinet-1"].version == int((t0 + timedelta(minutes=1)).timestamp() * 1000)
    assert "beyond this clock" in caplog.text


def test_key_changes_and_resets_are_published_from_the_control_folder(tmp_path, engine):
    from hub.registry.policy_control import issue_key_changes, issue_reset, rotate_key_file

    compile = lambda now: {"cabinet-1": (SITE, {"0123456789ABCDEF": PolicyEntry(**ENTRY)})}  # noqa: E731
    key_path = tmp_path / "policy.key"
    key_path.write_bytes(signing.private_key_pem(signing.generate_private_key()))
    old, new, kept = rotate_key_file(key_path)
    assert kept.exists() and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    folder = tmp_path / "policy-control"
    now = datetime.now(timezone.utc)
    issue_key_changes(folder, old, new, {"cabinet-1": SITE}, now)
    once = []
    # A hub still running with the old key does not send the key change.
    stale, sent_stale, _ = make_publisher(engine, compile, key=old, control_dir=folder,
                                          publish_once=lambda t, p: once.append((t, p)))
    stale.refresh()
    stale.publish()
    assert f"p/{SITE}/cabinet-1/policy-control" not in sent_stale.sent
    pub, sent, _ = make_publisher(engine, compile, key=new, control_dir=folder,
                                  publish_once=lambda t, p: once.append((t, p)))
    pub.publish()
    [change] = sent.sent[f"p/{SITE}/cabinet-1/policy-control"]
    msg = signing.verify_control(change, old.public_key())  # signed with the old key
    assert msg.new_key == signing.public_key_b64(new)
    assert pub.publish_controls() == 0  # sent already; again only at the next connect
    issue_reset(folder, new, SITE, "cabinet-1", now)
    assert pub.publish_controls() == 1 and len(once) == 1
    assert signing.verify_control(once[0][1], new.public_key()).type == "policy_reset"
    assert pub.publish_controls() == 0  # a reset goes out once
    assert [p.name.endswith(".sent") for p in folder.glob("reset-*")] == [True]


def test_rotate_and_reset_commands(tmp_path, capsys):
    from kagiban.cli import main

    (tmp_path / "hub.yaml").write_text("data_dir: ./data\nstations:\n  - {id: cabinet-1, site: ward-a, kind: cabinet}\n")
    config = ["--config", str(tmp_path / "hub.yaml")]
    assert main(["hub", "policy-key", *config]) == 0
    old = signing.load_private_key(tmp_path / "data" / "policy-signing.key")
    capsys.readouterr()
    assert main(["hub", "policy-key", "rotate", *config]) == 0
    out = capsys.readouterr().out
    new = signing.load_private_key(tmp_path / "data" / "policy-signing.key")
    assert signing.key_id(new) != signing.key_id(old) and f'"{signing.public_key_b64(new)}"' in out
    [change] = (tmp_path / "data" / "policy-control").glob("key-change-cabinet-1.json")
    body = change.read_bytes().split(b"\n", 1)[1]
    assert signing.verify_control(body, old.public_key()).new_key == signing.public_key_b64(new)
    assert main(["hub", "policy-reset", "--station", "cabinet-1", *config]) == 0
    [reset] = (tmp_path / "data" / "policy-control").glob("reset-cabinet-1-*.json")
    assert signing.verify_control(reset.read_bytes().split(b"\n", 1)[1], new.public_key()).station == "cabinet-1"
    assert main(["hub", "policy-reset", "--station", "nowhere", *config]) == 1
