"""What a person does at a simulated station in the demo: the steps of device.simulate (tap, door,
wait, press, bin) and the demo's own: paper on the printer's tray, a terminal printing, the
annunciator's silence button. Typed (pydantic) so a unit's day file is checked when it is read.
"""
from __future__ import annotations

import logging
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from device.simulate import Bin, Door, Press, Tap, Wait

_LOG = logging.getLogger(__name__)


class TrayStep(BaseModel):
    """Paper lands on the printer's tray (``occupied``) or is taken away (``empty``)."""

    model_config = ConfigDict(extra="forbid")
    tray: Literal["occupied", "empty"]


class PrintJob(BaseModel):
    """What a terminal sends: ``pages`` blank pages titled ``title``, as ``user``."""

    model_config = ConfigDict(extra="forbid")
    # The demo's cupsd: its unix socket (an absolute path, no spaces or controls).
    server: str = Field(pattern=r"^/[^\s\x00]{1,200}\.sock$")
    queue: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,127}$")
    user: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=120)
    pages: int = Field(default=1, ge=1, le=20)


class PrintStep(BaseModel):
    """A terminal prints (the job goes to the holding queue)."""

    model_config = ConfigDict(extra="forbid")
    print: PrintJob


class SilenceStep(BaseModel):
    """Someone presses the annunciator's silence button (demo.unit.press_silence)."""

    model_config = ConfigDict(extra="forbid")
    silence: Literal["press"] = "press"


Step = Union[Tap, Door, Wait, Press, Bin, TrayStep, PrintStep, SilenceStep]


class Episode(BaseModel):
    """Steps a unit plays from ``at_s`` seconds after the day's start, one after another."""

    model_config = ConfigDict(extra="forbid")
    at_s: float = Field(ge=0)
    note: str = Field(default="", max_length=200)
    steps: list[Step]


class UnitDay(BaseModel):
    """One unit's part of the demo's day: ``epoch`` is the day's start (Unix seconds, shared by
    every unit); with ``period_s`` the day starts again that many seconds after each start."""

    model_config = ConfigDict(extra="forbid")
    epoch: float = Field(gt=0)
    period_s: float | None = Field(default=None, gt=0)
    episodes: list[Episode]
