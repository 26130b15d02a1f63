"""A Markdown version shown on the page, safely: Python-Markdown with its raw-HTML handling
removed (any ``<tag>`` in the file is shown as text, escaped), and links or images whose
address is not http(s), mailto or relative dropped (no ``javascript:`` in a procedure)."""
from __future__ import annotations

import logging
import xml.etree.ElementTree as etree
from urllib.parse import urlsplit

import markdown
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup

_LOG = logging.getLogger(__name__)

_SAFE_SCHEMES = ("", "http", "https", "mailto")


class _SafeLinks(Treeprocessor):
    """Drops ``href``/``src`` values with a scheme outside _SAFE_SCHEMES."""

    def run(self, root: etree.Element) -> None:
        for element in root.iter():
            for attribute in ("href", "src"):
                value = element.get(attribute)
                if value is not None and urlsplit(value.strip()).scheme.lower() not in _SAFE_SCHEMES:
                    _LOG.info("dropped a %s link from a procedure: %.60r", attribute, value)
                    del element.attrib[attribute]


def _converter() -> markdown.Markdown:
    md = markdown.Markdown(extensions=["tables", "sane_lists"], output_format="html")
    # Without these two, raw HTML is no longer passed through: it is escaped like other text.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    md.treeprocessors.register(_SafeLinks(md), "safe_links", 0)
    return md


def render_markdown(text: str) -> Markup:
    """``text`` (Markdown) as HTML safe to put in a page."""
    return Markup(_converter().convert(text))
