"""A real cupsd for tests (demo.cups): its own ServerRoot, spool, state and logs in a
private folder, a free loopback port and a unix socket, the repository's print-server policy
(config/cups/cupsd.conf) and queues made by scripts/kagiban-print-server-setup. The stand-in
printer is a ``file:`` device with the generic PDF PPD: CUPS runs its real filters and records
each printed job (owner, pages) in its page log.

No test depends on a CUPS that happens to be running: each gets one of these (or shares the
session's), and can stop and restart it.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from demo.cups import PDF_PPD, CupsUnavailable, LocalCups, available, make_pdf
from tests.support import terminal_users

__all__ = ["PDF_PPD", "PRINTER", "TRAY_PIN", "Cups", "CupsUnavailable", "available", "make_pdf", "set_tray",
           "write_printer_config", "write_printer_hub_config"]


class Cups(LocalCups):
    """One test cupsd in a fresh temporary folder (or ``folder``), removed by ``close()``."""

    def __init__(self, folder: Path | None = None):
        # Filters run as the "lp" user when the tests run as root: a folder under /tmp, not
        # a 0700 tmp_path.
        made = None if folder else Path(tempfile.mkdtemp(prefix="kagiban-cups-"))
        try:
            super().__init__(folder or made)
        except Exception:
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
            raise

    def submit(self, user: str, title: str, pages: int = 1, *, queue: str,
               options: list[str] | tuple[str, ...] = ()):
        """``lp`` on the socket as the OS user ``user`` (made for the test run if missing)."""
        terminal_users.ensure(user)
        return super().submit(user, title, pages, queue=queue, options=options)

    def close(self) -> None:
        """Stop and remove the folder."""
        super().close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- a printer unit and its hub for end-to-end tests ---

PRINTER = "printer-1"
TRAY_PIN = 5


def write_printer_hub_config(tmp: Path, broker_port: int, prefix: str, **sections) -> Path:
    """The stack's hub file with one printer station (kind printer, named for the pages)."""
    import yaml

    from tests.support.stack import write_hub_config

    path = write_hub_config(tmp, broker_port, prefix, stations=(PRINTER,))
    cfg = yaml.safe_load(path.read_text())
    cfg["stations"] = [{"id": PRINTER, "site": "ward-a", "kind": "printer", "name": "Printer 1F"}]
    cfg.update(sections)
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path


def write_printer_config(tmp: Path, broker_port: int, prefix: str, cups: Cups, hold: str, printer: str,
                         **timings) -> Path:
    """A simulated printer unit (mock pins, stand-in reader and camera) on the test's cupsd."""
    import yaml

    from tests.support.stack import policy_public_key

    cfg = {
        "site": "ward-a",
        "station": {"id": PRINTER, "kind": "printer"},
        "pins": {"factory": "mock", "tray": TRAY_PIN, "led_granted": 22, "led_denied": 23, "buzzer": 24},
        "reader": {"type": "standin"},
        "camera": {"type": "standin", "width": 320, "height": 240},
        "broker": {"host": "127.0.0.1", "port": broker_port, "prefix": prefix, "keepalive_s": 5},
        "timings": {"debounce_ms": 20, "heartbeat_s": 2, "ack_timeout_s": 2, **timings},
        "printer": {"server": cups.socket, "holding_queue": hold, "printer_queue": printer,
                    "admin_user": cups.admin_user, "timeout_s": 3, "check_s": 1},
        "storage": {"dir": f"./{PRINTER}-data"},
        "policy": {"public_key": policy_public_key(tmp)},
    }
    path = tmp / f"{PRINTER}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def set_tray(agent, occupied: bool) -> None:
    """Paper on (or off) the tray sensor's mock pin."""
    from device.simulate import set_input

    set_input(agent, "tray", occupied)
