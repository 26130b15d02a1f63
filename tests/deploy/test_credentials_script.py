"""scripts/kagiban-station-credentials as an admin uses it: add a station, reload the broker,
the station connects with what was printed and is confined by the ACL; bad ids, the reserved
hub id, short passwords and overwriting an existing key are refused."""
from __future__ import annotations

import re
import signal
import stat

import pytest

from kagiban import protocol
from tests.support.deployment import CREDENTIALS_SCRIPT, WAIT_S, Peer, make_ca, run
from tests.support.mosquitto import wait_for


def _script(*args: str, input: str | None = None):
    return run([str(CREDENTIALS_SCRIPT), *args], input=input, check=False)


def test_new_station_connects_after_a_reload_with_the_printed_password(deployment, peers):
    passwd = deployment.stations_passwd
    done = _script("password", "printer-7", "--passwd-file", str(passwd))
    assert done.returncode == 0, done.stderr
    printed = re.search(r"shown once.*\n\s+(\S+)\n", done.stdout)
    assert printed, done.stdout
    password = printed.group(1)
    assert len(password) >= 32
    assert done.stdout.count(password) == 1
    assert password not in passwd.read_text()
    assert re.search(r"^printer-7:\$7\$", passwd.read_text(), re.M)
    assert "LoadCredential" in done.stdout and "${CREDENTIALS_DIRECTORY}/mqtt-password" in done.stdout

    deployment.broker.proc.send_signal(signal.SIGHUP)  # systemctl reload mosquitto
    station = Peer(deployment, name="printer-7", password=password)
    try:
        wait_for(station.try_connect, timeout=WAIT_S, what="printer-7 accepted after the reload")
        hub = peers("kagiban-hub", password=deployment.passwords["kagiban-hub"], listener="local")
        hub.subscribe("kagiban/#")
        own = protocol.topic("kagiban", "ward-a", "printer-7", "event")
        assert not station.publish(own, b'{"v":1}').is_failure
        hub.wait_message(own, b'{"v":1}')
        assert station.publish(protocol.topic("kagiban", "ward-a", "cabinet-1", "event"), b"{}").value == 135
    finally:
        station.close()


def test_password_file_is_readable_by_the_broker_only(deployment):
    passwd = deployment.stations_passwd
    assert _script("password", "door-3", "--passwd-file", str(passwd)).returncode == 0
    mode = stat.S_IMODE(passwd.stat().st_mode)
    assert mode & 0o007 == 0, oct(mode)  # nothing for others; group mosquitto may read


@pytest.mark.parametrize("bad", ["a/b", "cab+1", "cab#1", "-lead", ".dot", "x" * 65, "with space", ""])
def test_ids_that_cannot_be_a_topic_level_are_refused(tmp_path, bad):
    passwd = tmp_path / "passwd"
    done = _script("password", bad, "--passwd-file", str(passwd))
    assert done.returncode != 0
    assert not passwd.exists()


def test_the_hub_identity_needs_an_explicit_flag(tmp_path):
    passwd = tmp_path / "passwd"
    done = _script("password", "kagiban-hub", "--passwd-file", str(passwd))
    assert done.returncode != 0 and "--hub" in done.stderr
    assert not passwd.exists()
    assert _script("password", "kagiban-hub", "--passwd-file", str(passwd), "--hub").returncode == 0


def test_a_short_password_from_stdin_is_refused(tmp_path):
    done = _script("password", "cabinet-5", "--passwd-file", str(tmp_path / "p"), "--stdin", input="short\n")
    assert done.returncode != 0 and "16" in done.stderr


def test_certificate_names_the_station_and_is_for_client_auth(tmp_path):
    ca_crt, ca_key = make_ca(tmp_path, "ca")
    out = tmp_path / "out"
    done = _script("cert", "shredder-2", "--ca-cert", str(ca_crt), "--ca-key", str(ca_key), "--out", str(out))
    assert done.returncode == 0, done.stderr
    crt, key = out / "shredder-2.crt", out / "shredder-2.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    text = run(["openssl", "x509", "-in", str(crt), "-noout", "-subject", "-ext", "extendedKeyUsage"]).stdout
    assert re.search(r"CN ?= ?shredder-2\b", text) and "TLS Web Client Authentication" in text
    assert run(["openssl", "verify", "-CAfile", str(ca_crt), str(crt)]).returncode == 0
    assert "/run/credentials/kagiban-agent.service/mqtt-key" in done.stdout

    again = _script("cert", "shredder-2", "--ca-cert", str(ca_crt), "--ca-key", str(ca_key), "--out", str(out))
    assert again.returncode != 0 and "not overwriting" in again.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_wrong_ca_key_leaves_no_half_made_files(tmp_path):
    ca_crt, _ = make_ca(tmp_path, "ca")
    _, other_key = make_ca(tmp_path, "other")
    out = tmp_path / "out"
    done = _script("cert", "door-1", "--ca-cert", str(ca_crt), "--ca-key", str(other_key), "--out", str(out))
    assert done.returncode != 0
    assert not (out / "door-1.key").exists() and not (out / "door-1.crt").exists()


def _ca_db_entries(ca_key) -> list[tuple[str, str, str]]:
    """(status V/R, serial, subject) of each line of the CA database next to ``ca_key``."""
    index = ca_key.parent / "ca-db" / "index.txt"
    return [(f[0], f[3], f[5]) for f in (ln.split("\t") for ln in index.read_text().splitlines())]


def test_revoke_lists_every_certificate_of_the_unit_and_only_those(tmp_path):
    ca_crt, ca_key = make_ca(tmp_path, "ca")
    crl = tmp_path / "ca.crl"
    for name, out in (("door-4", "a"), ("door-4", "b"), ("door-5", "c")):  # door-4 replaced once
        done = _script("cert", name, "--ca-cert", str(ca_crt), "--ca-key", str(ca_key), "--out", str(tmp_path / out))
        assert done.returncode == 0, done.stderr
    assert [(s, d) for s, _, d in _ca_db_entries(ca_key)] == [("V", "/CN=door-4"), ("V", "/CN=door-4"), ("V", "/CN=door-5")]

    done = _script("revoke", "door-4", "--ca-cert", str(ca_crt), "--ca-key", str(ca_key), "--crl", str(crl),
                   "--passwd-file", str(tmp_path / "none"), "--no-reload")
    assert done.returncode == 0, done.stderr
    assert [(s, d) for s, _, d in _ca_db_entries(ca_key)] == [("R", "/CN=door-4"), ("R", "/CN=door-4"), ("V", "/CN=door-5")]
    assert stat.S_IMODE(crl.stat().st_mode) == 0o644
    for out, ok in (("a", False), ("b", False), ("c", True)):
        crt = next((tmp_path / out).glob("*.crt"))
        verify = run(["openssl", "verify", "-crl_check", "-CAfile", str(ca_crt), "-CRLfile", str(crl), str(crt)],
                     check=False)
        assert (verify.returncode == 0) is ok, (out, verify.stdout, verify.stderr)


def test_revoke_takes_a_certificate_made_before_the_ca_database_but_only_the_units_own(tmp_path):
    ca_crt, ca_key = make_ca(tmp_path, "ca")
    old = {}
    for name in ("cabinet-6", "cabinet-7"):  # signed by hand, as the guide once did
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(tmp_path / f"{name}.key"), "-out", str(tmp_path / f"{name}.csr"), "-subj", f"/CN={name}"])
        run(["openssl", "x509", "-req", "-in", str(tmp_path / f"{name}.csr"), "-CA", str(ca_crt), "-CAkey", str(ca_key),
             "-set_serial", "77" if name == "cabinet-6" else "78", "-days", "2", "-out", str(tmp_path / f"{name}.crt")])
        old[name] = tmp_path / f"{name}.crt"
    crl = tmp_path / "ca.crl"
    common = ["--ca-cert", str(ca_crt), "--ca-key", str(ca_key), "--crl", str(crl),
              "--passwd-file", str(tmp_path / "none"), "--no-reload"]

    wrong = _script("revoke", "cabinet-6", *common, "--cert", str(old["cabinet-7"]))
    assert wrong.returncode != 0 and "not cabinet-6's certificate" in wrong.stderr
    done = _script("revoke", "cabinet-6", *common, "--cert", str(old["cabinet-6"]))
    assert done.returncode == 0, done.stderr
    listed = run(["openssl", "crl", "-in", str(crl), "-noout", "-text"]).stdout
    assert re.search(r"Serial Number: 4D\b", listed) and not re.search(r"Serial Number: 4E\b", listed)
