"""The web page's HTTP server: waitress in a background thread of the hub process.

Each open status page holds one server thread for its live stream, so the pool is larger
than waitress's default and the app refuses streams beyond ``threads - 4`` (pages and
exports always find a free thread).
"""
from __future__ import annotations

import ipaddress
import logging
import threading
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

_LOG = logging.getLogger(__name__)

DEFAULT_THREADS = 16


class WebServer:
    """Serves ``app`` on ``host``:``port`` (0: any free port; ``port`` is the real one after start)."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0, *, threads: int = DEFAULT_THREADS,
                 trusted_proxy: str | None = None):
        self.app = app
        # Only from this address are X-Forwarded-For/-Proto believed: the browser's address
        # for throttling, https for Secure cookies (a TLS reverse proxy on the same machine).
        self.trusted_proxy = trusted_proxy
        self.host = host
        self.port = port
        self.threads = max(threads, 6)
        # waitress's server; Any because its stubs lack effective_port and type trigger as an int.
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> WebServer:
        """Bind and serve in a thread; OSError if the address cannot be bound."""
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = self.host == "localhost"
        if not loopback:
            _LOG.warning("the web page listens on %s, not loopback: put a TLS reverse proxy in front", self.host)
        state = self.app.extensions.get("kagiban")
        if state is not None:
            state.max_streams = self.threads - 4
        proxy: dict[str, Any] = ({"trusted_proxy": self.trusted_proxy, "trusted_proxy_count": 1,
                                  "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"}}
                                 if self.trusted_proxy else {})
        self._server = create_server(
            self.app, host=self.host, port=self.port, threads=self.threads, ident="kagiban",
            # Streams send a keepalive every 15 s; anything silent for 2 minutes is gone.
            channel_timeout=120, clear_untrusted_proxy_headers=True,
            # Lets waitress notice a closed browser while its stream runs (waitress.client_disconnected).
            channel_request_lookahead=1, **proxy,
        )
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._run, args=(self._server,), name="kagiban-web", daemon=True)
        self._thread.start()
        _LOG.info("web page on %s", self.url)
        return self

    def _run(self, server) -> None:
        try:
            server.run()
        except (OSError, ValueError):
            # A socket closed under the loop while stopping is expected; anything else is not.
            if not self._stopping:
                raise

    def stop(self, timeout: float = 5.0) -> None:
        """End live streams, finish running requests (up to ``timeout``), close the socket."""
        server = self._server
        if server is None:
            return
        self._server = None
        self._stopping = True
        state = self.app.extensions.get("kagiban")
        if state is not None:
            state.shutdown.set()  # live streams notice within a second and end
        server.task_dispatcher.shutdown(timeout=timeout)
        # Closing every channel empties waitress's socket map, which ends its loop; done on the
        # loop's own thread (a trigger thunk) so no socket is closed under a running select.
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError as exc:
            # The trigger's pipe is already closed: the loop has ended (or is ending) on its own,
            # so nothing is selecting on the sockets any more and they are closed from here.
            _LOG.warning("web server loop already ended (%s); closing its sockets directly", exc)
            wasyncore.close_all(server._map)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                wasyncore.close_all(server._map)
                self._thread.join(1.0)
                if self._thread.is_alive():
                    _LOG.warning("the web server thread did not end within %.0f s", timeout)
        _LOG.info("web page stopped")
