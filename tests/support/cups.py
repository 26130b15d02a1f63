"""A real cupsd for tests, started as a plain process with its own ServerRoot, spool, state and
logs in a private folder, on a free loopback port and a unix socket, with the repository's
print-server policy (config/cups/cupsd.conf) and queues made by
scripts/kagiban-print-server-setup. The stand-in printer is a ``file:`` device with the generic
PDF PPD: CUPS runs its real filters and records each printed job (owner, pages) in its page log.

No test depends on a CUPS that happens to be running: each gets one of these (or shares the
session's), and can stop and restart it.
"""
from __future__ import annotations

import getpass
import grp
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from kagiban.localbroker import free_port

_LOG = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "config" / "cups" / "cupsd.conf"
SETUP = ROOT / "scripts" / "kagiban-print-server-setup"
PDF_PPD = Path("/usr/share/ppd/cupsfilters/Generic-PDF_Printer-PDF.ppd")
START_S = 10.0


def available() -> str | None:
    """None if a test cupsd can run here, else why not."""
    for tool in ("cupsd", "lpadmin", "lp", "lpstat", "ipptool"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (Debian cups, cups-client, cups-bsd, cups-ipp-utils)"
    if not PDF_PPD.exists():
        return f"{PDF_PPD} is missing (Debian cups-filters)"
    return None


def make_pdf(path: Path, pages: int) -> Path:
    """A PDF of ``pages`` blank pages (what a terminal would send)."""
    from PIL import Image

    sheets = [Image.new("RGB", (210, 297), "white") for _ in range(pages)]
    sheets[0].save(path, save_all=True, append_images=sheets[1:])
    return path


class Cups:
    """One test cupsd: ``start()``, ``stop()``, ``add_queues()``, ``submit()``, ``held()``."""

    def __init__(self, folder: Path | None = None):
        # Filters run as the "lp" user: the folder must be reachable for it (not a 0700 tmp_path).
        self.dir = Path(folder or tempfile.mkdtemp(prefix="kagiban-cups-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.socket = str(self.dir / "cups.sock")
        self.proc: subprocess.Popen | None = None
        self._pdfs: dict[int, Path] = {}
        for sub in ("root", "spool", "state", "cache", "tmp", "log", "out", "docs"):
            (self.dir / sub).mkdir(exist_ok=True)
            os.chmod(self.dir / sub, 0o755)
        os.chmod(self.dir / "tmp", 0o1777)
        self._write_config()

    @property
    def tcp(self) -> str:
        """Where terminals print to: 127.0.0.1:PORT."""
        return f"127.0.0.1:{self.port}"

    @property
    def admin_user(self) -> str:
        """The OS user this test runs as: SystemGroup, so its peer credentials may release."""
        return getpass.getuser()

    def _write_config(self) -> None:
        group = grp.getgrgid(os.getgid()).gr_name
        (self.dir / "cups-files.conf").write_text("\n".join([
            f"ServerRoot {self.dir / 'root'}",
            f"RequestRoot {self.dir / 'spool'}",
            f"StateDir {self.dir / 'state'}",
            f"CacheDir {self.dir / 'cache'}",
            f"TempDir {self.dir / 'tmp'}",
            f"ErrorLog {self.dir / 'log' / 'error_log'}",
            f"AccessLog {self.dir / 'log' / 'access_log'}",
            f"PageLog {self.dir / 'log' / 'page_log'}",
            "Printcap",
            "FileDevice Yes",  # the stand-in printer writes a file
            f"SystemGroup {group}",
            "",
        ]))
        policy = POLICY.read_text()
        # The repository's policy with this test's addresses (loopback only) and a log to read.
        policy = re.sub(r"(?m)^(Listen|Port) .*\n", "", policy)
        policy = policy.replace("LogLevel warn", "LogLevel info")
        policy = policy.replace("# Listen lines:",
                                f"Listen 127.0.0.1:{self.port}\nListen {self.socket}\n# Listen lines:")
        (self.dir / "cupsd.conf").write_text(policy)

    def start(self) -> "Cups":
        """Start cupsd and wait until it answers on its socket and its port."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        log = open(self.dir / "log" / "cupsd.out", "ab")
        cupsd = shutil.which("cupsd") or "/usr/sbin/cupsd"
        self.proc = subprocess.Popen(
            [cupsd, "-f", "-c", str(self.dir / "cupsd.conf"), "-s", str(self.dir / "cups-files.conf")],
            stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cupsd exited with {self.proc.returncode}: {self.error_log()[-2000:]}")
            if os.path.exists(self.socket) and self._port_open():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"cupsd did not start within {START_S} s: {self.error_log()[-2000:]}")

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop cupsd (jobs stay in its spool for the next start)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        """Stop and remove the folder."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Cups":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def error_log(self) -> str:
        path = self.dir / "log" / "error_log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- queues and jobs ---

    def _run(self, args: list[str], timeout: float = 15.0) -> subprocess.CompletedProcess:
        env = dict(os.environ, LANG="C")
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, check=False)

    def add_queues(self, hold: str, printer: str) -> None:
        """The holding and printer queues, made by the repository's setup script."""
        out = self._run([str(SETUP), "--queues-only", "--server", self.socket, "--hold-queue", hold,
                         "--print-queue", printer, "--device-uri", f"file://{self.dir / 'out' / printer}.pdf",
                         "--ppd", str(PDF_PPD)], timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"setup script failed: {out.stdout}\n{out.stderr}")

    def submit(self, user: str, title: str, pages: int = 1, *, queue: str,
               options: list[str] = ()) -> subprocess.CompletedProcess:
        """What a terminal does: ``lp`` over TCP as ``user`` (no password, like any terminal)."""
        pdf = self._pdfs.get(pages) or make_pdf(self.dir / "docs" / f"doc-{pages}.pdf", pages)
        self._pdfs[pages] = pdf
        return self._run(["lp", "-h", self.tcp, "-U", user, "-d", queue, "-t", title, *options, str(pdf)])

    def submit_job(self, user: str, title: str, pages: int = 1, *, queue: str, options: list[str] = ()) -> int:
        """Submit and return the job id (RuntimeError if refused)."""
        out = self.submit(user, title, pages, queue=queue, options=options)
        found = re.search(r"request id is \S+-(\d+)", out.stdout)
        if out.returncode != 0 or not found:
            raise RuntimeError(f"lp refused: {out.stdout} {out.stderr}")
        return int(found.group(1))

    def jobs(self, queue: str, which: str = "not-completed") -> list[tuple[int, str]]:
        """(job id, owner) of a queue's jobs, as an administrator on the socket sees them."""
        out = self._run(["lpstat", "-h", self.socket, "-W", which, "-o", queue])
        found = []
        for line in out.stdout.splitlines():
            m = re.match(rf"^{re.escape(queue)}-(\d+)\s+(\S+)", line)
            if m:
                found.append((int(m.group(1)), m.group(2)))
        return found

    def printed(self) -> list[tuple[str, str, int, int]]:
        """(printer, owner, job id, pages) of every job CUPS printed, from its page log."""
        path = self.dir / "log" / "page_log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(errors="replace").splitlines():
            m = re.match(r"^(\S+) (\S+) (\d+) \[[^\]]*\] total (\d+)", line)
            if m:
                out.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4))))
        return out

    def queue_state(self, queue: str) -> str:
        """``lpstat -p`` of a queue ("disabled", "idle", ...)."""
        out = self._run(["lpstat", "-h", self.socket, "-p", queue])
        return out.stdout.strip()


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
