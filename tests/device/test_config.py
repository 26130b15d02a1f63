"""A unit's YAML: the examples load, and every mistake names the file, the key and the reason."""
from pathlib import Path

import pytest
import yaml

from device import unit_file
from device.stations.cabinet import CabinetUnit
from device.stations.door import DoorUnit
from device.stations.printer import PrinterUnit
from device.stations.shredder import ShredderUnit
from kagiban.configfile import ConfigError

ROOT = Path(__file__).resolve().parents[2]
# Any valid key will do for loading: base64 of 32 raw Ed25519 public-key bytes.
KEY = "VXGbZ1gWydvXB5k2i7wTpHIpEDR0Le9x4emQ+q0VYXw="
POLICY = f"policy: {{public_key: '{KEY}'}}\n"
# A cabinet with the pins it cannot work without.
CABINET = "site: s\nstation: {id: c1, kind: cabinet}\npins: {door: 17, lock: 27}\n"


@pytest.mark.parametrize("name", ["cabinet.example.yaml", "cabinet.sim.yaml"])
def test_example_unit_files_load(name):
    cfg = unit_file.load(ROOT / "config" / name)
    assert cfg.station.kind == "cabinet"
    assert cfg.broker.password_env is None or cfg.broker.password_file is None


def test_a_camera_capture_has_a_time_limit_of_a_few_seconds_by_default(tmp_path):
    f = tmp_path / "unit.yaml"
    f.write_text(CABINET + POLICY)
    camera = unit_file.load(f).camera
    assert 1 <= camera.capture_timeout_s <= 10 and camera.fault is None


def test_relative_storage_dir_is_beside_the_config_file(tmp_path):
    f = tmp_path / "unit.yaml"
    f.write_text(CABINET + "storage: {dir: ./data}\n" + POLICY)
    assert unit_file.load(f).data_dir() == tmp_path / "data"


def write(tmp_path, text):
    f = tmp_path / "unit.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text,key,reason",
    [
        ("site: s\nstation: {id: c1, kind: cabinet}\npins: {dor: 17}\n", "pins.dor", "unknown key"),
        ("site: s\nstation: {id: c1, kind: cabinet}\npins: {door: seventeen}\n", "pins.door", "integer"),
        ("site: s\nstation: {kind: cabinet}\n", "station.id", "missing value"),
        ("site: s\nstation: {id: c1, kind: toaster}\n", "station.kind", "cabinet"),
        ("site: s\nstation: {id: c1, kind: cabinet}\nbroker: {password: hunter2}\n", "broker.password", "unknown key"),
        ("site: 'a/b'\nstation: {id: c1, kind: cabinet}\n", "site", "pattern"),
        ("site: s\nstation: {id: c1, kind: cabinet}\ncamera: {capture_timeout_s: 0}\n",
         "camera.capture_timeout_s", "greater than 0"),
        ("site: s\nstation: {id: c1, kind: cabinet}\ncamera: {capture_timeout_s: 120}\n",
         "camera.capture_timeout_s", "less than or equal to 60"),
        ("site: s\nstation: {id: c1, kind: cabinet}\ncamera: {type: picamera2, fault: hang}\n",
         "camera", "fault is for a simulated camera only"),
        ("site: s\nstation: {id: c1, kind: cabinet}\ncamera: {type: standin, fault: smoke}\n",
         "camera.fault", "'missing', 'raise' or 'hang'"),
    ],
)
def test_mistakes_name_file_key_and_reason(tmp_path, text, key, reason):
    f = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        unit_file.load(f)
    msg = str(err.value)
    assert str(f) in msg and key in msg and reason in msg


@pytest.mark.parametrize(
    "text,key,reason",
    [
        ("site: s\nstation: {id: c1, kind: cabinet}\n", "policy", "missing value"),
        ("site: s\nstation: {id: c1, kind: cabinet}\npolicy: {}\n", "policy.public_key", "missing value"),
        ("site: s\nstation: {id: c1, kind: cabinet}\npolicy: {public_key: 'not base64!'}\n",
         "policy.public_key", "not an Ed25519 public key"),
        ("site: s\nstation: {id: c1, kind: cabinet}\npolicy: {public_key: 'AAAA'}\n",
         "policy.public_key", "32 bytes"),
        ("site: s\nstation: {id: c1, kind: cabinet}\n" + POLICY.replace("}", ", verify: false}"),
         "policy.verify", "unknown key"),
        ("site: s\nstation: {id: c1, kind: cabinet}\n" + POLICY.replace("}", ", when_expired: open}"),
         "policy.when_expired", "'flag' or 'deny'"),
        ("site: s\nstation: {id: c1, kind: cabinet}\n" + POLICY.replace("}", ", max_age_h: 0}"),
         "policy.max_age_h", "greater than 0"),
        ("site: s\nstation: {id: c1, kind: cabinet}\n" + POLICY.replace("}", ", future_slack_s: -1}"),
         "policy.future_slack_s", "greater than or equal to 0"),
    ],
)
def test_the_policy_key_is_required_and_checked(tmp_path, text, key, reason):
    f = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        unit_file.load(f)
    msg = str(err.value)
    assert str(f) in msg and key in msg and reason in msg


def test_not_yaml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        unit_file.load(write(tmp_path, "site: [unclosed\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        unit_file.load(tmp_path / "absent.yaml")


def test_cli_reports_config_error_and_exits_2(tmp_path, capsys):
    from kagiban.cli import main

    f = write(tmp_path, "site: s\nstation: {id: c1, kind: cabinet}\nextra: 1\n")
    assert main(["device", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert "extra" in err and "unknown key" in err and str(f) in err


def test_secret_comes_from_environment_or_file(tmp_path, monkeypatch):
    from kagiban.configfile import read_secret

    monkeypatch.setenv("KAGIBAN_TEST_PW", "s3cret")
    assert read_secret("KAGIBAN_TEST_PW", None, "pw") == "s3cret"
    (tmp_path / "pw").write_text("from-file\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_secret(None, "${CREDENTIALS_DIRECTORY}/pw", "pw") == "from-file"
    monkeypatch.delenv("KAGIBAN_TEST_PW")
    with pytest.raises(ConfigError, match="KAGIBAN_TEST_PW"):
        read_secret("KAGIBAN_TEST_PW", None, "pw")


def test_the_station_key_is_in_the_storage_folder_unless_the_file_names_another(tmp_path, monkeypatch):
    from device.unit_file import load

    body = {"site": "ward-a", "station": {"id": "cabinet-1", "kind": "cabinet"}, "storage": {"dir": "./data"},
            "pins": {"door": 17, "lock": 27}, "policy": {"public_key": "VXGbZ1gWydvXB5k2i7wTpHIpEDR0Le9x4emQ+q0VYXw="}}
    (tmp_path / "unit.yaml").write_text(yaml.safe_dump(body))
    assert load(tmp_path / "unit.yaml").station_key_path() == tmp_path / "data" / "station.key"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/kagiban-agent.service")
    body["signing"] = {"key_file": "${CREDENTIALS_DIRECTORY}/station-key"}
    (tmp_path / "unit.yaml").write_text(yaml.safe_dump(body))
    assert str(load(tmp_path / "unit.yaml").station_key_path()) == "/run/credentials/kagiban-agent.service/station-key"


@pytest.mark.parametrize("name,kind", [("cabinet.example.yaml", "cabinet"), ("cabinet.sim.yaml", "cabinet"),
                                       ("door.example.yaml", "door"), ("shredder.example.yaml", "shredder"),
                                       ("printer.example.yaml", "printer")])
def test_every_example_loads_as_its_kind(name, kind):
    cfg = unit_file.load(ROOT / "config" / name)
    assert cfg.station.kind == kind
    assert isinstance(cfg, {"cabinet": CabinetUnit, "door": DoorUnit,
                            "shredder": ShredderUnit, "printer": PrinterUnit}[kind])


@pytest.mark.parametrize(
    "kind,pins,missing",
    [
        ("shredder", "{stop_button: 5, bin_sensor: 6}", ["pins.power_relay"]),
        ("cabinet", "{door: 17}", ["pins.lock"]),
        ("cabinet", "{lock: 27, led_granted: 22}", ["pins.door"]),
        ("door", "{lock: 27}", ["pins.door"]),
    ],
)
def test_a_unit_without_a_pin_its_kind_needs_is_refused_naming_the_pin(tmp_path, kind, pins, missing):
    f = write(tmp_path, f"site: s\nstation: {{id: u1, kind: {kind}}}\npins: {pins}\n" + POLICY)
    with pytest.raises(ConfigError) as err:
        unit_file.load(f)
    msg = str(err.value)
    assert str(f) in msg
    assert [line.split(":")[0].strip() for line in msg.splitlines()[1:]] == missing
    assert all(f"{key}: missing value" in msg for key in missing)


def test_a_unit_file_with_no_pins_section_names_each_pin_its_kind_needs(tmp_path):
    f = write(tmp_path, "site: s\nstation: {id: c1, kind: cabinet}\n" + POLICY)
    with pytest.raises(ConfigError) as err:
        unit_file.load(f)
    assert "pins.door: missing value" in str(err.value) and "pins.lock: missing value" in str(err.value)


def test_a_printer_needs_no_pin_and_a_door_no_lock(tmp_path):
    printer = unit_file.load(write(tmp_path, "site: s\nstation: {id: p1, kind: printer}\n" + POLICY))
    assert printer.pins.tray is None
    door = unit_file.load(write(tmp_path, "site: s\nstation: {id: d1, kind: door}\npins: {door: 17}\n" + POLICY))
    assert door.pins.door == 17 and door.pins.lock is None


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Asia/Tokio", "", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused_naming_the_key(tmp_path, zone):
    f = write(tmp_path, CABINET + f"time_zone: '{zone}'\n" + POLICY)
    with pytest.raises(ConfigError) as err:
        unit_file.load(f)
    msg = str(err.value)
    assert str(f) in msg and "time_zone: " in msg and "unknown time zone" in msg


def test_a_known_time_zone_is_kept(tmp_path):
    assert unit_file.load(write(tmp_path, CABINET + "time_zone: Europe/Berlin\n" + POLICY)).time_zone == "Europe/Berlin"
