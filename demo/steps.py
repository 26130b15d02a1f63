"""What a person does at a simulated station in the demo: the steps of device.simulate (tap, door,
wait, press, bin) and the demo's own: paper on the printer's tray, a terminal printing, the
annunciator's silence button. Typed (msgspec, read by kagiban.configfile like a scenario) so a
unit's day file is checked when it is read, and a demo unit, a station, never loads pydantic.
"""
from __future__ import annotations

import logging
from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta

from device.simulate import Bin, Door, Press, StepBase, Tap, Wait

_LOG = logging.getLogger(__name__)


class TrayStep(StepBase, tag="tray"):
    """Paper lands on the printer's tray (``occupied``) or is taken away (``empty``)."""

    tray: Literal["occupied", "empty"]


class PrintJob(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What a terminal sends: ``pages`` blank pages titled ``title``, as ``user``."""

    # The demo's cupsd: its unix socket (an absolute path, no spaces or controls).
    server: Annotated[str, Meta(pattern=r"^/[^\s\x00]{1,200}\.sock$")]
    queue: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{1,127}$")]
    user: Annotated[str, Meta(min_length=1, max_length=64)]
    title: Annotated[str, Meta(min_length=1, max_length=120)]
    pages: Annotated[int, Meta(ge=1, le=20)] = 1


class PrintStep(StepBase, tag="print"):
    """A terminal prints (the job goes to the holding queue)."""

    print: PrintJob


class SilenceStep(StepBase, tag="silence"):
    """Someone presses the annunciator's silence button (demo.unit.press_silence)."""

    silence: Literal["press"] = "press"


Step = Union[Tap, Door, Wait, Press, Bin, TrayStep, PrintStep, SilenceStep]


class Episode(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Steps a unit plays from ``at_s`` seconds after the day's start, one after another."""

    at_s: Annotated[float, Meta(ge=0)]
    note: Annotated[str, Meta(max_length=200)] = ""
    steps: list[Step]


class UnitDay(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One unit's part of the demo's day: ``epoch`` is the day's start (Unix seconds, shared by
    every unit); with ``period_s`` the day starts again that many seconds after each start."""

    epoch: Annotated[float, Meta(gt=0)]
    period_s: Annotated[float, Meta(gt=0)] | None = None
    episodes: list[Episode]
