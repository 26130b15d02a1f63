"""``kagiban device`` on a machine that lacks a hardware library its unit file names: one line
naming the YAML key and the fix, exit 2 (systemd's RestartPreventExitStatus), a traceback only
with ``--debug``. Run as a new user would, through the real command in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "cabinet.example.yaml"


def _machine_has(module: str) -> bool:
    try:
        __import__(module)
    except Exception:
        return False
    return True


def _device(config: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kagiban.cli", "device", *extra, "--config", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def _edited(tmp_path: Path, **sections) -> Path:
    cfg = yaml.safe_load(EXAMPLE.read_text())
    for key, value in sections.items():
        cfg[key].update(value)
    cfg["storage"]["dir"] = str(tmp_path / "data")
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.skipif(_machine_has("lgpio"), reason="lgpio is installed here")
def test_the_unedited_cabinet_example_without_lgpio_says_which_key_and_exits_2():
    done = _device(EXAMPLE)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "pins.factory" in lines[0] and "lgpio" in lines[0] and "pins.factory: mock" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.skipif(_machine_has("picamera2"), reason="picamera2 imports here")
def test_picamera2_that_cannot_load_names_the_camera_key(tmp_path):
    done = _device(_edited(tmp_path, pins={"factory": "mock"}, reader={"type": "standin"}))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "camera.type" in line and "python3-picamera2" in line and "standin or none" in line


def test_nfcpy_that_cannot_load_names_the_reader_key(tmp_path):
    # An nfc package that fails to import, first on the path: as nfcpy without its USB binding.
    shadow = tmp_path / "shadow" / "nfc"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'usb1'\")\n")
    config = _edited(tmp_path, pins={"factory": "mock"}, camera={"type": "standin"})
    done = _device(config, env={"PYTHONPATH": str(shadow.parent)})
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "reader.type" in line and "usb1" in line and "pip install nfcpy" in line


@pytest.mark.skipif(_machine_has("lgpio"), reason="lgpio is installed here")
def test_debug_shows_the_traceback_too():
    done = _device(EXAMPLE, "--debug")
    assert done.returncode == 2
    assert "Traceback" in done.stderr and "No module named 'lgpio'" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("kagiban device:")
