"""Make docs/img/status-ja.png again from the Japanese demo: run ``kagiban demo`` with its office's
day compressed (``--speed``), wait until every unit has played its part of the day, sign in with
Debian's chromium (Playwright, no browser download, headless) and take the status page in
Japanese as a 1366x768 screen shows it. Run it with scripts/screenshot-status after any change
to the page or the demo.

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
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

_LOG = logging.getLogger("screenshot-status")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img" / "status-ja.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PASSWORD = "status-shot-1"
# The office's day (demo.day) in about a minute and a half; the after-hours use waits up to a
# minute more for the archive's compressed hours to close.
SPEED = 500.0
START_S, DAY_S = 90.0, 240.0
WIDTH, HEIGHT = 1366, 768


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


def day_over(logs: Path, stations: list[str]) -> bool:
    """Every unit has played its part of the day (each says so in its log)."""
    for sid in stations:
        log = logs / f"{sid}.log"
        if not log.exists() or "demo day: over" not in log.read_text(errors="replace"):
            return False
    return True


def cjk_font() -> str | None:
    done = subprocess.run(["fc-list", ":lang=ja", "family"], capture_output=True, text=True, check=False)
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def shoot(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT}, locale="ja-JP")
            page.goto(url + "login")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button.primary")
            page.wait_for_url(url, timeout=10_000)
            page.wait_for_selector("#stations .station-card", timeout=10_000)
            # What the first screen shows, as a supervisor opening the page sees it.
            page.screenshot(path=str(out))
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
             "--data", str(data), "--duration", "600", "--speed", str(SPEED), "--admin-password", PASSWORD],
            stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait(lambda: answers(url + "healthz"), START_S, "the demo's page")
        _LOG.info("demo on %s; waiting for the end of its day", url)
        wait(lambda: day_over(data / "logs", list(NAMES)), DAY_S, f"the day's end at {sorted(NAMES)}")
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
