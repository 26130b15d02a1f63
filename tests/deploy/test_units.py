"""The systemd units, the broker drop-in, the udev rules and the modprobe file, read the way an
admin reviews them: what runs, as whom, after what, restarted how, with which credential and
which hardening; and, where systemd-analyze exists, verified by systemd itself."""
from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.deployment import REPO

SYSTEMD = REPO / "systemd"
AGENT = SYSTEMD / "kagiban-agent.service"
HUB = SYSTEMD / "kagiban-hub.service"
DROPIN = SYSTEMD / "mosquitto-kagiban.conf"
CRL_SERVICE = SYSTEMD / "kagiban-crl.service"
CRL_TIMER = SYSTEMD / "kagiban-crl.timer"
INSTALL_DOC = REPO / "docs" / "install-pi.md"
UDEV = REPO / "config" / "udev" / "60-kagiban-nfc.rules"
MODPROBE = REPO / "config" / "modprobe" / "kagiban-nfc.conf"


class _Repeated(dict):
    """configparser storage that keeps every value of a repeated key (systemd allows them)."""

    def __setitem__(self, key, value):
        if isinstance(value, list) and key in self and isinstance(self[key], list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def unit(path: Path) -> configparser.ConfigParser:
    """A unit file parsed with configparser; a repeated key's values are joined by newlines."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, dict_type=_Repeated)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text(), source=str(path))
    return parser


def values(parser: configparser.ConfigParser, section: str, key: str) -> list[str]:
    """Every value of ``key``, whitespace-separated lists split, in order."""
    raw = parser.get(section, key, fallback="")
    return [word for line in raw.splitlines() for word in line.split()]


@pytest.mark.parametrize(
    "path,subcommand,config",
    [(AGENT, "device", "/etc/kagiban/station.yaml"), (HUB, "hub", "/etc/kagiban/hub.yaml")],
)
def test_unit_runs_kagiban_with_its_config(path, subcommand, config):
    u = unit(path)
    argv = shlex.split(u["Service"]["ExecStart"])
    assert Path(argv[0]).is_absolute() and Path(argv[0]).name == "kagiban"
    assert argv[0].startswith(("/opt/", "/usr/")), argv[0]
    assert argv[1:] == [subcommand, "--config", config]


@pytest.mark.parametrize("path", [AGENT, HUB])
def test_unit_restarts_runs_unprivileged_and_waits_for_the_network(path):
    u = unit(path)
    s = u["Service"]
    assert s["Restart"] == "on-failure"
    assert 1 <= int(s["RestartSec"]) <= 60
    assert u["Unit"]["StartLimitIntervalSec"] == "0"  # keeps trying after repeated failures
    assert s["User"] == "kagiban" and s["User"] != "root"
    assert s["StateDirectory"] == "kagiban"
    assert "network-online.target" in values(u, "Unit", "After")
    assert "network-online.target" in values(u, "Unit", "Wants")
    assert u["Install"]["WantedBy"] == "multi-user.target"
    assert s["NoNewPrivileges"] == "yes"
    assert s["ProtectSystem"] == "strict"
    assert s["CapabilityBoundingSet"] == ""
    assert s["UMask"] == "0077"


def test_agent_is_not_restarted_on_a_configuration_error_and_stops_in_time():
    s = unit(AGENT)["Service"]
    # kagiban device exits 2 when the unit file names a library this machine cannot load.
    assert values(unit(AGENT), "Service", "RestartPreventExitStatus") == ["2"]
    assert int(s["TimeoutStopSec"]) == 20


def test_agent_reaches_gpio_camera_and_readers():
    u = unit(AGENT)
    s = u["Service"]
    assert set(values(u, "Service", "SupplementaryGroups")) >= {"gpio", "video", "plugdev", "dialout"}
    # Hardening that would cut off /dev/gpiochip*, /dev/video*, USB readers or the groups.
    for key in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "PrivateUsers", "DynamicUser"):
        assert key not in s, f"{key} would break hardware access"
    # lgpio writes notification pipes into LG_WD; it must be writable under ProtectSystem=strict.
    assert "LG_WD=/run/kagiban" in values(u, "Service", "Environment")
    assert s["RuntimeDirectory"] == "kagiban"


def test_agent_password_is_the_credential_the_station_config_reads():
    u = unit(AGENT)
    name, _, source = u["Service"]["LoadCredential"].partition(":")
    assert source == f"/etc/kagiban/credentials/{name}"
    example = (REPO / "config" / "cabinet.example.yaml").read_text()
    assert f"${{CREDENTIALS_DIRECTORY}}/{name}" in example


def test_hub_waits_for_the_broker_without_dying_with_it():
    u = unit(HUB)
    assert "mosquitto.service" in values(u, "Unit", "After")
    assert "mosquitto.service" in values(u, "Unit", "Wants")
    assert "Requires" not in u["Unit"]
    assert u["Service"]["PrivateDevices"] == "yes"
    name, _, source = u["Service"]["LoadCredential"].partition(":")
    assert source == f"/etc/kagiban/credentials/{name}"
    example = REPO / "config" / "hub.example.yaml"
    if example.exists():
        assert f"${{CREDENTIALS_DIRECTORY}}/{name}" in example.read_text()


def test_broker_dropin_starts_the_kagiban_config():
    u = unit(DROPIN)
    execs = u["Service"]["ExecStart"].splitlines()
    assert execs[0] == ""  # resets Debian's ExecStart before replacing it
    assert shlex.split(execs[1]) == ["/usr/sbin/mosquitto", "-c", "/etc/mosquitto/kagiban.conf"]
    assert "/etc/mosquitto/kagiban.conf" in (REPO / "config" / "mosquitto" / "kagiban.conf").read_text()


OWN_FILES = [
    AGENT, HUB, DROPIN, CRL_SERVICE, CRL_TIMER, UDEV, MODPROBE,
    REPO / "config" / "mosquitto" / "kagiban.conf",
    REPO / "config" / "mosquitto" / "acl",
    REPO / "scripts" / "kagiban-station-credentials",
]


def test_the_revocation_list_is_renewed_monthly_with_the_ca_the_install_guide_makes():
    # An expired CRL shuts out every certificate station: renewed every month, valid 365 days,
    # a run missed while the host was off made up at boot.
    timer = unit(CRL_TIMER)
    assert timer["Timer"]["OnCalendar"] == "monthly"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
    service = unit(CRL_SERVICE)
    assert service["Service"]["Type"] == "oneshot"
    argv = shlex.split(service["Service"]["ExecStart"])
    assert Path(argv[0]).name == "kagiban-station-credentials" and argv[1] == "crl"
    options = dict(zip(argv[2::2], argv[3::2]))
    guide = INSTALL_DOC.read_text()
    for flag in ("--ca-cert", "--ca-key"):
        assert options[flag] in guide, f"{flag} {options[flag]} is not the file docs/install-pi.md makes"
    # mosquitto reads the new list on a reload; a stopped broker reads it when it starts.
    assert shlex.split(service["Service"]["ExecStartPost"])[1:] == ["try-reload-or-restart", "mosquitto.service"]


@pytest.mark.parametrize("path", OWN_FILES, ids=lambda p: p.name)
def test_each_deployment_file_says_what_it_is_for_and_names_no_machine_paths(path):
    lines = path.read_text().splitlines()
    if lines[0].startswith("#!"):
        lines = lines[1:]
    assert lines[0].startswith("# ") and "kagiban" in lines[0], f"{path.name}: no header comment"
    text = path.read_text()
    for bad in ("/home/", "/root/", "/tmp/", "/work/", "/Users/"):
        assert bad not in text, f"{path.name} names {bad}"


def test_udev_rules_cover_the_usb_readers_for_group_plugdev():
    rules = [ln for ln in UDEV.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    ids = set()
    for rule in rules:
        pairs = re.findall(r'([A-Z]+(?:\{[A-Za-z_]+\})?)(==|!=|=|\+=)"([^"]*)"', rule)
        assert pairs and ", ".join(f'{k}{op}"{v}"' for k, op, v in pairs) == rule.strip(), rule
        d = {k: v for k, _, v in pairs}
        if "ATTR{idVendor}" in d:
            assert d["GROUP"] == "plugdev" and d["MODE"] == "0660", rule
            ids.add(f'{d["ATTR{idVendor}"]}:{d["ATTR{idProduct}"]}')
    assert {"054c:06c3", "054c:0dc8", "054c:0dc9"} <= ids
    labels = [ln for ln in rules if ln.startswith("LABEL=")]
    gotos = set(re.findall(r'GOTO="([^"]+)"', UDEV.read_text()))
    assert gotos == {ln.split('"')[1] for ln in labels}


def test_modprobe_keeps_the_kernel_driver_off_the_rcs380():
    lines = [ln.split() for ln in MODPROBE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert ["blacklist", "port100"] in lines
    assert all(ln[0] == "blacklist" and len(ln) == 2 for ln in lines)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    """systemd's own check, in a scratch root that has the binaries the units name."""
    root = tmp_path / "root"
    system = root / "etc" / "systemd" / "system"
    (system / "mosquitto.service.d").mkdir(parents=True)
    for path in (AGENT, HUB, CRL_SERVICE, CRL_TIMER):
        shutil.copy(path, system / path.name)
    shutil.copy(DROPIN, system / "mosquitto.service.d" / "kagiban.conf")
    # The certificate variant of the agent from docs/install-pi.md.
    (system / "kagiban-agent.service.d").mkdir()
    (system / "kagiban-agent.service.d" / "certificate.conf").write_text(
        "[Service]\nLoadCredential=\nLoadCredential=mqtt-key:/etc/kagiban/credentials/mqtt-key\n"
    )
    lib = root / "lib" / "systemd" / "system"
    lib.mkdir(parents=True)
    host_lib = Path("/lib/systemd/system")
    targets = list(host_lib.glob("*.target"))
    if not targets:
        pytest.skip("no systemd target units on this machine to verify against")
    for target in targets:
        shutil.copy(target, lib / target.name, follow_symlinks=True)
    mosquitto_unit = host_lib / "mosquitto.service"
    if mosquitto_unit.exists():
        shutil.copy(mosquitto_unit, lib / "mosquitto.service")
    else:
        (lib / "mosquitto.service").write_text(
            "[Unit]\nDescription=stand-in\n[Service]\nExecStart=/usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf\n"
        )
    for exe in ("/opt/kagiban/venv/bin/kagiban", "/usr/sbin/mosquitto", "/bin/mkdir", "/bin/chown", "/bin/kill",
                "/opt/kagiban/src/scripts/kagiban-station-credentials", "/bin/systemctl"):
        dest = root / exe.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("#!/bin/sh\n")
        dest.chmod(0o755)
    done = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "kagiban-agent.service", "kagiban-hub.service",
         "kagiban-crl.service", "kagiban-crl.timer", "mosquitto.service"],
        capture_output=True, text=True, timeout=60, cwd=root,
    )
    complaints = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    assert done.returncode == 0 and not complaints, "\n".join(complaints)
