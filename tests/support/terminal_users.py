"""OS accounts for the people who print in the tests: the print server's holding queue takes a
job only from an authenticated user (peer credentials on its socket, PAM passwords over TCP), so
each name a test prints as must be a real account on this machine.

As root (CI: a fresh container) a missing account is made as a system user without a home or a
login shell, with a random password, and removed when the test process ends. Existing accounts
are used as they are and never removed. Without root a missing account is an error that says so.
"""
from __future__ import annotations

import atexit
import logging
import os
import pwd
import secrets
import subprocess
import threading

_LOG = logging.getLogger(__name__)

_made: dict[str, str] = {}  # name -> password, for accounts made here
_lock = threading.Lock()


class NoSuchUser(RuntimeError):
    """A test prints as an account that does not exist, and it cannot be made here."""


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def ensure(name: str) -> str | None:
    """Make the account ``name`` if it is missing; its password if made here, else None."""
    with _lock:
        if name in _made:
            return _made[name]
        if _exists(name):
            return None
        if os.geteuid() != 0:
            raise NoSuchUser(f"the print tests print as the OS user {name!r}: create it, or run them as root")
        # --badname: the tests' print users are staff numbers such as S001 (capitals).
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        "--badname", name], check=True, capture_output=True, timeout=30)
        password = secrets.token_urlsafe(18)
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True,
                       capture_output=True, timeout=30)
        _made[name] = password
        _LOG.info("made OS user %s for the print tests", name)
        return password


def password(name: str) -> str:
    """The password of an account made here (for HTTP Basic over TCP)."""
    ensure(name)
    try:
        return _made[name]
    except KeyError:
        raise NoSuchUser(f"{name!r} existed before the tests: its password is not known here") from None


@atexit.register
def remove_all() -> None:
    """Remove the accounts made here."""
    with _lock:
        for name in list(_made):
            done = subprocess.run(["userdel", name], capture_output=True, text=True, timeout=30, check=False)
            if done.returncode != 0:
                _LOG.warning("could not remove the test user %s: %s", name, done.stderr.strip())
            _made.pop(name, None)
