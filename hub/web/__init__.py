"""The hub's web page and JSON API (Flask, served by waitress inside the hub process).

``hub.web.app.create_app(engine, cfg, bus=..., alerts=..., stats=...)`` builds the application;
``hub.web.server.WebServer(app, host, port).start()`` serves it. See hub/web/app.py for sign-in
and secrets, pages.py for the pages, api.py for the JSON API, ops.py for health and metrics;
every view reads the hub's state from hub/web/state.py. Nothing is imported here, so a view
importing a sibling never runs the app factory's imports.
"""
