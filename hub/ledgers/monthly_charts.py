"""The monthly report's charts, drawn with matplotlib as SVG: key uses by hour of day, alerts by
week, training coverage. The text stays text (``svg.fonttype = "none"``, Noto Sans CJK JP), so
the same SVG reads the same on the page, in the PDF and to pdftotext.
"""
from __future__ import annotations

import io
import logging
import os
import tempfile
from functools import lru_cache

_LOG = logging.getLogger(__name__)

FONT = "Noto Sans CJK JP"
_RC = {
    "svg.fonttype": "none",
    "font.family": [FONT, "DejaVu Sans"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "kagiban",  # the same figures draw the same SVG
}


def _pyplot():
    # matplotlib wants a writable config folder; the hub's user may have no home.
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "kagiban-matplotlib"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # inline: no XML prologue or doctype


@lru_cache(maxsize=64)  # the same figures draw the same chart: the page and its PDF draw it once
def bar_chart(labels: tuple[str, ...], values: tuple[int, ...], title: str, *, width: float = 6.5,
              height: float = 2.2, color: str = "#3465a4") -> str:
    """A bar chart as an SVG element (arguments hashable: tuples)."""
    plt = _pyplot()
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(width, height))
        ax.bar(range(len(values)), values, color=color)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_title(title, loc="left")
        ax.yaxis.get_major_locator().set_params(integer=True)
        return _svg(fig)


@lru_cache(maxsize=64)
def coverage_chart(parts: tuple[tuple[str, int, str], ...], title: str) -> str:
    """A horizontal stacked bar of (label, count, colour), as an SVG element."""
    plt = _pyplot()
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.5, 1.3))
        left = 0
        for label, count, color in parts:
            ax.barh([0], [count], left=left, color=color, label=f"{label} {count}")
            left += count
        ax.set_yticks([])
        ax.set_xlim(0, max(left, 1))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(title, loc="left")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=max(len(parts), 1), frameon=False)
        return _svg(fig)
