"""The hub's web page and JSON API (Flask, served by waitress inside the hub process).

``create_app(engine, cfg, bus=..., alerts=..., stats=...)`` builds the application;
``WebServer(app, host, port).start()`` serves it. See hub/web/app.py for sign-in and
secrets, pages.py for the pages, api.py for the JSON API, ops.py for health and metrics.
"""
from hub.web.app import create_app
from hub.web.server import WebServer

__all__ = ["create_app", "WebServer"]
