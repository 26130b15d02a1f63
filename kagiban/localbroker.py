"""A mosquitto broker run as a plain process on a loopback port with its own generated config.

Used by ``kagiban demo`` and by the tests and benchmarks: no systemd, no shared broker, stopped
with the process that started it. (A deployment's broker is configured by
config/mosquitto/kagiban.conf instead.)
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class BrokerUnavailable(RuntimeError):
    """mosquitto is not installed or did not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """One mosquitto broker bound to 127.0.0.1:port, configured for the hub's needs."""

    def __init__(self, workdir: Path, port: int | None = None, extra_config: str = ""):
        self.exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
        if self.exe is None:
            raise BrokerUnavailable("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
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
