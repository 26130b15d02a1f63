"""scripts/kagiban-office-bridge as an admin uses it: the bridge config it writes maps only the
office's own tree (events, snapshots, statuses at QoS 1 up; acks, policies, alerts and the
site's alarm down) with a persistent session; the central ACL block it adds confines the
office to that tree and is replaced, not duplicated, when run again; bad input is refused
with a message naming it. (The config running in real brokers: tests/e2e/test_offices.py and
tests/security/test_office_bridge_acl.py.)"""
from __future__ import annotations

import re

import pytest

from tests.support.deployment import run
from tests.support.offices import BRIDGE_SCRIPT, OFFICES_ACL


def _script(*args: str):
    return run([str(BRIDGE_SCRIPT), *args], check=False)


def _settings(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_the_bridge_maps_only_the_offices_tree_with_a_persistent_session(tmp_path):
    out = tmp_path / "kagiban-bridge.conf"
    done = _script("site-a", "--central", "central.example:8885", "--out", str(out),
                   "--prefix", "kagiban", "--remote-prefix", "city/kagiban")
    assert done.returncode == 0, done.stderr
    lines = _settings(out.read_text())
    assert "@" not in out.read_text().replace("@SITE@", "")  # every placeholder filled
    assert "address central.example:8885" in lines
    assert {"cleansession false", "local_cleansession false", "bridge_insecure false",
            "remote_clientid site-a", "bridge_certfile /etc/mosquitto/certs/site-a.crt",
            "bridge_keyfile /etc/mosquitto/certs/site-a.key"} <= set(lines)
    topics = {tuple(ln.split()[1:]) for ln in lines if ln.startswith("topic ")}
    up, down = ("kagiban/site-a/", "city/kagiban/site-a/"), ("kagiban/site-a/", "city/kagiban/site-a/")
    assert topics == {
        ("+/event", "out", "1", *up), ("+/snapshot", "out", "1", *up), ("+/status", "out", "1", *up),
        ("+/heartbeat", "out", "0", *up),
        ("+/ack", "in", "1", *down), ("+/policy", "in", "1", *down), ("+/policy-control", "in", "1", *down),
        ("+/alert", "in", "1", *down), ("alarm", "in", "1", *down),
    }
    # No "both": nothing the office sends comes back to it, nothing the hub sends goes back up.
    assert not any(" both " in ln for ln in lines)


def test_the_central_acl_block_is_added_once_and_replaced_on_a_rerun(tmp_path):
    acl = tmp_path / "kagiban-offices.acl"
    acl.write_bytes(OFFICES_ACL.read_bytes())
    for site in ("site-a", "site-b", "site-a"):
        done = _script(site, "--central", "127.0.0.1:8885", "--central-acl", str(acl), "--out", str(tmp_path / site))
        assert done.returncode == 0, done.stderr
    text = acl.read_text()
    assert text.startswith(OFFICES_ACL.read_text())
    assert text.count("\nuser site-a\n") == 1 and text.count("\nuser site-b\n") == 1
    block_a = text.split("\nuser site-a\n")[1].split("# end office site-a")[0]
    assert set(_settings(block_a)) == {
        "topic write kagiban/site-a/+/event", "topic write kagiban/site-a/+/snapshot",
        "topic write kagiban/site-a/+/status", "topic write kagiban/site-a/+/heartbeat",
        "topic read kagiban/site-a/+/ack", "topic read kagiban/site-a/+/policy",
        "topic read kagiban/site-a/+/policy-control", "topic read kagiban/site-a/+/alert",
        "topic read kagiban/site-a/alarm"}
    # The shipped ACL itself grants nothing: no user, no pattern, no topic line.
    assert _settings(OFFICES_ACL.read_text()) == []


@pytest.mark.parametrize("args, message", [
    (["site/a", "--central", "h:8885"], "site id 'site/a' must match"),
    (["site-+", "--central", "h:8885"], "site id 'site-+' must match"),
    (["kagiban-hub", "--central", "h:8885"], "kagiban-hub is the hub's identity"),
    (["site-a"], "--central HOST:PORT is required"),
    (["site-a", "--central", "h"], "--central must be HOST:PORT"),
    (["site-a", "--central", "h:8885", "--prefix", "kagiban/#"], "topic prefix 'kagiban/#'"),
    (["site-a", "--central", "h:8885", "--keepalive", "0"], "--keepalive must be"),
    (["site-a", "--central", "h:8885", "--retry", "9", "2"], "--retry MIN MAX"),
    (["site-a", "--central", "h:8885", "--cert-file", "relative.crt"], "file paths must be absolute"),
    (["site-a", "--central", "h:8885", "--central-acl", "/nonexistent/offices.acl"], "does not exist"),
])
def test_bad_input_is_refused_naming_it(tmp_path, args, message):
    done = _script(*args, "--out", str(tmp_path / "bridge.conf")) if "--central-acl" in args else _script(*args)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert re.match(r"kagiban-office-bridge: ", done.stderr)
    assert not (tmp_path / "bridge.conf").exists()  # nothing half done


def test_help_prints_the_usage_and_an_option_in_the_site_s_place_is_refused():
    done = _script("--help")
    assert done.returncode == 0
    assert done.stdout.lstrip().startswith("kagiban-office-bridge SITE --central HOST:PORT")
    refused = _script("--central", "h:8885", "site-a")
    assert refused.returncode == 2
    assert "kagiban-office-bridge SITE" in refused.stderr and refused.stdout == ""
