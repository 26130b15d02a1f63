"""Pull printing for printer stations: the print server adapter, its stand-in, the tray sensor.

- :class:`~device.printing.cups.CupsPrintServer`: CUPS through ``ipptool`` (the only module
  that talks to CUPS);
- :class:`~device.printing.standin.StandInPrintServer`: jobs in memory, for tests and
  simulated units.

``execute`` runs one of the station's print requests (device.stations.effects ReleaseJobs,
CheckQueue, ExpireJobs) against either; the agent calls it on its worker thread.
"""
from __future__ import annotations

import getpass
import logging
from typing import Any, Protocol, Sequence

from device.config import PinsSection, PrinterSection
from device.printing.jobs import (
    ExpireResult,
    HeldJob,
    PrintServerError,
    QueueResult,
    ReleaseResult,
)
from device.stations.effects import CheckQueue, ExpireJobs, ReleaseJobs, Work
from kagiban.configfile import read_secret

_LOG = logging.getLogger(__name__)


class PrintServer(Protocol):
    """What a printer station asks of its print server."""

    def check(self, watch: Sequence[int] = ()) -> QueueResult:
        """The holding queue and the watched released jobs (error "cups_down" if unreachable)."""

    def release(self, user: str) -> ReleaseResult:
        """Send ``user``'s held jobs to the printer; nobody else's."""

    def cancel(self, jobs: Sequence[HeldJob]) -> ExpireResult:
        """Cancel held jobs (expiry)."""

    def close(self) -> None:
        """Release what the adapter holds."""


def make_print_server(section: PrinterSection) -> PrintServer:
    """The unit's print server from its ``printer`` section."""
    if section.backend == "standin":
        from device.printing.standin import StandInPrintServer

        _LOG.info("print server: stand-in (jobs in memory)")
        return StandInPrintServer()
    from device.printing.cups import CupsPrintServer

    password = read_secret(section.password_env, section.password_file, "printer password")
    admin = section.admin_user or getpass.getuser()
    _LOG.info("print server: CUPS at %s, holding queue %s, printer queue %s, releasing as %s",
              section.server, section.holding_queue, section.printer_queue, admin)
    return CupsPrintServer(
        section.server, holding_queue=section.holding_queue, printer_queue=section.printer_queue,
        admin_user=admin, password=password, timeout_s=section.timeout_s,
    )


def make_tray(pins: PinsSection, pin_factory: Any | None = None):
    """The output-tray sensor as a contact that is "closed" while paper lies in the tray, or
    None if no tray pin is configured."""
    if pins.tray is None:
        return None
    from device.sensors.door import GpioDoorSwitch

    return GpioDoorSwitch(pins.tray, closed_level=pins.tray_occupied_level, pin_factory=pin_factory)


def execute(server: PrintServer | None, work: Work):
    """Run one print request; the result for the station logic. Never raises: a print server
    that refuses or fails becomes the result's ``error``."""
    try:
        if server is None:
            raise PrintServerError("this unit has no print server")
        if isinstance(work, ReleaseJobs):
            return server.release(work.user)
        if isinstance(work, CheckQueue):
            return server.check(work.watch)
        if isinstance(work, ExpireJobs):
            return server.cancel(work.jobs)
    except PrintServerError as exc:
        _LOG.error("print server refused %s: %s", type(work).__name__, exc)
        error = "cups_refused"
    except Exception:
        _LOG.exception("print request %s failed", type(work).__name__)
        error = "cups_refused"
    else:
        raise TypeError(f"not a print request: {work!r}")
    if isinstance(work, ReleaseJobs):
        return ReleaseResult(user=work.user, error=error)
    if isinstance(work, ExpireJobs):
        return ExpireResult(error=error)
    return QueueResult(error=error)
