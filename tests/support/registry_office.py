"""The acting admin and the day of the registry tests (tests/hub/registry): every change is
made by ``ACTOR``; ``TODAY`` is a Monday at ward-a (Asia/Tokyo)."""
from __future__ import annotations

from datetime import date

ACTOR = "admin"
TODAY = date(2025, 6, 2)  # a Monday
