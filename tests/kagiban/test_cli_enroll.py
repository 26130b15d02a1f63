"""Enrollment from the command line: the unit makes its key, the hub registers its public half,
and a rebuilt unit's new key replaces it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from kagiban.signing import key_id
from tests.support.stack import policy_public_key

ROOT = Path(__file__).resolve().parents[2]


def _kagiban(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kagiban.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def _files(tmp: Path) -> tuple[Path, Path]:
    unit = tmp / "unit.yaml"
    unit.write_text(yaml.safe_dump({
        "site": "ward-a", "station": {"id": "cabinet-1", "kind": "cabinet"}, "storage": {"dir": "./data"},
        "pins": {"door": 17, "lock": 27}, "policy": {"public_key": policy_public_key(tmp)}}))
    hub = tmp / "hub.yaml"
    hub.write_text(yaml.safe_dump({"data_dir": "hub-data", "web": {"port": 0}}))
    return unit, hub


def _add_line(done: subprocess.CompletedProcess, hub: Path) -> list[str]:
    """The `kagiban hub station-key add` line enroll printed, pointed at this hub's file."""
    words = next(line for line in done.stdout.splitlines() if "station-key add" in line).split()
    at = words.index("--config")
    return words[1:at + 1] + [str(hub)] + words[at + 2:]


def test_enroll_makes_a_private_key_only_the_unit_can_read_and_the_hub_registers_it(tmp_path):
    unit, hub = _files(tmp_path)
    done = _kagiban("device", "enroll", "--config", str(unit))
    assert done.returncode == 0, done.stderr
    key_file = tmp_path / "data" / "station.key"
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
    public = done.stdout.split("--public-key ")[1].split()[0]
    assert f"key id {key_id(public)}" in done.stdout
    added = _kagiban(*_add_line(done, hub))
    assert added.returncode == 0, added.stderr
    listed = _kagiban("hub", "station-key", "list", "--config", str(hub))
    assert listed.stdout.split("\t")[:3] == ["cabinet-1", key_id(public), public]
    assert "\tactive" in listed.stdout
    # Enrolling again changes nothing; adding a second key without --replace is refused.
    again = _kagiban("device", "enroll", "--config", str(unit))
    assert public in again.stdout
    rebuilt = _kagiban("device", "enroll", "--config", str(unit), "--replace")
    assert rebuilt.returncode == 0 and "--replace" in rebuilt.stdout
    new_public = rebuilt.stdout.split("--public-key ")[1].split()[0]
    assert new_public != public
    refused = _kagiban("hub", "station-key", "add", "--config", str(hub), "--station", "cabinet-1",
                       "--public-key", new_public)
    assert refused.returncode == 1 and "give --replace" in refused.stderr
    replaced = _kagiban(*_add_line(rebuilt, hub))
    assert replaced.returncode == 0, replaced.stderr
    listed = _kagiban("hub", "station-key", "list", "--config", str(hub)).stdout.splitlines()
    assert [line.split("\t")[1] for line in listed] == [key_id(public), key_id(new_public)]
    assert "\tretired " in listed[0] and "\tactive" in listed[1]
