"""What keeps a station's memory small and flat (issue 17: under 40 MiB; bench/footprint.py
measures it): the agent loads Pillow only at its first snapshot and then only its core, a
station never loads cryptography's key-file code, ctypes (a simulated unit's clock never asks
the kernel) or the printing package of another kind, it never loads pydantic (its unit file,
messages and events' data are msgspec types; ~18 MiB saved), it runs only the threads its unit needs, what it keeps per tap, per acknowledgement or in
its outbox's page cache is bounded, and it signs and checks signatures with PyNaCl (libsodium),
never loading cryptography (~8 MiB resident: its own copy of OpenSSL)."""
from __future__ import annotations

import base64
import gc
import json
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device import unit_file, wire
from device.agent import Agent
from kagiban import protocol
from kagiban.event_signing import create_station_key, split_event
from tests.support.stack import HOLDER, UNKNOWN, sign_policy, station_key_path, write_unit_config

_ROOT = Path(__file__).resolve().parents[2]  # the repository, so `device` imports

_CHECK = """
import json, sys
from device import unit_file
from device.agent import Agent

HEAVY = ("PIL", "PIL.ImageDraw", "PIL.ImageFont", "cryptography.hazmat.primitives.serialization",
         "device.printing", "ctypes")
agent = Agent(unit_file.load(sys.argv[1]))
made = [m for m in HEAVY if m in sys.modules]
agent.camera.capture("badge.denied")
shot = [m for m in HEAVY if m in sys.modules]
print(json.dumps({"made": made, "after_snapshot": shot}))
"""

_STARTED = """
import json, sys
from device import unit_file
from device.agent import Agent

agent = Agent(unit_file.load(sys.argv[1])).start()
agent.call(lambda a: None)
agent.reader.tap("0123456789ABCDEF")
agent.call(lambda a: None)
kinds = sorted({json.loads(p)["kind"] for _, p in agent.call(lambda a: a.outbox.pending())})
agent.stop()
HUB_SIDE = ("pydantic", "pydantic_core", "kagiban.protocol", "kagiban.events")
print(json.dumps({"kinds": kinds, "loaded": sorted(m for m in sys.modules if m.startswith(HUB_SIDE))}))
"""


_SIGNED = """
import json, sys, time
from device import unit_file
from device.agent import Agent

imported = "cryptography" in sys.modules
agent = Agent(unit_file.load(sys.argv[1])).start()
agent.call(lambda a: None)
agent.reader.tap("%s")  # allowed
agent.reader.tap("%s")  # unknown: refused, with a photo
for _ in range(200):  # the camera's snapshot of the refusal (bounded: 10 s)
    if agent.call(lambda a: a.outbox.snapshot_depth()) > 0:
        break
    time.sleep(0.05)
seen = {"cryptography at import": imported,
        "policy version": agent.call(lambda a: a.policy.version),
        "signed by": agent.signer.key_id if agent.signer else None,
        "events": [p.decode() for _, p in agent.call(lambda a: a.outbox.pending())],
        "snapshots": agent.call(lambda a: a.outbox.snapshot_depth()),
        "cryptography": sorted(m for m in sys.modules if m.split(".")[0] == "cryptography"),
        "pydantic": sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_core"))}
agent.stop()
print(json.dumps(seen))
""" % (HOLDER, UNKNOWN)


def test_an_enrolled_cabinet_signs_checks_its_policy_and_never_loads_cryptography(tmp_path):
    unit = write_unit_config(tmp_path, 1883, "t")  # never connected: its cached policy and outbox
    key = create_station_key(station_key_path(unit))
    policy = protocol.Policy(version=7, issued_at=datetime.now(timezone.utc), site="ward-a", station="cabinet-1",
                             badges={HOLDER: protocol.PolicyEntry(decision="allow", after_hours="allow")})
    (tmp_path / "cabinet-1-data").mkdir(exist_ok=True)
    (tmp_path / "cabinet-1-data" / "policy.json").write_bytes(sign_policy(tmp_path, policy))
    done = subprocess.run([sys.executable, "-c", _SIGNED, str(unit)], capture_output=True, text=True,
                          timeout=60, cwd=_ROOT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["policy version"] == 7  # the signed policy was checked and taken at start
    assert seen["signed by"] is not None and seen["snapshots"] == 1
    kinds = [json.loads(p)["kind"] for p in seen["events"]]
    assert "badge.granted" in kinds and "badge.denied" in kinds
    assert all(f',"key_id":"{seen["signed by"]}","sig":"' in p for p in seen["events"])
    assert seen["cryptography at import"] is False and seen["cryptography"] == []
    assert seen["pydantic"] == []  # its policy checked and read, events signed: all without pydantic
    # ... and what it signed checks with cryptography, as `kagiban verify` checked it before.
    public = Ed25519PublicKey.from_public_bytes(key.public_key().public_bytes_raw())
    for payload in seen["events"]:
        split = split_event(payload.encode())
        assert split is not None
        public.verify(base64.b64decode(split.signature), split.signed)


def test_a_started_cabinet_never_loads_pydantic_nor_the_hubs_models(tmp_path):
    unit = write_unit_config(tmp_path, 1883, "t")  # never connected: what it loads on its own
    done = subprocess.run([sys.executable, "-c", _STARTED, str(unit)], capture_output=True, text=True,
                          timeout=60, cwd=_ROOT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # From its unit file to a refused tap and its heartbeat: the unit file is read with msgspec
    # (kagiban.configfile), the messages are device.wire's and the events' data
    # device.event_data's. pydantic (~18 MiB with its first model) stays the hub's.
    assert seen["kinds"] == ["badge.denied", "station.started"]
    assert seen["loaded"] == []

def test_an_agent_loads_pillow_at_its_first_snapshot_and_only_its_core(tmp_path):
    unit = write_unit_config(tmp_path, 1883, "t")  # the agent is made, never connected
    done = subprocess.run([sys.executable, "-c", _CHECK, str(unit)], capture_output=True, text=True,
                          timeout=60, cwd=_ROOT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"made": [], "after_snapshot": ["PIL"]}


def _without_camera(unit: Path) -> Path:
    cfg = yaml.safe_load(unit.read_text())
    cfg["camera"] = {"type": "none"}
    unit.write_text(yaml.safe_dump(cfg))
    return unit


def test_a_cabinet_runs_no_print_worker_and_no_camera_worker_without_a_camera(broker, prefix, tmp_path):
    with_camera = Agent(unit_file.load(write_unit_config(tmp_path / "a", broker.port, prefix))).start()
    without = Agent(unit_file.load(_without_camera(
        write_unit_config(tmp_path / "b", broker.port, prefix, station="cabinet-2")))).start()
    try:
        assert [t.name for t in with_camera._threads] == ["agent-cabinet-1", "camera"]
        assert [t.name for t in without._threads] == ["agent-cabinet-2"]
    finally:
        with_camera.stop()
        without.stop()


@pytest.mark.parametrize("read", [
    pytest.param(lambda p: wire.parse_hub_message(wire.Ack, p), id="the station's reader (device.wire)"),
    # pydantic-core caches JSON strings process-wide unless told not to: every snapshot id an
    # ack named would stay (up to 16,384 of them).
    pytest.param(lambda p: protocol.parse_hub_message(protocol.Ack, p), id="the hub's reader (kagiban.protocol)"),
])
def test_acks_naming_new_snapshots_each_time_leave_nothing_behind(read):
    # A station reads an ack every few events for months: what it reads must not stay.
    def ack(i: int) -> bytes:
        return json.dumps({"v": 1, "station": "cabinet-1", "seqs": [[i, i]],
                           "snapshots": [str(uuid.uuid4())]}).encode()

    for i in range(1, 101):  # warm up: the reader's own first-use allocations
        read(ack(i))
    payloads = [ack(i) for i in range(101, 3101)]
    gc.collect()
    before = sys.getallocatedblocks()
    for p in payloads:
        read(p)
    gc.collect()
    assert sys.getallocatedblocks() - before < 300
