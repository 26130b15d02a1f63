"""Badge ids: the one normaliser for every place a badge id comes in (the reader, the
registry's form, the attendance import, the staff file).

A badge id is the card's identifier as upper-case hex without separators: an ISO 14443 UID
(4, 7 or 10 bytes) or a FeliCa IDm (8 bytes). People copy them from card labels, reader
software and spreadsheets, so case, colons, spaces, hyphens and full-width characters (NFKC)
are accepted; anything that is not whole bytes of a length some card has is refused, since
no reader can ever report it. A badge id is an identifier, not a secret: it can be cloned.

:class:`BadgeIdError` carries a ``code`` and ``params`` so each interface words it in its own
language; its English message is the log's and the config loader's.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

# ISO 14443 UIDs are 4, 7 or 10 bytes; a FeliCa IDm is 8.
CARD_BYTES = (4, 7, 8, 10)
CARD_DIGITS = tuple(2 * n for n in CARD_BYTES)

# What may separate the bytes: spaces, colons and hyphens (also the dashes and minus sign a
# Japanese input method may type instead of "-"; NFKC has already made full-width ones plain).
_SEPARATORS = re.compile(r"[\s:\-\u2010-\u2015\u2212]+")
_HEX = frozenset("0123456789ABCDEF")

_MESSAGES = {
    "badge_id_not_text": "a badge id is text, not {kind}",
    "badge_id_empty": "the badge id is empty",
    "badge_id_not_hex": "badge id {value!r}: {char!r} is not a hexadecimal digit (0-9, A-F)",
    "badge_id_odd_length": "badge id {value!r} has {digits} hex digits, not whole bytes: "
                           "a card's id has 8, 14, 16 or 20",
    "badge_id_length": "badge id {value!r} has {digits} hex digits ({bytes} bytes): no card has that; "
                       "a card's id has 8, 14, 16 or 20 (ISO 14443 UID of 4, 7 or 10 bytes, FeliCa IDm of 8)",
}


class BadgeIdError(ValueError):
    """A value that is not a badge id any card can have; ``code`` and ``params`` say why."""

    def __init__(self, code: str, **params: Any):
        self.code = code
        self.params = params
        super().__init__(_MESSAGES[code].format(**params))


def normalise_badge_id(value: Any) -> str:
    """``value`` as a badge id: upper-case hex, no separators, 4, 7, 8 or 10 bytes.

    BadgeIdError (code ``badge_id_not_text``, ``badge_id_empty``, ``badge_id_not_hex``,
    ``badge_id_odd_length`` or ``badge_id_length``) if it cannot be one.
    """
    if not isinstance(value, str):
        raise BadgeIdError("badge_id_not_text", kind=type(value).__name__)
    shown = value.strip()
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()
    if not text:
        raise BadgeIdError("badge_id_empty")
    bad = next((ch for ch in text if ch not in _HEX), None)
    if bad is not None:
        raise BadgeIdError("badge_id_not_hex", value=shown, char=bad)
    if len(text) % 2:
        raise BadgeIdError("badge_id_odd_length", value=shown, digits=len(text))
    if len(text) not in CARD_DIGITS:
        raise BadgeIdError("badge_id_length", value=shown, digits=len(text), bytes=len(text) // 2)
    return text
