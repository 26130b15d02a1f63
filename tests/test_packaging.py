"""What a non-editable install of kagiban carries: every file the hub reads at run time that is
not Python (templates, static files, translations, migration templates) is named by a pattern of
``[tool.setuptools.package-data]``, so pages do not fail with "template not found" on a Pi
installed from a wheel while every editable checkout works."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_SUFFIXES = {".html", ".po", ".mako", ".css", ".js", ".svg", ".png", ".ico", ".woff2"}


def _patterns() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["setuptools"]["package-data"]["hub"]


def test_every_template_static_file_and_translation_of_the_hub_is_package_data():
    patterns = _patterns()
    files = [p.relative_to(ROOT / "hub").as_posix() for p in (ROOT / "hub").rglob("*")
             if p.is_file() and p.suffix in DATA_SUFFIXES]
    assert any(f.startswith("web/templates/nearmiss/") for f in files)  # the check sees subfolders
    # Matched as setuptools does, by glob: "*" stays within one folder.
    packaged = {p.relative_to(ROOT / "hub").as_posix() for pat in patterns for p in (ROOT / "hub").glob(pat)}
    missing = [f for f in files if f not in packaged]
    assert missing == [], f"not in [tool.setuptools.package-data] hub: {missing}"
