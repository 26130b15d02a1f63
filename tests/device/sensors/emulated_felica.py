"""A FeliCa (Type 3) card emulated with nfcpy's UDP driver, on loopback only.

Run as a script: ``python emulated_felica.py PORT IDM TAPS HOLD_S GAP_S GIVE_UP_S``. The card
is presented TAPS times: each time it waits (at most GIVE_UP_S) to be read, stays on the
reader HOLD_S seconds, then goes away for GAP_S seconds. After each read it prints
"read N HELD": HELD is how long the reader kept talking to it, in seconds.
"""
from __future__ import annotations

import logging
import sys
import time

_LOG = logging.getLogger(__name__)

# A PMm and system code of an ordinary FeliCa Standard card.
_PMM = "03014b024f4993ff"
_SYSTEM_CODE = "0003"


def _loopback_only() -> None:
    """nfcpy's UDP listener binds 0.0.0.0; bind it to 127.0.0.1 instead."""
    import nfc.clf.udp

    def bind(self, time_to_return):
        self.socket.bind(("127.0.0.1", self.addr[1]))
        return True

    nfc.clf.udp.Device._bind_socket = bind


def present(port: int, idm: str, taps: int, hold_s: float, gap_s: float, give_up_s: float) -> int:
    """Present the card ``taps`` times; returns how many times it was read."""
    import nfc

    _loopback_only()

    def on_startup(target):
        target.brty = "212F"
        target.sensf_res = bytearray.fromhex("01" + idm + _PMM + _SYSTEM_CODE)
        return target

    reads = 0
    for _ in range(taps):
        read_at: list[float] = []
        started = time.monotonic()

        def on_connect(tag) -> bool:
            read_at.append(time.monotonic())
            return True

        def terminate() -> bool:
            now = time.monotonic()
            if read_at:
                return now - read_at[0] >= hold_s
            return now - started >= give_up_s

        clf = nfc.ContactlessFrontend(f"udp:127.0.0.1:{port}")
        # Returns when HOLD_S is over, or earlier if the reader switched its field off.
        try:
            clf.connect(card={"on-startup": on_startup, "on-connect": on_connect},
                        terminate=terminate)
            left_at = time.monotonic()
        finally:
            # Closing the port is the card leaving the field: the reader's presence check fails.
            clf.close()
        if not read_at:
            _LOG.warning("card not read within %.1f s", give_up_s)
            break
        reads += 1
        print(f"read {reads} {left_at - read_at[0]:.2f}", flush=True)
        time.sleep(gap_s)
    return reads


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    p, i, n, h, g, u = sys.argv[1:7]
    done = present(int(p), i, int(n), float(h), float(g), float(u))
    sys.exit(0 if done == int(n) else 1)
