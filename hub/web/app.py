"""The web page's Flask application, built by ``create_app`` (one per hub, one per test).

Everything but ``/healthz``, the sign-in page, the language switch and static files needs a
signed-in user: a session cookie from the sign-in page, or on each request a personal API
token (``Authorization: Bearer``, hub.web.tokens) or HTTP Basic credentials (for integrations
and Prometheus). Pages redirect to the sign-in page; the JSON API,
``/metrics``, snapshots and the live stream answer 401 with JSON instead.

The session-signing key never comes from the YAML file: ``web.secret_key_env`` names an
environment variable, ``web.secret_key_file`` a file (e.g. a systemd credential); with
neither, a key is generated once into ``data_dir/web-secret-key`` (mode 600), so sessions
survive restarts.

Sessions end: the cookie carries the user's session generation (hub.accounts.users), checked on every
request, so sign-out, a new password and deactivation end every copy of it. Guessed
passwords are throttled on the form and over HTTP Basic alike (hub.web.throttle). With
``web.secure_cookies`` (a hub behind a TLS reverse proxy) the cookie is Secure and answers
carry Strict-Transport-Security. Errors (400 for a bad query value, 403, 404, 429 ...) get the
site's own page in the reader's language, or JSON under the API prefixes.
"""
from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import Babel
from flask_babel import gettext as _
from flask_babel import pgettext
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from hub.accounts import users
from hub.alerting.sinks import Sink
from hub.audit.entries import record_signin
from hub.config import HubConfig
from hub.live import LiveBus
from hub.web.metrics import Stats, make_registry
from hub.web import (
    alert_pages,
    api,
    auth,
    closeout_pages,
    i18n,
    key_pages,
    lock_pages,
    monthly_pages,
    nearmiss_pages,
    rollcall_pages,
    ops,
    pages,
    print_pages,
    procedure_pages,
    registry_pages,
    shred_pages,
    throttle,
    tokens,
    user_pages,
)
from hub.web.query import BadQuery
from hub.web.auth import WebUser
from hub.web.redirects import local_path
from hub.web.state import WebState, state
from kagiban.configfile import ConfigError

_LOG = logging.getLogger(__name__)

SECRET_KEY_FILE_NAME = "web-secret-key"
I18N_DIR_NAME = "i18n"  # compiled message catalogs, in data_dir
# Endpoints anyone may reach; everything else needs a signed-in user.
PUBLIC_ENDPOINTS = {"static", "auth.login", "auth.language", "ops.healthz"}
# Paths that answer 401 JSON instead of redirecting to the sign-in page.
_API_PREFIXES = ("/api/", "/metrics", "/snapshots/", "/events/stream")


def load_secret_key(cfg: HubConfig) -> str:
    """The session-signing key from the environment, a file, or data_dir (made once)."""
    web = cfg.web
    if web.secret_key_env:
        value = os.environ.get(web.secret_key_env, "").strip()
        if not value:
            raise ConfigError(f"web.secret_key_env: the environment variable {web.secret_key_env} is empty or unset")
        return value
    if web.secret_key_file:
        path = cfg._resolve(Path(web.secret_key_file))  # relative to the config file, like every path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"web.secret_key_file: cannot read {path}: {exc}") from exc
        if not value:
            raise ConfigError(f"web.secret_key_file: {path} is empty")
        return value
    path = cfg.data_path() / SECRET_KEY_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two hubs starting at once must not each write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            _LOG.warning("%s can be read by others (mode %o); it should be 600", path, mode & 0o777)
        value = path.read_text(encoding="utf-8").strip()
        if not value:
            raise ConfigError(f"{path} is empty: delete it to have a new key made") from None
        return value
    value = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    _LOG.info("made a new session key in %s", path)
    return value


def create_app(
    engine: Engine,
    cfg: HubConfig,
    *,
    bus: LiveBus,
    alerts: Any = None,
    stats: Stats | None = None,
    digest_sinks: Sequence[Sink] = (),
    overrides: Mapping[str, Any] | None = None,
) -> Flask:
    """The web application over ``engine``; ``overrides`` replace Flask settings (tests)."""
    app = Flask(__name__.rsplit(".", 1)[0])
    app.config.update(
        SECRET_KEY=load_secret_key(cfg),
        SESSION_COOKIE_NAME="kagiban_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # A status page stays open all day: its forms' tokens must not expire after an hour.
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_LOCALE=cfg.web.default_language,
        BABEL_DEFAULT_TIMEZONE=cfg.time_zone,
        BABEL_TRANSLATION_DIRECTORIES=str(i18n.compiled_dir(cfg.data_path() / I18N_DIR_NAME)),
        MAX_CONTENT_LENGTH=64 * 1024,  # forms only; nothing large is ever posted
    )
    if overrides:
        app.config.update(overrides)
    # Japanese names stay readable in the API. (Flask types app.json as the base JSONProvider;
    # the default one it makes, DefaultJSONProvider, has ensure_ascii.)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["kagiban"] = WebState(
        engine=engine, cfg=cfg, bus=bus, alerts=alerts, stats=stats,
        registry=make_registry(engine, stats), digest_sinks=list(digest_sinks),
    )

    signin = throttle.SignInGuard(app, cfg, alerts)
    CSRFProtect(app)
    Babel(app, locale_selector=_select_locale)
    _init_login(app)

    # Every page and API, each a blueprint of its own module.
    for view in (auth, pages, api, ops, shred_pages, closeout_pages, print_pages, registry_pages,
                 tokens, lock_pages, alert_pages, monthly_pages, key_pages, nearmiss_pages,
                 procedure_pages, rollcall_pages, user_pages):
        app.register_blueprint(view.bp)
    pages.register_template_helpers(app)
    signin.limit_view(app, "auth.login")

    if cfg.failover.enabled:
        app.before_request(ops.standby_gate)  # first: a standby serves no page (hub.web.ops)
    app.before_request(_require_login)
    app.before_request(nearmiss_pages.confine_staff)  # staff: the near-miss pages and nothing else
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _select_locale() -> str:
    """The session's choice, else the user's saved one, else the configured default (ja)."""
    lang = _session_lang()
    if lang:
        return lang
    if current_user and current_user.is_authenticated and current_user.language in i18n.LANGUAGES:
        return current_user.language
    return state().cfg.web.default_language


def _session_lang() -> str | None:
    lang = session.get("lang")
    return lang if lang in i18n.LANGUAGES else None


def _init_login(app: Flask) -> None:
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.login_message = None  # the sign-in page explains itself
    manager.session_protection = "basic"

    @manager.user_loader
    def _load(user_id: str):
        try:
            row = users.get_user(state().engine, int(user_id))
        except ValueError:
            return None
        # A session from before the user's last sign-out, new password or deactivation.
        if row is None or session.get("gen") != row["session_gen"]:
            return None
        return WebUser(row)

    @manager.request_loader
    def _basic(req):
        # A personal API token (Authorization: Bearer), or HTTP Basic, for integrations:
        # checked on every request, never turned into a session.
        user = tokens.bearer_user(req)
        if user is not None:
            return user
        auth = req.authorization
        if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
            return None
        guard = throttle.guard()
        refusal = guard.refusal(auth.username, req.remote_addr)
        if refusal is not None:
            _LOG.warning("HTTP Basic sign-in for %r from %s not tried: too many failures", auth.username,
                         req.remote_addr)
            guard.refused_attempt(auth.username, req.remote_addr, "basic")
            g.signin_refusal = refusal  # answered 429 by _unauthorized
            return None
        row = users.authenticate(state().engine, auth.username, auth.password)
        if row is None:
            _LOG.warning("HTTP Basic sign-in refused for %r from %s", auth.username, req.remote_addr)
            guard.failed(auth.username, req.remote_addr, "basic")
            record_signin(state().engine, "refused", auth.username, req.remote_addr, via="basic")
            return None
        g.basic_auth = True
        return WebUser(row)

    @manager.unauthorized_handler
    def _unauthorized():
        refusal = g.get("signin_refusal")
        if refusal is not None:
            return throttle.refused(refusal, api=request.path.startswith(_API_PREFIXES))
        if request.path.startswith(_API_PREFIXES):
            response = jsonify(error="unauthorized", message="sign in, or send HTTP Basic credentials")
            response.status_code = 401
            if request.path.startswith(("/api/", "/metrics")):
                response.headers["WWW-Authenticate"] = 'Basic realm="kagiban", charset="UTF-8"'
            return response
        return redirect(url_for("auth.login", next=local_path(request.full_path)))


def _require_login():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if current_user.is_authenticated:
        return None
    return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]  # set by Flask-Login's init_app


def _security_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    # Only our own files: no inline script, no CDN (the machine may have no internet anyway).
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    web = state().cfg.web
    if web.secure_cookies and web.hsts_max_age_s:
        headers.setdefault("Strict-Transport-Security", f"max-age={web.hsts_max_age_s}")
    if request.endpoint != "static":
        # Pages and exports hold names and times of staff: keep them out of shared caches.
        headers.setdefault("Cache-Control", "no-store")
    return response


def _csrf_failed(error: CSRFError):
    _LOG.warning("refused a POST to %s without a valid CSRF token: %s", request.path, error.description)
    if request.path.startswith(_API_PREFIXES):
        return jsonify(error="csrf", message=error.description), 400
    return render_template(
        "error.html", title=_("The form has expired"),
        message=_("The page was open too long or the form was not sent from this site. "
                  "Reload the page and try again."),
    ), 400


# What each error says on the page, in the reader's language (code -> title, message).
def _error_texts(code: int) -> tuple[str, str]:
    if code == 400:
        return _("The request is not valid"), _("The address holds a value this page cannot use. "
                                                "Check the link, or start again from the status page.")
    if code == 403:
        return _("Not allowed"), _("Your role does not allow this page or action.")
    if code == 404:
        return pgettext("error page", "Not found"), _("There is no such page or record.")
    if code == 405:
        return _("Not allowed"), _("This page cannot be used this way.")
    if code == 413:
        return _("Too large"), _("What was sent is too large.")
    if code == 429:
        return _("Too many requests"), _("Too many requests from this computer. Wait a minute and try again.")
    return _("Something went wrong"), _("The request could not be completed (%(code)s).", code=code)


def _http_error(error: HTTPException):
    """The site's own page (or JSON under the API prefixes) for an HTTP error; redirects pass."""
    if error.code is None or error.code < 400:
        return error
    response = error.get_response()  # keeps Allow, WWW-Authenticate, Retry-After ...
    if request.path.startswith(_API_PREFIXES):
        body = jsonify(error=(error.name or "error").lower().replace(" ", "_"), message=error.description)
        response.set_data(body.get_data())
        response.mimetype = "application/json"
        return response
    title, message = _error_texts(error.code)
    if isinstance(error, ops.StandbyHub):
        title = _("Standby hub")
        message = (_("This hub (%(name)s) is the standby: the active hub %(active)s serves the pages.",
                     name=error.hub, active=error.active) if error.active else
                   _("This hub (%(name)s) is the standby and no hub is active yet.", name=error.hub))
        if error.blocked is not None:
            # The one code a standby's takeover can be blocked by (hub.store.migrate.StoreNewer).
            message = _("This hub (%(name)s) cannot take over: the store is at revision %(store)s, which its "
                        "kagiban does not know (its newest is %(code)s). A newer kagiban migrated the store: "
                        "upgrade kagiban on this machine. Until then it waits and stores nothing.",
                        name=error.hub, store=error.blocked.store_revision, code=error.blocked.code_revision)
    if isinstance(error, BadQuery):
        message = _("“%(name)s” cannot be used here: give %(expected)s.", name=error.param,
                    expected=error.expected_text())
    response.set_data(render_template("error.html", title=title, message=message))
    response.mimetype = "text/html"
    return response
