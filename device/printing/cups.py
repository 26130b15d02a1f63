"""The CUPS adapter: the printer station's requests to the print server, through ``ipptool``.

Pull printing as it holds (see config/cups/cupsd.conf): terminals print to a *stopped*
holding queue, so nothing there prints, whatever hold option a client sends (``lp -H
no-hold`` included). A badge tap releases one user's jobs with CUPS-Move-Job to the real
printer queue, then Release-Job for any still marked held. The print server's policy lets only
``@SYSTEM`` (authenticated) move, release, cancel or change jobs, so a terminal that claims
another user's name cannot release that user's printouts; and it takes a job only from an
authenticated user, who is its owner. A job that names more than one owner is released to
nobody (see ``_Attributes``).

Why ``ipptool`` (Debian ``cups-ipp-utils``) run as a subprocess, rather than pycups:

- every request is bounded: ``-T`` limits each network wait and the subprocess has a hard
  timeout, so a hung print server costs the worker thread seconds, never the unit;
- no C extension to build (pycups needs libcups2-dev and a compiler) and no process-wide
  server/user globals;
- ``-X`` prints the whole IPP response as a property list, which ``plistlib`` reads: job
  owners, titles, states and page counts come out as typed values, not screen text.

Authentication: over the print server's unix socket CUPS identifies the agent's OS user by
its peer credentials (no password; that user must be in the server's ``SystemGroup``). A remote
print server (``host:port``) asks for HTTP Basic: the password (from ``password_env`` or
``password_file``, never YAML) goes to ipptool inside the request URI, which is the only way
ipptool takes one; it is therefore visible in this unit's process list while a request runs.
Prefer the socket (the unit as print server, or CUPS on the same host).
"""
from __future__ import annotations

import logging
import os
import plistlib
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import quote

from device.printing.jobs import (
    HELD,
    PENDING,
    CupsUnavailable,
    ExpireResult,
    HeldJob,
    JobState,
    PrintServerError,
    QueueResult,
    ReleaseResult,
)

_LOG = logging.getLogger(__name__)

DEFAULT_PORT = 631
STOPPED_PRINTER = 5  # IPP printer-state "stopped"
# How much longer than ipptool's own -T the whole subprocess may take (start-up, several requests).
_SLACK_S = 5.0

_HEAD = """  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
"""

_CHECK = """{
  NAME "holding-queue"
  OPERATION Get-Printer-Attributes
%(head)s  ATTR uri printer-uri $hold
  ATTR name requesting-user-name $user
  ATTR keyword requested-attributes printer-state,printer-current-time
  STATUS successful-ok
}
{
  NAME "held-jobs"
  OPERATION Get-Jobs
%(head)s  ATTR uri printer-uri $hold
  ATTR name requesting-user-name $user
  ATTR keyword which-jobs not-completed
  ATTR keyword requested-attributes job-id,job-state,job-originating-user-name,job-name,time-at-creation,job-impressions
  STATUS successful-ok
}
"""

_JOB_STATE = """{
  NAME "state-%(id)d"
  OPERATION Get-Job-Attributes
%(head)s  ATTR uri job-uri $jobs/%(id)d
  ATTR name requesting-user-name $user
  ATTR keyword requested-attributes job-id,job-state,job-impressions-completed
  STATUS successful-ok
}
"""

_MOVE = """{
  NAME "move-%(id)d"
  OPERATION CUPS-Move-Job
%(head)s  ATTR uri printer-uri $hold
  ATTR integer job-id %(id)d
  ATTR name requesting-user-name $user
  GROUP job-attributes-tag
  ATTR uri job-printer-uri $print
  STATUS successful-ok
}
"""

_RELEASE = """{
  NAME "release-%(id)d"
  OPERATION Release-Job
%(head)s  ATTR uri job-uri $jobs/%(id)d
  ATTR name requesting-user-name $user
  STATUS successful-ok
}
"""

# purge-job: the document of an expired job is deleted at once (it may hold personal data);
# the expiry itself is on record in the station's print.expired event.
_CANCEL = """{
  NAME "cancel-%(id)d"
  OPERATION Cancel-Job
%(head)s  ATTR uri job-uri $jobs/%(id)d
  ATTR name requesting-user-name $user
  ATTR boolean purge-job true
  STATUS successful-ok
}
"""

_PAUSE = """{
  NAME "pause-holding-queue"
  OPERATION Pause-Printer
%(head)s  ATTR uri printer-uri $hold
  ATTR name requesting-user-name $user
  STATUS successful-ok
}
"""


class _Attributes(dict):
    """A response group as plistlib builds it, keeping every value of a repeated attribute.

    A client on the print server's own host can send its own ``job-originating-user-name``
    next to the one CUPS records for the authenticated user, and the job then carries both;
    a plain dict would keep the last (the claimed) one.
    """

    def __setitem__(self, key, value):
        if key in self:
            self.repeated = (*getattr(self, "repeated", ()), key)
        super().__setitem__(key, value)


def _owner(group: dict) -> str:
    """The job's owner, or "" (released to nobody) when it carries more than one."""
    if "job-originating-user-name" in getattr(group, "repeated", ()):
        _LOG.warning("job %s names more than one owner: it is released to nobody", group.get("job-id"))
        return ""
    return _text(group.get("job-originating-user-name"))


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value) -> str:
    return value if isinstance(value, str) and value != "<<no-value>>" else ""


class CupsPrintServer:
    """Talks IPP to one CUPS server with ``ipptool``; thread-safe (one request at a time).

    ``server``: a unix socket path (``/run/cups/cups.sock``) or ``host[:port]``.
    ``admin_user``: the user the releases are made as (in the server's SystemGroup); over the
    socket it must be the OS user running the agent (or the agent runs as root).
    """

    def __init__(
        self,
        server: str,
        *,
        holding_queue: str,
        printer_queue: str,
        admin_user: str,
        password: str | None = None,
        timeout_s: float = 10.0,
        ipptool: str = "ipptool",
    ):
        self.server = server
        self.holding_queue = holding_queue
        self.printer_queue = printer_queue
        self.admin_user = admin_user
        self._password = password
        self.timeout_s = timeout_s
        found = shutil.which(ipptool)
        if found is None:
            raise PrintServerError(f"{ipptool} not found: install the Debian package cups-ipp-utils")
        self._ipptool = found
        self._lock = threading.Lock()
        # The request files hold no secrets; a private folder keeps others from swapping them.
        self._dir = Path(tempfile.mkdtemp(prefix="kagiban-ipp-"))

    # --- addresses ---

    def _host(self) -> str:
        if self.server.startswith("/"):
            # libcups reads a %-encoded path in the host part as a unix socket.
            return quote(self.server, safe="")
        host = self.server
        if ":" not in host.rsplit("]", 1)[-1]:
            host = f"{host}:{DEFAULT_PORT}"
        return host

    def _connect_uri(self) -> str:
        host = self._host()
        if self._password is not None and not self.server.startswith("/"):
            # The only way ipptool takes a password (see the module docstring).
            host = f"{quote(self.admin_user, safe='')}:{quote(self._password, safe='')}@{host}"
        return f"ipp://{host}/printers/{quote(self.holding_queue)}"

    def _variables(self) -> dict[str, str]:
        # The server resolves "localhost" in request URIs to itself, local or remote.
        return {
            "hold": f"ipp://localhost/printers/{self.holding_queue}",
            "print": f"ipp://localhost/printers/{self.printer_queue}",
            "jobs": "ipp://localhost/jobs",
            "user": self.admin_user,
        }

    # --- running ipptool ---

    def _run(self, name: str, body: str, requests: int = 1) -> dict[str, dict]:
        """Run the requests in ``body``; their results by test NAME. CupsUnavailable if the
        server cannot be reached or does not answer in time."""
        with self._lock:
            path = self._dir / f"{name}.test"
            path.write_text(body, encoding="utf-8")
            args = [self._ipptool, "-X", "-I", "-T", f"{self.timeout_s:g}"]
            for key, value in self._variables().items():
                args += ["-d", f"{key}={value}"]
            args += [self._connect_uri(), str(path)]
            env = dict(os.environ, CUPS_USER=self.admin_user, LANG="C")
            limit = self.timeout_s * max(1, requests) + _SLACK_S
            started = time.monotonic()
            try:
                done = subprocess.run(args, capture_output=True, timeout=limit, env=env, check=False)
            except subprocess.TimeoutExpired as exc:
                raise CupsUnavailable(f"no answer from {self.server} within {limit:.0f} s") from exc
            except OSError as exc:
                raise CupsUnavailable(f"cannot run ipptool: {exc}") from exc
            _LOG.debug("ipptool %s: rc=%d in %.3f s", name, done.returncode, time.monotonic() - started)
        # With -I ipptool adds a plain-text summary after the property list.
        end = done.stdout.rfind(b"</plist>")
        report: dict[str, Any]
        try:
            report = (plistlib.loads(done.stdout[: end + len(b"</plist>")], dict_type=_Attributes)
                      if end >= 0 else {})
        except Exception:
            report = {}
        tests = {t.get("Name", ""): t for t in report.get("Tests", []) if isinstance(t, dict)}
        if not tests:
            message = report.get("ErrorMessage") or done.stderr.decode(errors="replace").strip()
            raise CupsUnavailable(message or f"ipptool exited with {done.returncode}")
        return tests

    @staticmethod
    def _ok(test: dict | None) -> TypeGuard[dict]:
        return test is not None and test.get("StatusCode") == "successful-ok"

    @staticmethod
    def _groups(test: dict) -> list[dict]:
        return [g for g in test.get("ResponseAttributes", []) if isinstance(g, dict)]

    # --- what the station asks ---

    def _list(self) -> tuple[list[HeldJob], int | None, float | None]:
        tests = self._run("check", _CHECK % {"head": _HEAD}, requests=2)
        answers = []
        for test in (tests.get("holding-queue"), tests.get("held-jobs")):
            if not self._ok(test):
                status = test.get("StatusCode") if test else "no answer"
                raise PrintServerError(f"{self.holding_queue}: {status}")
            answers.append(test)
        queue, jobs = answers
        state, now = None, None
        for group in self._groups(queue):
            state = _int(group.get("printer-state")) or state
            current = group.get("printer-current-time")
            if isinstance(current, datetime):
                # plistlib gives a naive datetime in UTC.
                now = current.replace(tzinfo=timezone.utc).timestamp()
        held = []
        for group in self._groups(jobs):
            job_id, job_state = _int(group.get("job-id")), _int(group.get("job-state"))
            if job_id is None or job_state not in (PENDING, HELD):
                continue
            held.append(HeldJob(
                id=job_id, user=_owner(group),
                title=_text(group.get("job-name")), created=float(_int(group.get("time-at-creation")) or 0),
                pages=_int(group.get("job-impressions")),
            ))
        held.sort(key=lambda j: (j.created, j.id))
        return held, state, now

    def _keep_holding_stopped(self, state: int | None) -> None:
        """A started holding queue would print everything to nowhere: stop it again."""
        if state is None or state == STOPPED_PRINTER:
            return
        _LOG.warning("holding queue %s was started (state %s): stopping it again", self.holding_queue, state)
        tests = self._run("pause", _PAUSE % {"head": _HEAD})
        if not self._ok(tests.get("pause-holding-queue")):
            _LOG.error("could not stop the holding queue %s: %s", self.holding_queue,
                       tests.get("pause-holding-queue", {}).get("StatusCode"))

    def held_jobs(self) -> list[HeldJob]:
        """Every job waiting in the holding queue, oldest first."""
        held, state, _now = self._list()
        self._keep_holding_stopped(state)
        return held

    def check(self, watch: Sequence[int] = ()) -> QueueResult:
        """The holding queue, and the states of the released jobs in ``watch``."""
        try:
            held, state, now = self._list()
            self._keep_holding_stopped(state)
            watched = self.job_states(watch) if watch else []
        except CupsUnavailable as exc:
            _LOG.warning("print server %s unreachable: %s", self.server, exc)
            return QueueResult(error="cups_down")
        return QueueResult(held=tuple(held), watched=tuple(watched), server_time=now)

    def job_states(self, ids: Iterable[int]) -> list[JobState]:
        """The states (and pages printed so far) of jobs by id; unknown ids are left out."""
        ids = [int(i) for i in ids]
        if not ids:
            return []
        tests = self._run("states", "".join(_JOB_STATE % {"head": _HEAD, "id": i} for i in ids), len(ids))
        out = []
        for job_id in ids:
            test = tests.get(f"state-{job_id}")
            if not self._ok(test):
                continue
            for group in self._groups(test):
                if _int(group.get("job-id")) == job_id:
                    out.append(JobState(job_id, _int(group.get("job-state")) or 0,
                                        _int(group.get("job-impressions-completed"))))
        return out

    def release(self, user: str) -> ReleaseResult:
        """Move ``user``'s held jobs to the printer queue (oldest first) and release them."""
        try:
            mine = [j for j in self.held_jobs() if j.user == user]
            if not mine:
                return ReleaseResult(user=user)
            body = "".join(_MOVE % {"head": _HEAD, "id": j.id} for j in mine)
            tests = self._run("move", body, len(mine))
            moved = [j for j in mine if self._ok(tests.get(f"move-{j.id}"))]
            failed = [j for j in mine if j not in moved]
            for j in failed:
                _LOG.error("job %d of %s was not moved: %s", j.id, user,
                           (tests.get(f"move-{j.id}") or {}).get("StatusCode"))
            # A job submitted with a hold (lp -H indefinite) is still held after the move.
            still_held = [s.id for s in self.job_states([j.id for j in moved]) if s.state == HELD]
            if still_held:
                tests = self._run("release", "".join(_RELEASE % {"head": _HEAD, "id": i} for i in still_held),
                                  len(still_held))
                for job_id in still_held:
                    if not self._ok(tests.get(f"release-{job_id}")):
                        _LOG.error("job %d of %s is on the printer queue but still held", job_id, user)
        except CupsUnavailable as exc:
            _LOG.warning("release for %s: print server %s unreachable: %s", user, self.server, exc)
            return ReleaseResult(user=user, error="cups_down")
        return ReleaseResult(user=user, released=tuple(moved), failed=tuple(failed))

    def cancel(self, jobs: Sequence[HeldJob]) -> ExpireResult:
        """Cancel (and purge) held jobs that waited too long."""
        if not jobs:
            return ExpireResult()
        try:
            tests = self._run("cancel", "".join(_CANCEL % {"head": _HEAD, "id": j.id} for j in jobs), len(jobs))
        except CupsUnavailable as exc:
            _LOG.warning("expiry: print server %s unreachable: %s", self.server, exc)
            return ExpireResult(error="cups_down")
        done = tuple(j for j in jobs if self._ok(tests.get(f"cancel-{j.id}")))
        return ExpireResult(cancelled=done, failed=tuple(j for j in jobs if j not in done))

    def close(self) -> None:
        """Remove the request files."""
        shutil.rmtree(self._dir, ignore_errors=True)
