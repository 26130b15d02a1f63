"""What keeps a station's memory small and flat (issue 17: under 40 MiB; bench/footprint.py
measures it): the agent loads Pillow only at its first snapshot and then only its core, a
station never loads cryptography's key-file code, ctypes (a simulated unit's clock never asks
the kernel) or the printing package of another kind, it builds only the message models it
uses, it runs only the threads its unit needs, and what it keeps per tap, per acknowledgement
or in its outbox's page cache is bounded."""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from device import unit_file
from device.agent import Agent
from kagiban import protocol
from tests.support.stack import write_unit_config

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
from pydantic import BaseModel
from device import unit_file
from device.agent import Agent

agent = Agent(unit_file.load(sys.argv[1])).start()
agent.call(lambda a: None)
agent.reader.tap("0123456789ABCDEF")
agent.call(lambda a: None)
agent.stop()

def models(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from models(sub)

built = sorted({f"{m.__module__}.{m.__qualname__}" for m in models(BaseModel)
                if m.__pydantic_complete__ and m.__module__.startswith(("kagiban", "device"))})
print(json.dumps(built))
"""


def test_a_started_agent_has_built_only_the_message_models_it_used(tmp_path):
    unit = write_unit_config(tmp_path, 1883, "t")  # never connected: what it builds on its own
    done = subprocess.run([sys.executable, "-c", _STARTED, str(unit)], capture_output=True, text=True,
                          timeout=60, cwd=_ROOT)
    assert done.returncode == 0, done.stderr
    built = set(json.loads(done.stdout.strip().splitlines()[-1]))
    # What a cabinet without a policy yet uses from its start to a tap: its unit file, the
    # events it records (the tap refused), the heartbeat's parts.
    assert {"device.stations.cabinet.CabinetUnit", "kagiban.protocol.Event", "kagiban.protocol.Heartbeat",
            "kagiban.events.StationStarted", "kagiban.events.BadgeDenied"} <= built
    # The hub's messages, another kind's unit and its events were never built.
    assert not built & {"kagiban.protocol.Alert", "kagiban.protocol.PolicyKeyChange",
                        "kagiban.protocol.PolicyReset", "device.stations.printer.PrinterUnit",
                        "kagiban.events.ShredStarted", "kagiban.events.PrintReleased",
                        "kagiban.events.BadgeGranted"}
    assert len(built) < 30, sorted(built)


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


def test_acks_naming_new_snapshots_each_time_leave_nothing_behind():
    # pydantic-core caches JSON strings process-wide unless told not to: every snapshot id an
    # ack named would stay (up to 16,384 of them).
    def ack(i: int) -> bytes:
        return json.dumps({"v": 1, "station": "cabinet-1", "seqs": [[i, i]],
                           "snapshots": [str(uuid.uuid4())]}).encode()

    for i in range(1, 101):  # warm up: the validator's own first-use allocations
        protocol.parse_hub_message(protocol.Ack, ack(i))
    payloads = [ack(i) for i in range(101, 3101)]
    gc.collect()
    before = sys.getallocatedblocks()
    for p in payloads:
        protocol.parse_hub_message(protocol.Ack, p)
    gc.collect()
    assert sys.getallocatedblocks() - before < 300
