"""docs/install-pi.md against what it installs: the example unit files hold the password
credential the guide sets up (and the certificate one as their commented alternative), the
YAML the guide shows is theirs, and the guide's command that enables the broker's password
listener enables exactly that listener."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.support.deployment import BROKER_CONF, CREDENTIALS_SCRIPT, REPO, uncomment_password_listener

GUIDE = (REPO / "docs" / "install-pi.md").read_text()
KINDS = ("cabinet", "door", "shredder", "printer")
AGENT_UNIT = (REPO / "systemd" / "kagiban-agent.service").read_text()
HUB_UNIT = (REPO / "systemd" / "kagiban-hub.service").read_text()

PASSWORD_BLOCK = {"port": 8884, "password_file": "${CREDENTIALS_DIRECTORY}/mqtt-password",
                  "tls": {"ca_file": "/etc/kagiban/ca.crt"}}
CERT_BLOCK = {"port": 8883, "tls": {"ca_file": "/etc/kagiban/ca.crt", "cert_file": "/etc/kagiban/station.crt",
                                    "key_file": "${CREDENTIALS_DIRECTORY}/mqtt-key"}}


def example(kind: str) -> str:
    return (REPO / "config" / f"{kind}.example.yaml").read_text()


def commented_broker_block(text: str) -> dict:
    """The commented-out ``# broker:`` block of an example file, parsed."""
    lines = text.splitlines()
    start = lines.index("# broker:")
    block = [lines[start][2:]]
    for line in lines[start + 1:]:
        if not line.startswith("#   "):
            break
        block.append(line[2:])
    return yaml.safe_load("\n".join(block))["broker"]


def guide_broker_blocks() -> list[dict]:
    return [yaml.safe_load(b)["broker"] for b in re.findall(r"```yaml\n(broker:\n.*?)```", GUIDE, re.S)]


@pytest.mark.parametrize("kind", KINDS)
def test_each_example_uses_the_password_credential_and_offers_the_certificate(kind):
    text = example(kind)
    unit = yaml.safe_load(text)
    broker = unit["broker"]
    assert broker["username"] == unit["station"]["id"]
    assert {k: broker[k] for k in PASSWORD_BLOCK} == PASSWORD_BLOCK
    assert "key_file" not in broker["tls"] and "cert_file" not in broker["tls"]
    alternative = commented_broker_block(text)
    assert {k: alternative[k] for k in CERT_BLOCK} == CERT_BLOCK
    assert "username" not in alternative and "password_file" not in alternative
    assert broker["host"] == alternative["host"] == "hub.example.internal"  # the guide's name for it


def test_the_credentials_the_examples_name_are_the_ones_the_units_load():
    name = re.search(r"^LoadCredential=(\S+?):", AGENT_UNIT, re.M).group(1)
    assert PASSWORD_BLOCK["password_file"] == f"${{CREDENTIALS_DIRECTORY}}/{name}"
    hub = yaml.safe_load((REPO / "config" / "hub.example.yaml").read_text())["broker"]
    hub_name = re.search(r"^LoadCredential=(\S+?):", HUB_UNIT, re.M).group(1)
    assert hub["username"] == "kagiban-hub" and hub["password_file"] == f"${{CREDENTIALS_DIRECTORY}}/{hub_name}"
    assert (hub["host"], hub["port"]) == ("127.0.0.1", 1883)  # the broker's loopback listener


def test_the_guide_shows_the_examples_blocks_and_the_script_prints_the_same():
    cabinet = yaml.safe_load(example("cabinet"))["broker"]
    shown = guide_broker_blocks()
    assert shown[0] == cabinet  # step 5: the password block, as the example has it
    assert shown[1] == commented_broker_block(example("cabinet"))  # step 6: the certificate block
    script = CREDENTIALS_SCRIPT.read_text()
    assert "port: 8884" in script and "password_file: \\${CREDENTIALS_DIRECTORY}/mqtt-password" in script
    assert "port: 8883" in script and "/mqtt-key" in script


@pytest.mark.skipif(shutil.which("sed") is None, reason="no sed")
def test_the_guides_command_enables_exactly_the_password_listener(tmp_path):
    [command] = re.findall(r"^(sed -i .*?)\\\n\s+/etc/mosquitto/kagiban.conf$", GUIDE, re.M)
    conf = tmp_path / "kagiban.conf"
    conf.write_text(BROKER_CONF.read_text())
    done = subprocess.run(["sh", "-c", f"{command.strip()} {conf}"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    settings = [line for line in conf.read_text().splitlines() if line and not line.startswith("#")]
    wanted = [line for line in uncomment_password_listener(BROKER_CONF.read_text()).splitlines()
              if line and not line.startswith("#")]
    assert settings == wanted
    assert "listener 8884" in settings and "password_file /etc/mosquitto/kagiban-stations.passwd" in settings
