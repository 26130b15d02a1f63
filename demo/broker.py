"""A mosquitto broker run as a plain process on a loopback port with its own generated config.

Used by ``kagiban demo`` and by the tests and benchmarks: no systemd, no shared broker, stopped
with the process that started it. (A deployment's broker is configured by
config/mosquitto/kagiban.conf instead.)

Open to anonymous clients by default (the tests and benchmarks). Given ``users`` (the demo:
:func:`generate_credentials`), it refuses anonymous clients, checks each user's password,
makes the user name the client id (as the deployment's listeners do, so no client can take
another's session) and applies ``acl_file`` (the deployment's ACL) when given.
"""
from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from kagiban.signing import write_private_file

_LOG = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """mosquitto is not installed or did not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate_credentials(folder: Path, names: Iterable[str]) -> dict[str, Path]:
    """A fresh random password for each name, each in its own file ``folder/NAME.password``
    (mode 0600, the folder 0700): what a client's ``broker.password_file`` names. Made anew on
    every call, so a password never outlives the broker it was made for."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    files = {}
    for name in names:
        files[name] = folder / f"{name}.password"
        write_private_file(files[name], secrets.token_urlsafe(24).encode())
    return files


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


class Mosquitto:
    """One mosquitto broker bound to 127.0.0.1:port, configured for the hub's needs.

    ``users`` maps a user name to its password file (see :func:`generate_credentials`); with
    it, only those users get in."""

    def __init__(self, workdir: Path, port: int | None = None, extra_config: str = "",
                 users: Mapping[str, Path] | None = None, acl_file: Path | None = None):
        exe = _tool("mosquitto")
        if exe is None:
            raise BrokerUnavailable("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.exe = exe
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        access = "allow_anonymous true\n"
        if users is not None:
            access = self._access(users, acl_file)
        elif acl_file is not None:
            raise ValueError("an ACL needs users")
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + access
            + "persistence false\n"
            # The default of 1000 silently drops QoS 1 for a slow subscriber (FIELD-NOTES).
            "max_queued_messages 200000\n"
            "max_inflight_messages 100\n"
            "max_packet_size 8388608\n"
            # No Nagle delay on small packets (PUBACK then PUBLISH): up to 40 ms each otherwise.
            "set_tcp_nodelay true\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\n"
            + extra_config
        )
        self.proc: subprocess.Popen | None = None

    def _access(self, users: Mapping[str, Path], acl_file: Path | None) -> str:
        """Config lines for a broker that only ``users`` may use, and their password file."""
        self.workdir.chmod(0o700)
        passwd = self.workdir / "passwd"
        lines = []
        for name, secret_file in users.items():
            password = Path(secret_file).read_text(encoding="utf-8").strip()
            if not name or ":" in name or "\n" in name + password:
                raise ValueError(f"unusable broker user or password for {name!r}")
            lines.append(f"{name}:{password}\n")
        # Plain text into a private file, hashed in place: no password on a command line.
        write_private_file(passwd, "".join(lines).encode())
        tool = _tool("mosquitto_passwd")
        if tool is None:
            raise BrokerUnavailable("mosquitto_passwd is not installed (Debian: apt-get install mosquitto)")
        done = subprocess.run([tool, "-U", str(passwd)], capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            passwd.unlink(missing_ok=True)
            raise BrokerUnavailable(f"mosquitto_passwd -U failed: {done.stderr.strip()[-500:]}")
        config = (
            "allow_anonymous false\n"
            f"password_file {passwd}\n"
            # The client id is the user name: nobody can take another client's session.
            "use_username_as_clientid true\n"
            # Started as root, mosquitto would drop to user "mosquitto", who cannot read the
            # private folder; it stays the user who started it (a no-op for anyone else).
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
        )
        if acl_file is not None:
            config += f"acl_file {Path(acl_file).resolve()}\n"
        _LOG.info("local broker: %d users, anonymous clients refused", len(users))
        return config

    def start(self) -> "Mosquitto":
        """Start the broker and wait until it accepts connections."""
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=logf, stderr=logf
        )
        logf.close()
        deadline = time.monotonic() + 10
        while not self._accepting():
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerUnavailable(f"mosquitto did not listen on port {self.port} within 10 s")
            time.sleep(0.02)
        return self

    def _accepting(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise BrokerUnavailable(f"mosquitto exited: {self.log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop gracefully."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """kill -9: the broker loses everything it held in memory."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
