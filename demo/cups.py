"""A CUPS print server run as a plain process on loopback with its own folders and generated
config, for ``kagiban demo`` and the tests.

It has its own ServerRoot, spool, state and logs in one folder, listens on a free loopback
port and on a unix socket (where terminals print as their OS users and a printer unit releases
jobs, each known by its peer credentials; the holding queue takes only signed-in users' jobs),
and applies the repository's print-server policy (config/cups/cupsd.conf). The queues are made by
scripts/kagiban-print-server-setup, as on a real print server. The stand-in printer is the
``file:///dev/null`` device with the generic PDF PPD: CUPS runs its real filters and records
each printed job (owner, pages) in its page log. (Only /dev/null: any other ``file:`` device
needs ``FileDevice Yes``, which cups-files.conf(5) lists as deprecated.) No systemd, no shared
CUPS: it is stopped with the process that started it. (A deployment's print server is set up
with the script instead.)

The policy and the setup script are read from the source tree, so this works from a checkout
(``pip install -e .``), which is how the demo and the tests run.
"""
from __future__ import annotations

import getpass
import grp
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from demo.broker import free_port

_LOG = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "config" / "cups" / "cupsd.conf"
SETUP = ROOT / "scripts" / "kagiban-print-server-setup"
PDF_PPD = Path("/usr/share/ppd/cupsfilters/Generic-PDF_Printer-PDF.ppd")
TOOLS = ("cupsd", "lpadmin", "lp", "lpstat", "ipptool")
DEBS = "cups, cups-client, cups-bsd, cups-ipp-utils"
START_S = 10.0
# The only file device CUPS allows without the deprecated "FileDevice Yes".
STANDIN_DEVICE = "file:///dev/null"
# A unix socket's path must fit in sockaddr_un (108 bytes with the terminating NUL).
SOCKET_PATH_MAX = 100
# As root, cupsd runs its filters as this user (its default User), who must reach the folder.
FILTER_USER = "lp"


class CupsUnavailable(RuntimeError):
    """cupsd cannot run here, or did not start."""


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


def available() -> str | None:
    """None if a local cupsd can run here, else why not (in words to show the user)."""
    for tool in TOOLS:
        if _tool(tool) is None:
            return f"{tool} is not installed (Debian packages {DEBS})"
    if not PDF_PPD.exists():
        return f"{PDF_PPD} is missing (Debian package cups-filters, which cups depends on)"
    for path in (POLICY, SETUP):
        if not path.exists():
            return f"{path} is missing (a local print server runs from a source checkout)"
    return None


def _filter_account():
    """(uid, gids) of the user cupsd runs its filters as, when that is not us; else None."""
    if os.geteuid() != 0:
        return None  # a cupsd run by anyone but root runs its filters as that same user
    try:
        account = pwd.getpwnam(FILTER_USER)
    except KeyError:
        return None  # no such user: cupsd will say what it uses
    return account.pw_uid, {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if FILTER_USER in g.gr_mem}


def _passable(path: Path, uid: int, gids: set[int]) -> bool:
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def unreachable_for_filters(folder: Path) -> Path | None:
    """The first existing folder on the way to (and including) ``folder`` that cupsd's filters
    cannot pass through, or None."""
    account = _filter_account()
    if account is None:
        return None
    folder = Path(folder).resolve()
    for part in [*reversed(folder.parents), folder]:
        if not part.exists():
            break
        if not _passable(part, *account):
            return part
    return None


def let_filters_through(folder: Path) -> None:
    """Let cupsd's filters pass through ``folder`` (not list it): as root, a private folder such
    as the demo's gets the filter user's group with search permission only."""
    account = _filter_account()
    folder = Path(folder)
    if account is None or _passable(folder, *account):
        return
    os.chown(folder, -1, pwd.getpwnam(FILTER_USER).pw_gid)
    os.chmod(folder, stat.S_IMODE(folder.stat().st_mode) | stat.S_IXGRP)


def make_pdf(path: Path, pages: int) -> Path:
    """A PDF of ``pages`` blank pages (what a terminal would send)."""
    from PIL import Image

    sheets = [Image.new("RGB", (210, 297), "white") for _ in range(pages)]
    sheets[0].save(path, save_all=True, append_images=sheets[1:])
    return path


def _run(args: list[str], timeout: float = 15.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, LANG="C")
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def lp(server: str, queue: str, user: str, title: str, document: Path,
       options: list[str] | tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """What a signed-in terminal does: ``lp`` as the OS user ``user``.

    The holding queue takes a job only from an authenticated user (config/cups/cupsd.conf). On
    the unix socket ``server`` CUPS knows the user by the peer credentials of the process, so
    ``lp`` runs as ``user``: directly when that is who runs this, through ``runuser`` as root.
    Over TCP (``host:port``) lp would need the user's password, which it reads only from a
    terminal: it is refused there, like ``lp -U``. A refusal comes back as a failed process.
    """
    # The document goes in on stdin: the user need not be able to read the file's folder.
    args = [_tool("lp") or "lp", "-h", server, "-d", queue, "-t", title, *options]
    if server.startswith("/") and user != getpass.getuser():
        if os.geteuid() != 0:
            return subprocess.CompletedProcess(args, 1, "", f"lp: only root can print as {user} here")
        args = [_tool("runuser") or "runuser", "-u", user, "--", *args]
    elif not server.startswith("/"):
        args[1:1] = ["-U", user]
    done = subprocess.run(args, input=Path(document).read_bytes(), capture_output=True, timeout=15.0,
                          env=dict(os.environ, LANG="C"), check=False, cwd="/")
    return subprocess.CompletedProcess(args, done.returncode, done.stdout.decode(errors="replace"),
                                       done.stderr.decode(errors="replace"))


def job_id(done: subprocess.CompletedProcess) -> int:
    """The job id ``lp`` printed; RuntimeError if it refused."""
    found = re.search(r"request id is \S+-(\d+)", done.stdout)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"lp refused: {done.stdout} {done.stderr}".strip())
    return int(found.group(1))


class LocalCups:
    """One cupsd with its files in ``folder``: ``start()``, ``stop()``, ``close()``,
    ``add_queues()``, ``submit()``, ``jobs()``, ``printed()``."""

    def __init__(self, folder: Path, *, log_level: str = "info"):
        reason = available()
        if reason is not None:
            raise CupsUnavailable(reason)
        self.dir = Path(folder).resolve()
        # The folder itself is made passable below; the ones above it are not ours to change.
        blocked = unreachable_for_filters(self.dir.parent)
        if blocked is not None:
            raise CupsUnavailable(
                f"the print filters run as the {FILTER_USER} user, who cannot pass through {blocked} "
                f"(mode {stat.S_IMODE(blocked.stat().st_mode):o}); use a folder it can reach")
        self.dir.mkdir(parents=True, exist_ok=True)
        # Filters running as the filter user read the spool and the PPDs and write the output.
        os.chmod(self.dir, 0o755)
        for sub in ("root", "spool", "state", "cache", "tmp", "log", "docs"):
            (self.dir / sub).mkdir(exist_ok=True)
            os.chmod(self.dir / sub, 0o755)
        os.chmod(self.dir / "tmp", 0o1777)
        # ServerKeychain (ServerRoot/ssl): cupsd makes its self-signed TLS certificate there on
        # the first ipps:// connection, and serves no TLS when the folder is missing.
        (self.dir / "root" / "ssl").mkdir(mode=0o700, exist_ok=True)
        self.port = free_port()
        # The socket in a short folder of its own, removed by close(): a unix socket's path has
        # a length limit, and the people printing (peer credentials) must reach it, even when
        # ``folder`` is private (the demo's data folder is 0700).
        self._socket_dir: Path | None = Path(tempfile.mkdtemp(prefix="kagiban-cups-"))
        os.chmod(self._socket_dir, 0o755)
        path = self._socket_dir / "cups.sock"
        assert len(str(path)) <= SOCKET_PATH_MAX, path
        self.socket = str(path)
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self._pdfs: dict[int, Path] = {}
        self._write_config()

    @property
    def tcp(self) -> str:
        """Where terminals print to: 127.0.0.1:PORT."""
        return f"127.0.0.1:{self.port}"

    @property
    def admin_user(self) -> str:
        """The OS user running this: in SystemGroup, so its peer credentials may release."""
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
            # A value is required: cupsd 2.4.2-3+deb12u11 (Debian security update of 2026-12-01)
            # refuses a bare "Printcap" line and will not start. Left out it would write the
            # system's /run/cups/printcap; this server's list of queues stays in its own folder
            # (docs/platform-facts.md).
            f"Printcap {self.dir / 'state' / 'printcap'}",
            f"SystemGroup {group}",
            "",
        ]))
        policy = POLICY.read_text()
        # The repository's policy with this server's addresses (loopback only).
        policy = re.sub(r"(?m)^(Listen|Port) .*\n", "", policy)
        policy = re.sub(r"(?m)^LogLevel .*$", f"LogLevel {self.log_level}", policy)
        policy = policy.replace("# Listen lines:",
                                f"Listen 127.0.0.1:{self.port}\nListen {self.socket}\n# Listen lines:")
        (self.dir / "cupsd.conf").write_text(policy)

    def start(self) -> LocalCups:
        """Start cupsd and wait until it answers on its socket and its port."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        log = open(self.dir / "log" / "cupsd.out", "ab")
        # Its own session: a Ctrl-C at the terminal reaches the demo, which stops cupsd in order.
        self.proc = subprocess.Popen(
            [_tool("cupsd") or "cupsd", "-f", "-c", str(self.dir / "cupsd.conf"),
             "-s", str(self.dir / "cups-files.conf")],
            stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise CupsUnavailable(f"cupsd exited with {code}: {self.error_log()[-2000:]}")
            if os.path.exists(self.socket) and self._port_open():
                _LOG.info("cupsd listening on %s and %s", self.tcp, self.socket)
                return self
            time.sleep(0.05)
        self.stop()
        raise CupsUnavailable(f"cupsd did not start within {START_S:.0f} s: {self.error_log()[-2000:]}")

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
        """Stop, and remove what was made outside the folder (the folder itself stays)."""
        self.stop()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def __enter__(self) -> LocalCups:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def error_log(self) -> str:
        path = self.dir / "log" / "error_log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- queues and jobs ---

    def add_queues(self, hold: str, printer: str) -> None:
        """The holding and printer queues, made by the repository's setup script; the printer
        runs CUPS's filters and prints to /dev/null (the page log records each job)."""
        out = _run([str(SETUP), "--queues-only", "--server", self.socket, "--hold-queue", hold,
                    "--print-queue", printer, "--device-uri", STANDIN_DEVICE,
                    "--ppd", str(PDF_PPD)], timeout=30)
        if out.returncode != 0:
            raise CupsUnavailable(f"setup script failed: {out.stdout}\n{out.stderr}")

    def document(self, pages: int) -> Path:
        """A blank PDF of ``pages`` pages in docs/ (made once per page count)."""
        pdf = self._pdfs.get(pages) or make_pdf(self.dir / "docs" / f"doc-{pages}.pdf", pages)
        self._pdfs[pages] = pdf
        return pdf

    def submit(self, user: str, title: str, pages: int = 1, *, queue: str,
               options: list[str] | tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """What a signed-in terminal does: ``lp`` on the socket as the OS user ``user``."""
        return lp(self.socket, queue, user, title, self.document(pages), options)

    def submit_job(self, user: str, title: str, pages: int = 1, *, queue: str,
                   options: list[str] | tuple[str, ...] = ()) -> int:
        """Submit and return the job id (RuntimeError if refused)."""
        return job_id(self.submit(user, title, pages, queue=queue, options=options))

    def jobs(self, queue: str, which: str = "not-completed") -> list[tuple[int, str]]:
        """(job id, owner) of a queue's jobs, as an administrator on the socket sees them."""
        out = _run(["lpstat", "-h", self.socket, "-W", which, "-o", queue])
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
        out = _run(["lpstat", "-h", self.socket, "-p", queue])
        return out.stdout.strip()
