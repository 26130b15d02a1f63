"""One simulated unit of the demo: the device agent (the program a Pi runs) on mock pins with the
stand-in reader and camera, playing its part of the office's day (demo.steps.UnitDay).

Each episode starts at its time from the day's shared start (``epoch``), so the units keep one
clock however long each took to start; an episode whose time has passed (a slow start, a long
episode before it) is played at once. Nothing is played before the unit holds a policy from the
hub (at most POLICY_WAIT_S): a tap before it would be refused for want of one. After the last
episode the unit stays up and quiet, or with ``period_s`` starts the day again.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from pathlib import Path

from demo import cups as localcups
from demo.steps import PrintJob, PrintStep, SilenceStep, Step, TrayStep, UnitDay

_LOG = logging.getLogger(__name__)

POLICY_WAIT_S = 60.0


def press_silence(agent, stop: threading.Event) -> None:
    """Press the annunciator's silence button for a moment.

    Wired to the annunciator unit's input named ``silence`` (device.simulate.set_input):
    the one place to change if that unit calls its button otherwise."""
    from device import simulate

    simulate.set_input(agent, "silence", True)
    stop.wait(simulate.PRESS_S)
    simulate.set_input(agent, "silence", False)


def terminal_prints(job: PrintJob, docs: Path) -> None:
    """``lp`` as a desk would; a refusal is logged and the day goes on."""
    pdf = docs / f"doc-{job.pages}.pdf"
    if not pdf.exists():
        localcups.make_pdf(pdf, job.pages)
    try:
        number = localcups.job_id(localcups.lp(job.server, job.queue, job.user, job.title, pdf))
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        _LOG.warning("terminal could not print %r as %s: %s", job.title, job.user, exc)
        return
    _LOG.info("terminal printed %r as %s: job %d held", job.title, job.user, number)


class DayRunner:
    """Plays a UnitDay against a running agent in a thread."""

    def __init__(self, agent, day: UnitDay, docs: Path):
        from device.simulate import Tap

        taps = any(isinstance(step, Tap) for episode in day.episodes for step in episode.steps)
        if agent.cfg.pins.factory != "mock" or (taps and agent.cfg.reader.type != "standin"):
            # A unit without a reader (the annunciator) plays a day without taps.
            raise ValueError("the demo's units need pins.factory: mock, and reader.type: standin to tap")
        self.agent, self.day, self.docs = agent, day, docs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-day", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def done(self) -> bool:
        return not self._thread.is_alive()

    def _policy_held(self) -> bool:
        deadline = time.monotonic() + POLICY_WAIT_S
        while self.agent.policy.version is None:
            if time.monotonic() >= deadline:
                _LOG.warning("no policy after %.0f s; playing the day anyway", POLICY_WAIT_S)
                return True
            if self._stop.wait(0.2):
                return False
        return True

    def _run(self) -> None:
        if not self._policy_held():
            return
        start = self.day.epoch
        while not self._stop.is_set():
            for episode in self.day.episodes:
                if self._stop.wait(max(0.0, start + episode.at_s - time.time())):
                    return
                late = time.time() - (start + episode.at_s)
                _LOG.info("demo day: %s%s", episode.note, f" ({late:.1f} s late)" if late > 1 else "")
                for step in episode.steps:
                    if self._stop.is_set():
                        return
                    self.play(step)
            if self.day.period_s is None:
                _LOG.info("demo day: over; quiet from now on")
                return
            start += self.day.period_s

    def play(self, step: Step) -> None:
        """One step, as a person at the station would do it."""
        from device import simulate

        try:
            if isinstance(step, TrayStep):
                simulate.set_input(self.agent, "tray", step.tray == "occupied")
            elif isinstance(step, PrintStep):
                terminal_prints(step.print, self.docs)
            elif isinstance(step, SilenceStep):
                press_silence(self.agent, self._stop)
            elif isinstance(step, simulate.Wait):
                self._stop.wait(step.wait)
            elif isinstance(step, simulate.Tap):
                self.agent.reader.tap(step.tap.upper())
            elif isinstance(step, simulate.Press):
                simulate.set_input(self.agent, step.press, True)
                self._stop.wait(simulate.PRESS_S)
                simulate.set_input(self.agent, step.press, False)
            elif isinstance(step, simulate.Bin):
                simulate.set_input(self.agent, "bin", step.bin == "open")
            else:
                simulate.set_door(self.agent, step.door == "open")
        except (ValueError, OSError) as exc:  # a step this unit cannot do: say so, go on
            _LOG.warning("demo day: step %r not played: %s", step, exc)


def run_unit(config_file: str, day_file: str) -> int:
    """One simulated unit until SIGINT/SIGTERM, playing its part of the day."""
    from device import unit_file
    from device.agent import Agent
    from kagiban.configfile import load_config

    cfg = unit_file.load(config_file)
    day = load_config(day_file, UnitDay)
    docs = cfg.data_dir() / "terminal"
    docs.mkdir(parents=True, exist_ok=True)
    agent = Agent(cfg)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.start()
    runner = DayRunner(agent, day, docs)
    runner.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        runner.stop()
        agent.stop()
    return 0
