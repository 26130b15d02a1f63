"""The web hub the sign-in tests start (tests/security/conftest.py ``hub_with``) and what they
do with it: sign in through the form, send HTTP Basic, read the sign-in side log."""
from __future__ import annotations

import base64
import json
import re

import requests
from sqlalchemy import select

from hub.store.schema import side_log
from hub.service import Hub

PASSWORD = "correct horse 01"
OTHER = "another horse 02"
USER = "sup-01"
_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def sign_in(http: requests.Session, url: str, username: str, password: str, next_: str | None = None):
    page = http.get(url + "login", timeout=10)
    token = _CSRF_RE.search(page.text).group(1)
    return http.post(url + "login", params={"next": next_} if next_ else None, timeout=30,
                     data={"username": username, "password": password, "csrf_token": token},
                     allow_redirects=False)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def signin_log(hub: Hub) -> list[dict]:
    with hub.engine.connect() as conn:
        return [json.loads(e) for e in conn.execute(
            select(side_log.c.entry).where(side_log.c.part == "signins").order_by(side_log.c.n)).scalars()]
