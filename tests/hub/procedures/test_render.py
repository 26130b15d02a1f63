"""A Markdown procedure on the page: headings, lists and tables rendered; raw HTML shown as
text, never run; links to javascript: and data: dropped, ordinary ones kept."""
from __future__ import annotations

from hub.procedures.render import render_markdown


def test_markdown_is_rendered():
    html = str(render_markdown("# 鍵の取扱手順\n\n1. 鍵を戻す\n2. 施錠する\n\n| 手順 | 担当 |\n|---|---|\n| 返却 | 係員 |\n"))
    assert "<h1>鍵の取扱手順</h1>" in html and "<li>鍵を戻す</li>" in html and "<td>返却</td>" in html


def test_raw_html_is_escaped_not_passed_through():
    html = str(render_markdown('<script>alert(1)</script>\n\n本文 <img src=x onerror="alert(2)"> です\n'))
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img" in html


def test_unsafe_link_targets_are_dropped_and_safe_ones_kept():
    html = str(render_markdown("[罠](javascript:alert(1)) [画像](data:text/html;base64,PHNjcmlwdD4=) "
                               "[規程](https://example.invalid/kitei) [同じ頁](#top)\n\n![写真](javascript:x)\n"))
    assert "javascript:" not in html and "data:" not in html
    assert 'href="https://example.invalid/kitei"' in html and 'href="#top"' in html
