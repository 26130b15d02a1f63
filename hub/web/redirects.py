"""Where the site may send a browser back to after sign-in: only a path on this site."""
from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit


def local_path(value: str | None) -> str | None:
    """``value`` if it is a path on this site (never another host), else None.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so
    "/<tab>/host" and "/<backslash>host" would lead to another host: any control or format
    character, any backslash, a leading "//", a scheme or a host refuses the value outright.
    """
    if not value or len(value) > 2048 or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return value.rstrip("?") or "/"
