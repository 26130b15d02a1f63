"""The print-submission attacks of the outside check (issue 12), replayed against a real cupsd
running the shipped policy (config/cups/cupsd.conf, queues by scripts/kagiban-print-server-setup)
and the printer station's own CUPS adapter.

The people are OS accounts made for the run (tests/support/terminal_users.py): the owner of a
held job, and a colleague at another terminal who tries to get it printed, moved, cancelled or
counted as theirs. The colleague attacks as any terminal on the LAN would (TCP, no credentials
or their own password: HTTP Basic checked by PAM) and as a local user on the print server
itself (the unix socket, where CUPS knows them by peer credentials). After each attempt the job
is still held, for its real owner, in the stopped holding queue, and nothing was printed; only
the owner's tap at the station releases it.
"""
from __future__ import annotations

import plistlib
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from device.printing.cups import CupsPrintServer
from demo.cups import _tool
from tests.support import terminal_users
from tests.support.cups import Cups
from tests.support.mosquitto import wait_for

OWNER = "S011"  # whose job waits in the holding queue
COLLEAGUE = "S012"  # at another terminal
SETTLE_S = 1.0  # long enough for a job that slipped through to start printing

_HEAD = """  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
"""


@pytest.fixture(scope="module")
def cups():
    with Cups() as c:
        for name in (OWNER, COLLEAGUE):
            terminal_users.ensure(name)
        yield c


@pytest.fixture
def site(cups):
    """Queues of this test's own, the station's adapter on them, and the owner's held job."""
    tag = uuid.uuid4().hex[:8]
    hold, printer = f"hold-{tag}", f"print-{tag}"
    cups.add_queues(hold, printer)
    station = CupsPrintServer(cups.socket, holding_queue=hold, printer_queue=printer,
                              admin_user=cups.admin_user, timeout_s=5)
    job = cups.submit_job(OWNER, "family register", 2, queue=hold)
    # The request files: in cupsd's folder, which the colleague's account can read.
    requests = cups.dir / f"requests-{tag}"
    requests.mkdir(mode=0o755)
    yield Site(cups, hold, printer, station, job, requests)
    station.close()


class Site:
    """One holding/printer queue pair and the ways to talk to it."""

    def __init__(self, cups: Cups, hold: str, printer: str, station: CupsPrintServer, job: int, tmp: Path):
        self.cups, self.hold, self.printer, self.station, self.job, self.tmp = cups, hold, printer, station, job, tmp

    # --- what a user would check ---

    def held(self) -> dict[int, str]:
        """Job id -> owner, as the station sees the holding queue."""
        return {j.id: j.user for j in self.station.held_jobs()}

    def printed(self) -> list[tuple[str, int]]:
        """(owner, job) of every page-log entry of this site's printer queue."""
        return [(owner, job) for queue, owner, job, _pages in self.cups.printed() if queue == self.printer]

    def description(self) -> str:
        out = run(["lpstat", "-h", self.cups.socket, "-l", "-p", self.hold])
        return out.stdout

    def assert_untouched(self) -> None:
        """The owner's job is held for the owner, the queue is stopped, nothing printed."""
        time.sleep(SETTLE_S)
        assert self.held().get(self.job) == OWNER, self.held()
        assert "disabled" in self.cups.queue_state(self.hold)
        assert self.printed() == []

    # --- how the colleague gets at it ---

    def as_colleague(self, *args: str) -> subprocess.CompletedProcess:
        """A command run by the colleague's OS account on the print server (the unix socket)."""
        return run([_tool("runuser") or "runuser", "-u", COLLEAGUE, "--", *args])

    def ipp(self, body: str, *, user: str | None = None, password: str | None = None,
            socket_as: str | None = None, document: Path | None = None, tls: bool = False) -> str:
        """One IPP request in ipptool's language; the status the server answered.

        Over TCP (anonymous, or ``user``:``password`` by HTTP Basic; ``tls``: ipps://), or on
        the unix socket run as the OS user ``socket_as`` (its peer credentials).
        """
        path = self.tmp / f"{uuid.uuid4().hex[:8]}.test"
        path.write_text("{\n  NAME \"attack\"\n" + body + "}\n")
        if socket_as is not None:
            host = quote(self.cups.socket, safe="")
        elif user is not None:
            host = f"{quote(user, safe='')}:{quote(password or '', safe='')}@{self.cups.tcp}"
        else:
            host = self.cups.tcp
        args = [_tool("ipptool") or "ipptool", "-X", "-T", "10", "-d", f"job={self.job}",
                "-d", f"printer={self.printer}"]
        if document is not None:
            args += ["-f", str(document)]
        args += [f"{'ipps' if tls else 'ipp'}://{host}/printers/{self.hold}", str(path)]
        if socket_as is not None and socket_as != "root":
            path.chmod(0o644)
            args = [_tool("runuser") or "runuser", "-u", socket_as, "--", *args]
        done = subprocess.run(args, capture_output=True, timeout=30, stdin=subprocess.DEVNULL, check=False)
        end = done.stdout.rfind(b"</plist>")
        report = plistlib.loads(done.stdout[: end + len(b"</plist>")]) if end >= 0 else {}
        tests = report.get("Tests") or [{}]
        return tests[0].get("StatusCode") or f"no IPP answer: {report.get('ErrorMessage') or done.stderr!r}"


def run(args: list[str]) -> subprocess.CompletedProcess:
    """A client command with no terminal (nobody types a password), bounded in time."""
    return subprocess.run(args, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                          check=False)


def release_at_tap(site: Site, person: str) -> list[int]:
    """What the station does when ``person`` taps: the job ids it released."""
    result = site.station.release(person)
    assert result.error is None
    return [j.id for j in result.released]


def _job_attrs(job_group: str) -> str:
    return (_HEAD + "  ATTR uri printer-uri $uri\n  ATTR name job-name \"meant for the colleague\"\n"
            "  ATTR mimeMediaType document-format application/pdf\n" + job_group)


PRINT_AS_OWNER_BY_NAME = "  OPERATION Print-Job\n" + _job_attrs(
    f"  ATTR name requesting-user-name {OWNER}\n  FILE $filename\n")
PRINT_AS_OWNER_BY_JOB_ATTRIBUTE = "  OPERATION Print-Job\n" + _job_attrs(
    f"  ATTR name requesting-user-name {OWNER}\n  GROUP job-attributes-tag\n"
    f"  ATTR name job-originating-user-name {OWNER}\n  FILE $filename\n")

SET_JOB_NO_HOLD = f"""  OPERATION Set-Job-Attributes
{_HEAD}  ATTR uri printer-uri $uri
  ATTR integer job-id $job
  ATTR name requesting-user-name {OWNER}
  GROUP job-attributes-tag
  ATTR keyword job-hold-until no-hold
"""
RELEASE_JOB = f"""  OPERATION Release-Job
{_HEAD}  ATTR uri printer-uri $uri
  ATTR integer job-id $job
  ATTR name requesting-user-name {OWNER}
"""
MOVE_JOB_AS = """  OPERATION CUPS-Move-Job
{head}  ATTR uri printer-uri $uri
  ATTR integer job-id $job
  ATTR name requesting-user-name {user}
  GROUP job-attributes-tag
  ATTR uri job-printer-uri ipp://localhost/printers/$printer
"""
SET_PRINTER_INFO = """  OPERATION Set-Printer-Attributes
{head}  ATTR uri printer-uri $uri
  ATTR name requesting-user-name {user}
  GROUP printer-attributes-tag
  ATTR text printer-info "{info}"
"""


# --- who a job belongs to ---

def test_lp_claiming_a_colleagues_name_is_refused_from_any_terminal(site):
    pdf = site.cups.document(1)
    lp = _tool("lp") or "lp"
    # A LAN terminal without credentials, as in the outside check.
    assert run([lp, "-h", site.cups.tcp, "-U", OWNER, "-d", site.hold, str(pdf)]).returncode != 0
    # The colleague signed in on the print server itself: the socket knows who they are.
    assert site.as_colleague(lp, "-h", site.cups.socket, "-U", OWNER, "-d", site.hold, str(pdf)).returncode != 0
    assert set(site.held()) == {site.job}
    assert release_at_tap(site, OWNER) == [site.job]
    wait_for(lambda: site.printed() == [(OWNER, site.job)], timeout=20, what="the owner's job printed")


def test_a_job_sent_with_a_colleagues_password_free_name_is_the_senders_own(site):
    # Signed in with their own password over TCP, naming the owner in requesting-user-name:
    # CUPS makes the authenticated user the owner.
    status = site.ipp(PRINT_AS_OWNER_BY_NAME, user=COLLEAGUE, password=terminal_users.password(COLLEAGUE),
                      document=site.cups.document(1))
    assert status == "successful-ok"
    theirs = [job for job, owner in site.held().items() if job != site.job]
    assert len(theirs) == 1 and site.held()[theirs[0]] == COLLEAGUE
    # The owner's tap releases only the owner's job; the colleague's is theirs to collect.
    assert release_at_tap(site, OWNER) == [site.job]
    wait_for(lambda: site.printed() == [(OWNER, site.job)], timeout=20, what="the owner's job printed")
    assert release_at_tap(site, COLLEAGUE) == theirs


def test_a_terminal_signs_in_over_tls_and_its_job_is_its_users(site):
    # What a LAN terminal does (docs/printing.md): ipps:// with the person's own password.
    status = site.ipp(PRINT_AS_OWNER_BY_NAME, user=COLLEAGUE, password=terminal_users.password(COLLEAGUE),
                      document=site.cups.document(1), tls=True)
    assert status == "successful-ok"
    assert sorted(site.held().values()) == [OWNER, COLLEAGUE]
    # A wrong password over TLS gets no job in.
    assert site.ipp(PRINT_AS_OWNER_BY_NAME, user=COLLEAGUE, password="not-the-password",
                    document=site.cups.document(1), tls=True) != "successful-ok"
    assert sorted(site.held().values()) == [OWNER, COLLEAGUE]


@pytest.mark.parametrize("how", ["tcp", "socket"])
def test_a_job_naming_a_second_owner_is_released_to_nobody(site, how):
    # From the print server's own host CUPS keeps a job-originating-user-name the client sends
    # next to its own record of the authenticated user; the station does not pick either.
    kw = ({"user": COLLEAGUE, "password": terminal_users.password(COLLEAGUE)} if how == "tcp"
          else {"socket_as": COLLEAGUE})
    status = site.ipp(PRINT_AS_OWNER_BY_JOB_ATTRIBUTE, document=site.cups.document(1), **kw)
    if status != "successful-ok":
        pytest.fail(f"CUPS now refuses a job naming another owner ({status}): tighten this test")
    assert release_at_tap(site, OWNER) == [site.job]
    assert release_at_tap(site, COLLEAGUE) == []
    wait_for(lambda: site.printed() == [(OWNER, site.job)], timeout=20, what="the owner's job printed")
    time.sleep(SETTLE_S)
    # Still held, owned by nobody the station would release it to (it expires unprinted).
    assert list(site.held().values()) == [""]
    assert site.printed() == [(OWNER, site.job)]


# --- getting around the hold ---

@pytest.mark.parametrize("option", [["-H", "no-hold"], ["-H", "immediate"], ["-o", "job-hold-until=no-hold"]])
def test_a_job_sent_without_a_hold_still_waits_for_its_owners_tap(site, option):
    own = site.as_colleague(_tool("lp") or "lp", "-h", site.cups.socket, "-d", site.hold, *option,
                            str(site.cups.document(1)))
    assert own.returncode == 0, own.stderr
    time.sleep(SETTLE_S)
    assert sorted(site.held().values()) == [OWNER, COLLEAGUE]
    assert site.printed() == []
    assert "disabled" in site.cups.queue_state(site.hold)


@pytest.mark.parametrize("option", [["-H", "no-hold"], ["-H", "immediate"], ["-H", "resume"],
                                    ["-o", "job-hold-until=no-hold"]])
def test_changing_the_owners_job_hold_is_refused(site, option):
    lp = _tool("lp") or "lp"
    assert run([lp, "-h", site.cups.tcp, "-U", OWNER, "-i", str(site.job), *option]).returncode != 0
    assert site.as_colleague(lp, "-h", site.cups.socket, "-U", OWNER, "-i", str(site.job), *option).returncode != 0
    assert site.as_colleague(lp, "-h", site.cups.socket, "-i", str(site.job), *option).returncode != 0
    site.assert_untouched()


def test_set_job_attributes_and_release_job_are_refused(site):
    password = terminal_users.password(COLLEAGUE)
    for body in (SET_JOB_NO_HOLD, RELEASE_JOB):
        assert site.ipp(body) != "successful-ok"
        assert site.ipp(body, user=COLLEAGUE, password=password) != "successful-ok"
        assert site.ipp(body, socket_as=COLLEAGUE) != "successful-ok"
    site.assert_untouched()


@pytest.mark.parametrize("claimed", ["owner", "admin"])
def test_cups_move_job_naming_another_requesting_user_is_refused(site, claimed):
    user = OWNER if claimed == "owner" else site.cups.admin_user
    body = MOVE_JOB_AS.format(head=_HEAD, user=user)
    assert site.ipp(body) != "successful-ok"
    assert site.ipp(body, user=COLLEAGUE, password=terminal_users.password(COLLEAGUE)) != "successful-ok"
    assert site.ipp(body, socket_as=COLLEAGUE) != "successful-ok"
    site.assert_untouched()
    # The same request from the print server's administrator is what a release does.
    assert site.ipp(body, socket_as="root") == "successful-ok"
    wait_for(lambda: site.printed() == [(OWNER, site.job)], timeout=20, what="the moved job printed")


def test_lpmove_and_cancel_by_another_user_are_refused(site):
    lpmove, cancel = _tool("lpmove") or "lpmove", _tool("cancel") or "cancel"
    job = f"{site.hold}-{site.job}"
    assert run([lpmove, "-h", site.cups.tcp, "-U", OWNER, job, site.printer]).returncode != 0
    assert site.as_colleague(lpmove, "-h", site.cups.socket, job, site.printer).returncode != 0
    assert run([cancel, "-h", site.cups.tcp, "-U", OWNER, job]).returncode != 0
    assert site.as_colleague(cancel, "-h", site.cups.socket, "-U", OWNER, job).returncode != 0
    assert site.as_colleague(cancel, "-h", site.cups.socket, job).returncode != 0
    assert site.as_colleague(cancel, "-h", site.cups.socket, "-a", site.hold).returncode != 0
    site.assert_untouched()


# --- the queues themselves ---

def test_cupsenable_and_lpadmin_by_a_user_are_refused(site):
    cupsenable, lpadmin = _tool("cupsenable") or "cupsenable", _tool("lpadmin") or "lpadmin"
    before = site.description()
    for claimed in (OWNER, "root"):
        assert run([cupsenable, "-h", site.cups.tcp, "-U", claimed, site.hold]).returncode != 0
        assert run([lpadmin, "-h", site.cups.tcp, "-U", claimed, "-p", site.hold,
                    "-o", "printer-op-policy=default"]).returncode != 0
    assert site.as_colleague(cupsenable, "-h", site.cups.socket, site.hold).returncode != 0
    assert site.as_colleague(lpadmin, "-h", site.cups.socket, "-p", site.hold, "-D", "changed").returncode != 0
    assert site.as_colleague(lpadmin, "-h", site.cups.socket, "-p", site.hold,
                             "-o", "printer-op-policy=default").returncode != 0
    assert site.as_colleague(lpadmin, "-h", site.cups.socket, "-x", site.hold).returncode != 0
    site.assert_untouched()
    assert site.description() == before


def test_set_printer_attributes_needs_the_print_servers_admin(site):
    before = site.description()
    password = terminal_users.password(COLLEAGUE)
    for kw in ({}, {"user": COLLEAGUE, "password": password}, {"socket_as": COLLEAGUE}):
        claimed = "root" if not kw else COLLEAGUE
        body = SET_PRINTER_INFO.format(head=_HEAD, user=claimed, info="changed by a terminal")
        assert site.ipp(body, **kw) != "successful-ok", kw
    assert site.description() == before and "changed by a terminal" not in before
    # The same request from the administrator works: the refusals above are the policy's.
    body = SET_PRINTER_INFO.format(head=_HEAD, user="root", info="changed by the admin")
    assert site.ipp(body, socket_as="root") == "successful-ok"
    assert "changed by the admin" in site.description()
    site.assert_untouched()
