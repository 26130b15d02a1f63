"""A unit's YAML: the examples load, and every mistake names the file, the key and the reason."""
import json
import subprocess
import sys
from pathlib import Path

import msgspec
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


# Each mistake a person can make in a unit file, as the agent prints it at start: the file, then
# one line per problem, the key's whole path and the reason (read with msgspec: kagiban.configfile).
@pytest.mark.parametrize(
    "body,lines",
    [
        ("site: s\nstation: {id: c1, kind: cabinet}\npins: {door: 17}\n" + POLICY,
         ["pins.lock: missing value"]),
        ("site: s\nstation: {id: c1, kind: cabinet}\npins: {door: 17, lock: 27}\ntimings: {unlock_s: soon}\n" + POLICY,
         ["timings.unlock_s: should be a number"]),
        ("site: s\nstation: {id: c1, kind: cabinet}\npins: {door: 17, lock: 27}\nreader: {typ: standin}\n" + POLICY,
         ["reader.typ: unknown key"]),
        ("site: s\nstation: {id: c1, kind: cabinet}\npins: {door: 54, lock: 27}\n" + POLICY,
         ["pins.door: should be less than or equal to 53"]),
        ("site: s\nstation: {id: c1, kind: cabinet}\npins: {door: 17, lock: 27, purpose_buttons: {register: 60}}\n"
         + POLICY, ["pins.purpose_buttons.register: should be less than or equal to 53"]),
        ("site: s\nstation: {id: c1, kind: cabinet}\npins: {door: 17, lock: 27}\n"
         "broker: {tls: {ca_file: ca.pem, cert_file: unit.pem}}\n" + POLICY,
         ["broker.tls: cert_file and key_file go together"]),
        ("site: s\nstation: {id: c1, kind: cabinet}\npins: {door: 17, lock: 27, purpose_buttons: {a: 5, b: 5}}\n"
         + POLICY, ["pins.purpose_buttons: two purpose buttons share a pin"]),
        ("site: s\nstation: {id: c1, kind: cabinet}\npins: {door: 17, lock: 27}\n_config_dir: /etc\n" + POLICY,
         ["_config_dir: unknown key"]),
    ],
    ids=["missing key", "wrong type", "unknown key", "pin above 53", "purpose pin above 53",
         "certificate without its key", "two purposes on one pin", "a loader's own field"],
)
def test_each_mistake_is_one_line_naming_the_file_and_the_key(tmp_path, body, lines):
    f = write(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        unit_file.load(f)
    assert str(err.value).splitlines() == [f"{f}: {len(lines)} problem(s)", *(f"  {line}" for line in lines)]


def test_every_mistake_of_a_file_is_reported_at_once(tmp_path):
    f = write(tmp_path, "site: s\nstation: {id: c1, kind: shredder}\npins: {power_relay: 70, bin_sensr: 6}\n"
                        "camera: {width: 100, type: picamera2, fault: hang}\nbroker: {port: 0}\n")
    with pytest.raises(ConfigError) as err:
        unit_file.load(f)
    assert str(err.value).splitlines()[1:] == [
        "  pins.power_relay: should be less than or equal to 53",
        "  pins.bin_sensr: unknown key",
        "  camera.width: should be greater than or equal to 160",
        "  broker.port: should be greater than or equal to 1",
        "  policy: missing value",
    ]


def test_values_a_person_may_quote_are_read_as_before(tmp_path):
    # pydantic read a quoted number as the number; msgspec, told strict=False, does the same.
    cfg = unit_file.load(write(tmp_path, "site: s\nstation: {id: c1, kind: cabinet}\n"
                                         "pins: {door: '17', lock: 27, lock_active_high: 'false'}\n"
                                         "timings: {unlock_s: '7.5'}\n" + POLICY))
    assert (cfg.pins.door, cfg.pins.lock_active_high, cfg.timings.unlock_s) == (17, False, 7.5)


def test_a_unit_file_reads_into_the_defaults_every_kind_relies_on(tmp_path):
    cfg = unit_file.load(write(tmp_path, CABINET + POLICY))
    assert (cfg.timings.unlock_s, cfg.timings.held_open_s, cfg.timings.heartbeat_s, cfg.timings.send_window) == (
        5.0, 60.0, 30.0, 1000)
    assert (cfg.camera.type, cfg.camera.width, cfg.camera.height, cfg.reader.type, cfg.reader.repeat_window_s) == (
        "picamera2", 1280, 720, "nfcpy", 2.0)
    assert (cfg.broker.host, cfg.broker.port, cfg.broker.prefix, cfg.broker.tls) == ("127.0.0.1", 1883, "kagiban", None)
    assert (cfg.policy.public_key, cfg.policy.when_expired, cfg.time_zone) == (KEY, "flag", "Asia/Tokyo")
    assert cfg.storage.dir == Path("/var/lib/kagiban") and cfg.printer.holding_queue == "kagiban-hold"
    # Each unit gets its own sections: changing one unit's changes no other's.
    other = unit_file.load(write(tmp_path, CABINET + POLICY))
    cfg.timings.unlock_s = 9.0
    assert other.timings.unlock_s == 5.0


# Read a unit file's shared sections, the broker's and a scenario, as a started station does, and
# say which modules of pydantic (issue 17: ~18 MiB on a station) and of the station kinds are loaded.
_READ_WITHOUT_PYDANTIC = """
import json, sys
from device import config, simulate
from kagiban import broker, configfile

unit = configfile.load_config(sys.argv[1], config.DeviceConfig)
scenario = simulate.load_scenario(sys.argv[2])
print(json.dumps({"read": [unit.station.kind, unit.broker.port, len(scenario.steps)],
                  "pydantic": sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_core"))}))
"""


def test_the_unit_file_and_a_scenario_are_read_without_loading_pydantic(tmp_path):
    unit = write(tmp_path, CABINET + "broker: {port: 1884}\n" + POLICY)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("steps:\n  - tap: 0123456789ABCDEF\n  - wait: 1\n  - door: open\n")
    done = subprocess.run([sys.executable, "-c", _READ_WITHOUT_PYDANTIC, str(unit), str(scenario)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"read": ["cabinet", 1884, 3], "pydantic": []}


_ONE_KIND = """
import json, sys
from device import unit_file

cfg = unit_file.load(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("device.stations."))))
"""


def test_a_unit_file_is_read_as_structs_and_loads_no_other_kinds_code(tmp_path):
    cfg = unit_file.load(write(tmp_path, CABINET + POLICY))
    assert isinstance(cfg, CabinetUnit)
    sections = [cfg, cfg.station, cfg.pins, cfg.reader, cfg.camera, cfg.broker, cfg.timings, cfg.storage,
                cfg.printer, cfg.policy, cfg.signing]
    assert all(isinstance(s, msgspec.Struct) for s in sections)
    done = subprocess.run([sys.executable, "-c", _ONE_KIND, str(tmp_path / "unit.yaml")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "device.stations.cabinet" in loaded
    assert not loaded & {"device.stations.printer", "device.stations.shredder", "device.stations.door",
                         "device.stations.annunciator", "device.stations.rollcall"}
