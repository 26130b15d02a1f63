"""Make docs/img/status.png again from today's demo: run ``kagiban demo``, wait until every kind
of station has reported its story, sign in with Debian's chromium (Playwright, no browser
download) and take the status page in Japanese. Run it with scripts/screenshot-status after
any change to the page.

Japanese needs a CJK font (Debian fonts-noto-cjk, which ``scripts/install-deps --test``
installs): without one Chromium draws a box for every Japanese character, so the script
refuses to run without it.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

_LOG = logging.getLogger("screenshot-status")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img" / "status.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PASSWORD = "status-shot-1"
# What the page should show: one story of each kind of station (see demo/run.py).
WANTED = {"key.used", "door.forced", "shred.started", "print.released", "tray.uncollected", "door.intrusion"}
START_S, STORIES_S = 60.0, 120.0
WIDTH, HEIGHT = 1280, 1800


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(check, timeout: float, what: str):
    """``check()``'s first true value within ``timeout`` seconds, else RuntimeError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def reported(db: Path, stations: set[str]) -> bool:
    """Every station has sent events, and the stories the picture should show are stored."""
    if not db.exists():
        return False
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT DISTINCT station, kind FROM events").fetchall()
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()
    return {s for s, _ in rows} >= stations and {k for _, k in rows} >= WANTED


def cjk_font() -> str | None:
    done = subprocess.run(["fc-list", ":lang=ja", "family"], capture_output=True, text=True, check=False)
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def shoot(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900}, locale="ja-JP")
            page.goto(url + "login")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button.primary")
            page.wait_for_url(url, timeout=10_000)
            page.wait_for_selector("#stations tr", timeout=10_000)
            height = min(page.evaluate("document.documentElement.scrollHeight"), HEIGHT)
            page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": WIDTH, "height": height},
                            full_page=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the PNG to write (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if not Path(CHROMIUM).exists():
        print(f"screenshot-status: {CHROMIUM} is missing (apt install chromium)", file=sys.stderr)
        return 2
    font = cjk_font()
    if font is None:
        print("screenshot-status: no Japanese font (apt install fonts-noto-cjk): the picture would show boxes",
              file=sys.stderr)
        return 2
    _LOG.info("Japanese font: %s", font)

    sys.path.insert(0, str(ROOT))
    from demo.run import NAMES

    # The demo's own folder (it opens it to cupsd's filters), removed afterwards.
    data = Path(tempfile.mkdtemp(prefix="kagiban-shot-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = data / "demo.out"
    with open(log, "wb") as f:
        demo = subprocess.Popen(
            [sys.executable, "-m", "kagiban.cli", "--log-level", "WARNING", "demo", "--port", str(port),
             "--data", str(data), "--duration", "600", "--admin-password", PASSWORD],
            stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait(lambda: answers(url + "healthz"), START_S, "the demo's page")
        _LOG.info("demo on %s; waiting for every station's story", url)
        wait(lambda: reported(data / "hub" / "kagiban.db", set(NAMES)), STORIES_S,
             f"events from {sorted(NAMES)} including {sorted(WANTED)}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shoot(url, args.out)
        _LOG.info("wrote %s", args.out)
    except RuntimeError as exc:
        print(f"screenshot-status: {exc}; the demo said:\n{log.read_text(errors='replace')[-3000:]}",
              file=sys.stderr)
        return 1
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)  # as Ctrl-C: the demo stops what it started
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait(10)
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
