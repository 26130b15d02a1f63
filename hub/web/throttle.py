"""Password guessing on the web page, slowed down and shut out (Flask-Limiter).

Every failed sign-in, on the sign-in page or over HTTP Basic, counts against the account it
named and against the address it came from, in the app's Flask-Limiter storage (moving
windows). Before a password is checked, both are tested against their limits
(``web.signin.account_limits`` / ``address_limits``): when any limit is full, the attempt is
refused with 429 and ``Retry-After``, the right password too. The limits are tiers (by
default 3 per 10 s, 5 per minute, 10 per 15 minutes, 20 per hour for an account), so the wait
grows with the failures and the last tiers are a temporary lockout. A success does not clear
the counts: only time does, or an admin on the sign-in locks page (hub.web.lock_pages), which
lists the accounts and addresses refused now and clears one of them (``unlock``).

Every POST to the sign-in page also counts against ``attempts_per_address`` (a Flask-Limiter
route limit): each costs an argon2 check, so nobody can keep the hub's cores hashing.

When an account or an address reaches ``alert_after`` failed or refused attempts, one
``signin_failures`` alert per window (for that account and that address together) is raised through the hub's AlertCenter (stored in the alert trail, sent to the
supervisors of every site).

Counts live in the hub process (``memory://``): a restart forgets them, and behind a reverse
proxy the address is the browser's only with ``web.trusted_proxy`` set.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse, parse_many

from hub.alerting.wording import alert_text
from hub.config import HubConfig
from hub.store.timestamps import now_utc

_LOG = logging.getLogger(__name__)

EXTENSION_KEY = "kagiban_signin"
RULE = "signin_failures"
SCOPES = ("account", "address")


@dataclass(frozen=True)
class Refusal:
    """An attempt refused before its password was checked: which count is full, how long to wait."""

    scope: str  # "account" or "address"
    retry_after_s: int


@dataclass(frozen=True)
class Lock:
    """An account or address refused now: its failures in the longest window, the wait left."""

    scope: str  # "account" or "address"
    name: str  # the account key or the address
    failures: int
    retry_after_s: int


# How many counted accounts/addresses the guard remembers for the locks page before it
# forgets the stale ones (an address spraying random names must not grow it for ever).
_TRACKED_MAX = 4096


def account_key(username: str | None) -> str:
    """The count an attempt for ``username`` goes to (case and spaces do not make a new one)."""
    return (username or "").strip().lower()[:64]


class SignInGuard:
    """The counts and limits of one app; ``guard()`` finds it from a request."""

    def __init__(self, app: Flask, cfg: HubConfig, alerts: Any):
        settings = cfg.web.signin
        self.cfg = cfg
        self.alerts = alerts  # hub.alerting.alerts.AlertCenter, or None: the alert is only logged
        self.limiter = Limiter(get_remote_address, app=app, storage_uri="memory://",
                               strategy="moving-window", key_prefix="kagiban",
                               # Its headers would put the route window's end in Retry-After on
                               # every answer; ours say the real wait, on refusals only.
                               headers_enabled=False)
        self._limits = {"account": parse_many(settings.account_limits),
                        "address": parse_many(settings.address_limits)}
        self._alert = parse(settings.alert_after)
        # One alert per window and count: hit once, full until the window has passed.
        self._alerted = type(self._alert)(1, self._alert.multiples)
        self.attempts_per_address = settings.attempts_per_address
        # The counts the storage holds, to list them (memory:// cannot be enumerated): key ->
        # time of the last failure; a count is forgotten once its longest window has passed.
        self._tracked: dict[tuple[str, str], float] = {}
        self._tracked_lock = threading.Lock()
        self._longest_s = max(item.get_expiry() for items in self._limits.values() for item in items)
        app.extensions[EXTENSION_KEY] = self

    def limit_view(self, app: Flask, endpoint: str) -> None:
        """Every POST to ``endpoint`` counts against ``attempts_per_address``."""
        # Flask-Limiter types the wrapped view as possibly async; it wraps this sync view as sync.
        app.view_functions[endpoint] = self.limiter.limit(  # type: ignore[assignment]
            self.attempts_per_address, methods=["POST"], on_breach=_breached)(app.view_functions[endpoint])

    def _counts(self, username: str | None, address: str | None) -> list[tuple[str, str]]:
        return [("account", f"account/{account_key(username)}"), ("address", f"address/{address or '?'}")]

    def refusal(self, username: str | None, address: str | None) -> Refusal | None:
        """Why an attempt must be refused now (the longest wait of any full limit), or None."""
        strategy = self.limiter.limiter
        now = time.time()
        worst: Refusal | None = None
        for scope, key in self._counts(username, address):
            for item in self._limits[scope]:
                if strategy.test(item, key):
                    continue
                reset = strategy.get_window_stats(item, key).reset_time
                wait = max(1, math.ceil(reset - now))
                if worst is None or wait > worst.retry_after_s:
                    worst = Refusal(scope, wait)
        return worst

    def failed(self, username: str | None, address: str | None, via: str) -> None:
        """Count a failed attempt (``via`` "form" or "basic"); raise the alert at the threshold."""
        strategy = self.limiter.limiter
        for scope, key in self._counts(username, address):
            for item in self._limits[scope]:
                strategy.hit(item, key)
        self._track([(scope, key.split("/", 1)[1]) for scope, key in self._counts(username, address)])
        self._count_for_alert(username, address, via)

    def _track(self, names: list[tuple[str, str]]) -> None:
        now = time.time()
        with self._tracked_lock:
            for name in names:
                self._tracked[name] = now
            if len(self._tracked) > _TRACKED_MAX:
                self._forget_stale(now)

    def _forget_stale(self, now: float) -> None:
        stale = [name for name, last in self._tracked.items() if now - last > self._longest_s]
        for name in stale:
            del self._tracked[name]
        if len(self._tracked) > _TRACKED_MAX:  # still too many: keep the newest
            newest = sorted(self._tracked.items(), key=lambda kv: kv[1])[-_TRACKED_MAX:]
            self._tracked = dict(newest)

    def locks(self) -> list[Lock]:
        """Every account and address refused now, the longest wait first."""
        strategy = self.limiter.limiter
        now = time.time()
        with self._tracked_lock:
            self._forget_stale(now)
            names = list(self._tracked)
        found = []
        for scope, name in names:
            key = f"{scope}/{name}"
            waits = [strategy.get_window_stats(item, key).reset_time - now
                     for item in self._limits[scope] if not strategy.test(item, key)]
            if not waits:
                continue
            longest = max(self._limits[scope], key=lambda item: item.get_expiry())
            failures = longest.amount - strategy.get_window_stats(longest, key).remaining
            found.append(Lock(scope, name, failures, max(1, math.ceil(max(waits)))))
        return sorted(found, key=lambda lock: (-lock.retry_after_s, lock.scope, lock.name))

    def unlock(self, scope: str, name: str) -> bool:
        """Clear the failed sign-ins of one account (its key) or address, so its next attempt is
        checked at once; True if it was refused until now. Its alert counts stay (the alert
        was raised already)."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        strategy = self.limiter.limiter
        key = f"{scope}/{name}"
        was_refused = any(not strategy.test(item, key) for item in self._limits[scope])
        for item in self._limits[scope]:
            strategy.clear(item, key)
        with self._tracked_lock:
            self._tracked.pop((scope, name), None)
        return was_refused

    def refused_attempt(self, username: str | None, address: str | None, via: str) -> None:
        """Count an attempt refused unchecked: towards the alert only (the wait must not grow
        for ever while someone keeps knocking, or the account's owner is shut out for good)."""
        self._count_for_alert(username, address, via)

    def _count_for_alert(self, username: str | None, address: str | None, via: str) -> None:
        strategy = self.limiter.limiter
        counts = self._counts(username, address)
        reached = []
        for scope, key in counts:
            strategy.hit(self._alert, "alert/" + key)
            if not strategy.test(self._alert, "alert/" + key):
                reached.append(scope)
        # One alert per account, or per address, and window; at most one per attempt (the
        # account's first: an address is named on its own only when it sprays many accounts).
        fresh = [scope for scope, key in counts if scope in reached and strategy.test(self._alerted, "alerted/" + key)]
        if not fresh:
            return
        for _scope, key in counts:
            strategy.hit(self._alerted, "alerted/" + key)
        self._raise(fresh[0], username, address, via)

    def _raise(self, scope: str, username: str | None, address: str | None, via: str) -> None:
        minutes = round(self._alert.get_expiry() / 60, 1)
        window_min = int(minutes) if minutes == int(minutes) else minutes
        _LOG.warning("%d failed sign-ins within %s min for %s %r (last via %s from %s): alerting",
                     self._alert.amount, window_min, scope, account_key(username) if scope == "account" else address,
                     via, address)
        if self.alerts is None:
            return
        cfg = self.cfg
        # Web sign-in belongs to no site: every site's supervisors hear of it.
        sites = list(cfg.sites) or sorted({s.site for s in cfg.stations or []}) or ["hub"]
        for site in sites:
            zone = cfg.site_zone(site)
            params = {
                "site": site, "site_name": cfg.site(site).name or site, "station": "web",
                "station_name": "web", "at": now_utc().astimezone(zone).isoformat(), "zone": zone.key,
                "cause": scope, "user": account_key(username) or "?", "address": address or "?",
                "failures": self._alert.amount, "window_min": window_min, "via": via,
            }
            try:
                self.alerts.raise_alert(site=site, station="web", rule=RULE, severity="warning",
                                        message=alert_text(RULE, params, "en"), params=params)
            except Exception:  # the refusal stands even if the alert cannot be stored
                _LOG.exception("raising %s for site %s failed", RULE, site)


def _breached(limit) -> Response:
    """Flask-Limiter's refusal of one POST too many: 429 with the real wait (the page is
    rendered by hub.web.app's error handler)."""
    response = Response(status=429)
    response.headers["Retry-After"] = str(max(1, math.ceil(limit.reset_at - time.time())))
    return response


def guard() -> SignInGuard:
    """The current app's guard."""
    return current_app.extensions[EXTENSION_KEY]


def refused(refusal: Refusal, *, api: bool) -> Response:
    """The 429 answer to a refused attempt: JSON for the API, else the site's own page."""
    if api:
        response = jsonify(error="too_many_attempts",
                           message=f"too many failed sign-ins; try again in {refusal.retry_after_s} s")
    else:
        response = Response(render_template(
            "error.html", title=_("Too many failed sign-ins"),
            message=_("Sign-in is refused for now after too many failed attempts. "
                      "Try again in %(seconds)s seconds.", seconds=refusal.retry_after_s)))
    response.status_code = 429
    response.headers["Retry-After"] = str(refusal.retry_after_s)
    return response
