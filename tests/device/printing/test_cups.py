"""The CUPS adapter against a real cupsd (tests/support/cups.py) with the repository's policy and
queues: what a person at the printer gets, and what a terminal trying to get around the hold
gets."""
from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from device.printing.cups import CupsPrintServer
from device.printing.standin import StandInPrintServer
from tests.support.cups import Cups
from tests.support.mosquitto import wait_for

# No skip without cupsd: CI installs cups, and a printer test that cannot run fails (CupsUnavailable).


@pytest.fixture(scope="module")
def cups():
    with Cups() as c:
        yield c


@pytest.fixture
def queues(cups):
    """A holding and a printer queue of this test's own."""
    tag = uuid.uuid4().hex[:8]
    hold, printer = f"hold-{tag}", f"print-{tag}"
    cups.add_queues(hold, printer)
    server = CupsPrintServer(cups.socket, holding_queue=hold, printer_queue=printer,
                             admin_user=cups.admin_user, timeout_s=5)
    yield hold, printer, server
    server.close()


def test_a_release_prints_only_that_users_jobs(cups, queues):
    hold, printer, server = queues
    mine = [cups.submit_job("S001", "juminhyo copy", 2, queue=hold),
            cups.submit_job("S001", "tax certificate", 1, queue=hold, options=["-H", "indefinite"])]
    theirs = cups.submit_job("S002", "family register", 3, queue=hold)
    result = server.release("S001")
    assert result.error is None and sorted(j.id for j in result.released) == sorted(mine)
    assert {j.title for j in result.released} == {"juminhyo copy", "tax certificate"}
    printed = wait_for(lambda: [p for p in cups.printed() if p[0] == printer and len(
        [q for q in cups.printed() if q[0] == printer]) == 2], timeout=20, what="both jobs printed")
    assert sorted((owner, job, pages) for _q, owner, job, pages in printed) == sorted(
        [("S001", mine[0], 2), ("S001", mine[1], 1)])
    assert cups.jobs(hold) == [(theirs, "S002")]
    # The pages CUPS counted, as the station's watch asks for them.
    states = {s.id: s for s in server.job_states(mine)}
    assert states[mine[0]].finished and states[mine[0]].pages == 2


def test_getting_around_the_hold_leaves_the_jobs_held(cups, queues):
    hold, printer, server = queues
    job = cups.submit_job("S002", "no-hold attempt", 1, queue=hold, options=["-H", "no-hold"])
    other = cups.submit_job("S001", "someone else's", 1, queue=hold)

    def as_terminal(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)

    # Claiming another user's name to resume, move or cancel their job, starting the holding
    # queue, or printing straight to the printer: all refused without credentials.
    assert as_terminal("lp", "-h", cups.tcp, "-U", "S001", "-i", str(other), "-H", "resume").returncode != 0
    assert as_terminal("lpmove", "-h", cups.tcp, f"{hold}-{other}", printer).returncode != 0
    assert as_terminal("cancel", "-h", cups.tcp, "-U", "S001", f"{hold}-{other}").returncode != 0
    assert as_terminal("cupsenable", "-h", cups.tcp, "-U", "S002", hold).returncode != 0
    assert cups.submit("S002", "straight to the printer", 1, queue=printer).returncode != 0
    time.sleep(1.0)  # long enough for anything that slipped through to print
    assert sorted(cups.jobs(hold)) == sorted([(job, "S002"), (other, "S001")])
    assert [p for p in cups.printed() if p[0] == printer] == []
    assert "disabled" in cups.queue_state(hold)


def test_a_started_holding_queue_is_stopped_again_by_the_next_check(cups, queues):
    hold, _printer, server = queues
    cups.submit_job("S001", "waiting", 1, queue=hold)
    subprocess.run(["cupsenable", "-h", cups.socket, hold], check=True, timeout=15)
    server.check()
    assert "disabled" in cups.queue_state(hold)


def test_expired_jobs_are_cancelled_and_gone_from_the_queue(cups, queues):
    hold, _printer, server = queues
    old = cups.submit_job("S002", "left behind", 1, queue=hold)
    keep = cups.submit_job("S001", "still wanted", 1, queue=hold)
    found = server.check()
    assert found.error is None and {j.id for j in found.held} == {old, keep}
    assert found.server_time and abs(found.server_time - time.time()) < 5
    result = server.cancel([j for j in found.held if j.id == old])
    assert [j.id for j in result.cancelled] == [old]
    assert cups.jobs(hold) == [(keep, "S001")]


def test_cups_down_releases_nothing_and_the_jobs_are_still_held_after_it_returns(tmp_path):
    with Cups() as own:
        own.add_queues("hold", "print")
        job = own.submit_job("S001", "waiting through an outage", 1, queue="hold")
        server = CupsPrintServer(own.socket, holding_queue="hold", printer_queue="print",
                                 admin_user=own.admin_user, timeout_s=2)
        own.stop()
        started = time.monotonic()
        assert server.release("S001").error == "cups_down"
        assert server.check().error == "cups_down"
        assert time.monotonic() - started < 5  # a refused connection is noticed at once
        own.start()
        assert own.jobs("hold") == [(job, "S001")]
        assert [j.id for j in server.release("S001").released] == [job]
        server.close()


def test_the_stand_in_behaves_like_the_holding_queue():
    server = StandInPrintServer()
    a = server.submit("S001", "mine", 2)
    b = server.submit("S002", "theirs", 1)
    server.up = False
    assert server.release("S001").error == "cups_down" and len(server.held_jobs()) == 2
    server.up = True
    assert [j.id for j in server.release("S001").released] == [a.id]
    assert [j.id for j in server.held_jobs()] == [b.id]
    assert server.job_states([a.id])[0].pages == 2
