"""The one catalogue of the hub's words, usable outside a web request.

The web page's message catalogs (``hub/web/translations/<lang>/LC_MESSAGES/messages.po``)
hold every text a person reads: pages, registry errors, alert wording and export labels.
Flask-Babel serves them to the page; this module reads the same ``.po`` files for code that
runs without a request (the notifier's thread, exports, the CLI), so both say the same words.

Source texts are English and are the message ids; a code (a registry error code, an alert
rule, an export column) maps to a :class:`Msg` made with :func:`N_` or :func:`NP_` (markers
pybabel extracts, see hub/web/i18n.py), and :func:`translate` gives it in a language.
Fuzzy entries are skipped, as when the catalogs are compiled for the page.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from babel.messages.pofile import read_po

_LOG = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).resolve().parent / "web" / "translations"
LANGUAGES = ("ja", "en")

_lock = threading.Lock()


@dataclass(frozen=True)
class Msg:
    """A text to translate: its English source (the message id) and its context, if any."""

    id: str
    context: str | None = None

    def __str__(self) -> str:
        return self.id


def N_(msgid: str) -> Msg:  # noqa: N802 - the name pybabel is told to look for
    """Mark ``msgid`` for the catalogs; translated later by :func:`translate`."""
    return Msg(msgid)


def NP_(context: str, msgid: str) -> Msg:  # noqa: N802
    """Mark ``msgid`` in ``context`` (one English word with two translations)."""
    return Msg(msgid, context)


@lru_cache(maxsize=None)
def _entries(lang: str) -> dict[tuple[str | None, str], str]:
    po = SOURCE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with _lock, po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    found = {(m.context, m.id): m.string for m in catalog
             if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string and not m.fuzzy}
    _LOG.debug("read %d %s messages from %s", len(found), lang, po)
    return found


def lookup(lang: str, msg: Msg) -> str | None:
    """The translation of ``msg`` in ``lang`` as the catalog holds it, or None if it has none."""
    if lang not in LANGUAGES:
        return None
    return _entries(lang).get((msg.context, msg.id))


def translate(lang: str, msg: Msg | str, **params: object) -> str:
    """``msg`` in ``lang`` ("ja" or "en"; English is the source text where the catalog has
    none), with ``%(name)s`` parameters filled in when ``params`` are given."""
    if isinstance(msg, str):
        msg = Msg(msg)
    text = lookup(lang, msg) or msg.id
    return text % params if params else text


class CodedError(ValueError):
    """A step that cannot be done as asked: ``code`` (a key of the subclass's ``ERRORS``, its
    catalogue of sentences) and ``params`` say why, for each page and export to word in its
    reader's language; ``str()`` is the English sentence, for logs and the CLI."""

    ERRORS: ClassVar[Mapping[str, Msg]] = {}

    def __init__(self, code: str, params: Mapping[str, Any] | None = None):
        self.code = code
        self.params = dict(params or {})
        super().__init__(self.text("en"))

    def text(self, lang: str) -> str:
        """The reason in ``lang`` ("ja" or "en"); the code itself if it has no sentence."""
        message = self.ERRORS.get(self.code)
        return translate(lang, message, **self.word_params(lang)) if message is not None else self.code

    def word_params(self, lang: str) -> dict[str, Any]:
        """The parameters as the sentence shows them in ``lang`` (a subclass words codes)."""
        return self.params
