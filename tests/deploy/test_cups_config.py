"""The print server's configuration as the project ships it, checked by the cupsd installed here:
config/cups/cupsd.conf as written, and the cupsd.conf/cups-files.conf pair demo.cups
writes for the demo and the tests. cupsd must accept them (``cupsd -t``) and start with them;
when it refuses, the test fails with cupsd's own words (never skips: CI installs cups).

Written after CUPS 2.4.2-3+deb12u11 (Debian security update of 2026-12-01) began refusing the
bare ``Printcap`` line localcups used to write, which left every printer test and the demo's
printer dead. A directive the man pages list as deprecated is refused here too, before a later
CUPS refuses it.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from demo import cups as localcups
from tests.support.cups import Cups

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "cups" / "cupsd.conf"
SETUP = REPO / "scripts" / "kagiban-print-server-setup"

# The "DEPRECATED DIRECTIVES" of cupsd.conf(5) and cups-files.conf(5) (CUPS 2.4), and
# JobTicketComments, which cups-files.conf(5) says goes in CUPS 2.5.
DEPRECATED = {"Classification", "ClassifyOverride", "GSSServiceName", "PageLogFormat", "FileDevice",
              "JobTicketComments"}
DEPRECATED_VALUES = {("AuthType", "Negotiate"), ("DefaultAuthType", "Negotiate")}


def _cupsd() -> str:
    reason = localcups.available()
    if reason is not None:
        pytest.fail(f"no cupsd to check the print server's configuration with: {reason}")
    return shutil.which("cupsd") or shutil.which("cupsd", path="/usr/sbin:/usr/local/sbin")


@pytest.fixture
def written():
    """What localcups writes (tests.support.cups.Cups is a LocalCups in a folder of its own)."""
    _cupsd()
    cups = Cups()
    yield cups
    cups.close()


def check(cupsd_conf: Path, files_conf: Path) -> None:
    """``cupsd -t``; fails with what cupsd said when it refuses the pair."""
    done = subprocess.run([_cupsd(), "-t", "-c", str(cupsd_conf), "-s", str(files_conf)],
                          capture_output=True, text=True, timeout=30, check=False)
    said = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        pytest.fail(f"cupsd -t refuses the configuration (exit {done.returncode}): {said}")
    assert "is OK" in said, said


def directives(text: str) -> list[tuple[int, str, str]]:
    """(line number, directive, value) of each setting; block tags and comments left out."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("</"):
            continue
        name, _, value = line.lstrip("<").rstrip(">").partition(" ")
        found.append((number, name, value.strip()))
    return found


def test_cupsd_accepts_the_shipped_policy_as_written(written):
    check(SHIPPED, written.dir / "cups-files.conf")


def test_cupsd_accepts_and_starts_with_what_localcups_writes(written):
    check(written.dir / "cupsd.conf", written.dir / "cups-files.conf")
    try:
        written.start()
    except localcups.CupsUnavailable as exc:
        pytest.fail(f"cupsd refused to start with the demo's and the tests' configuration: {exc}")
    # And the setup script makes its queues on it, as on a real print server.
    written.add_queues("kagiban-hold", "kagiban-print")
    assert "disabled" in written.queue_state("kagiban-hold")
    errors = [ln for ln in written.error_log().splitlines() if ln.startswith(("E ", "W "))]
    assert not errors, errors


@pytest.mark.parametrize("name", ["shipped cupsd.conf", "written cupsd.conf", "written cups-files.conf"])
def test_no_directive_is_empty_or_deprecated(written, name):
    path = {"shipped cupsd.conf": SHIPPED, "written cupsd.conf": written.dir / "cupsd.conf",
            "written cups-files.conf": written.dir / "cups-files.conf"}[name]
    for number, key, value in directives(path.read_text()):
        assert value, f"{path}:{number}: {key} has no value (cupsd 2.4.2-3+deb12u11 refuses it)"
        assert key not in DEPRECATED, f"{path}:{number}: {key} is deprecated (cupsd.conf(5), cups-files.conf(5))"
        assert (key, value) not in DEPRECATED_VALUES, f"{path}:{number}: {key} {value} is deprecated"


def test_the_setup_script_adds_only_listen_lines_to_the_policy():
    # It writes the shipped policy with this server's Listen lines; anything else it wrote
    # would escape the checks above.
    written_lines = re.findall(r'(?m)^\s*(?:for .*; do )?echo "([A-Z][A-Za-z]+) ', SETUP.read_text())
    assert written_lines and set(written_lines) == {"Listen"}, written_lines


def test_the_queues_are_made_with_a_users_path_too(written, monkeypatch):
    # A user's PATH (and so the demo's) often lacks /usr/sbin, where lpadmin and cupsenable are.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    written.start()
    written.add_queues("kagiban-hold", "kagiban-print")
    assert "disabled" in written.queue_state("kagiban-hold")
