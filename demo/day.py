"""The demo's office day as data: a typed list of timed episodes, each one person's (or nobody's)
doing at one station, at a time of the office's clock.

The day (DAY) runs from DAY_START to DAY_END: arrivals through the office's door, the keys taken
out and put back by their holders and by a stand-in, a print released at the printer, two people
shredding together, the archive's cabinet forced open (and the annunciator silenced), a part-time clerk without training refused, then trained in the afternoon (the
supervisor's roll call at the meeting room's unit, ROLL_CALL) and let in at the office's
cabinet, the archive opened after hours; then nothing. A Clock compresses the day onto real time (``speed`` office seconds per real second; by
default the day takes about ten minutes): the gaps between episodes shrink, a person's own
actions inside an episode (tap, open, wait, close) keep their real seconds.

The archive's cabinet (AFTER_HOURS_STATION) keeps the office's hours on the compressed clock:
:func:`compressed_hours` gives the real minutes its 08:30-17:15 fall on, for the hub's YAML, and
its after-hours episode is played once that window has really closed, so the hub judges it after
hours whatever time of day the demo is run.

:func:`for_units` splits the day into each unit's part (demo.steps.UnitDay) with the real
seconds from the shared start; episodes of a station the demo does not run are left out.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo

from demo.office import KACHOHOSA, KAKARICHO, PART_TIMER, SHUJI_A, SHUJI_B, SHUNIN, Person
from demo.steps import Episode as UnitEpisode
from demo.steps import PrintJob, PrintStep, SilenceStep, Step, TrayStep, UnitDay
from device.simulate import Door, Press, Tap, Wait

_LOG = logging.getLogger(__name__)

DAY_START, DAY_END = time(7, 55), time(19, 35)
OFFICE_OPENS, OFFICE_CLOSES = time(8, 30), time(17, 15)
# About ten minutes for the whole day by default.
DEFAULT_SPEED = 70.0
MAX_SPEED = 3600.0
AFTER_HOURS_STATION = "cabinet-2"
# Played this long after the archive's compressed hours have closed (a clock's second of slack).
AFTER_HOURS_MARGIN_S = 3.0
# The annunciator that sounds for the forced archive and is silenced.
ANNUNCIATOR = "annunciator-1"
# The meeting room's roll-call unit, where the afternoon's training is attended.
ROLLCALL_UNIT = "rollcall-1"
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@dataclass(frozen=True)
class DeskPrint:
    """A terminal at the person's desk prints ``title`` (becomes a PrintStep once the demo knows
    its print server)."""

    person: Person
    title: str
    pages: int = 1


DayStep = Step | DeskPrint


@dataclass(frozen=True)
class Episode:
    """At ``at`` on the office's clock, ``steps`` at ``station``; ``after_hours``: played only once
    the station's compressed hours have closed (see the module's docstring)."""

    at: time
    station: str
    note: str
    steps: tuple[DayStep, ...] = field(default_factory=tuple)
    after_hours: bool = False


# After a door is shut the person steps away: the station has seen it closed (debounced) before
# the next tap, which would otherwise be taken for part of the use the closing ends.
STEP_AWAY = Wait(wait=1)


def enter(person: Person) -> tuple[DayStep, ...]:
    """Through a badge door: tap, open, walk in, close."""
    return (Tap(tap=person.badge), Wait(wait=1), Door(door="open"), Wait(wait=2), Door(door="close"), STEP_AWAY)


def use_keys(person: Person, open_s: float = 4) -> tuple[DayStep, ...]:
    """At a key cabinet: tap, open, take or return the keys, close."""
    return (Tap(tap=person.badge), Wait(wait=1), Door(door="open"), Wait(wait=open_s), Door(door="close"),
            STEP_AWAY)


def refused(person: Person) -> tuple[DayStep, ...]:
    """A tap that is refused: the door stays shut, the person gives up."""
    return (Tap(tap=person.badge), Wait(wait=2))


def forced() -> tuple[DayStep, ...]:
    """The door opened without a tap (its lock held), then shut again."""
    return (Door(door="open"), Wait(wait=3), Door(door="close"), STEP_AWAY)


def shred_together(first: Person, second: Person) -> tuple[DayStep, ...]:
    """Two people tap in turn, shred, and stop the shredder with its button."""
    return (Tap(tap=first.badge), Wait(wait=2), Tap(tap=second.badge), Wait(wait=8),
            Press(press="stop_button"), Wait(wait=1))


def print_and_collect(person: Person, title: str, pages: int) -> tuple[DayStep, ...]:
    """Printed at the desk, released with a tap at the printer, taken from the tray."""
    return (DeskPrint(person, title, pages), Wait(wait=3), Tap(tap=person.badge), Wait(wait=3),
            TrayStep(tray="occupied"), Wait(wait=4), TrayStep(tray="empty"))


def silence() -> tuple[DayStep, ...]:
    return (SilenceStep(),)


@dataclass(frozen=True)
class RollCall:
    """The supervisor's part of the day, at the hub: a training roll call for the section's
    part-timers at ``unit``, opened at ``opens`` for a session starting at ``starts`` and closed
    at ``closes`` (office times). On time means within a real minute of the start (the hub
    counts whole minutes), about an office hour at the default speed."""

    opens: time
    starts: time
    closes: time
    unit: str = ROLLCALL_UNIT
    window_min: int = 1


ROLL_CALL = RollCall(opens=time(13, 20), starts=time(13, 30), closes=time(14, 0))


DAY: tuple[Episode, ...] = (
    Episode(time(8, 2), "door-1", "係長が出勤", enter(KAKARICHO)),
    Episode(time(8, 10), "door-1", "主任が出勤", enter(SHUNIN)),
    Episode(time(8, 14), "door-1", "主事が出勤", enter(SHUJI_A)),
    Episode(time(8, 18), "door-1", "主事が出勤", enter(SHUJI_B)),
    Episode(time(8, 22), "door-1", "課長補佐が出勤", enter(KACHOHOSA)),
    Episode(time(8, 35), "cabinet-1", "係長(管理者)が執務室の鍵を出す", use_keys(KAKARICHO)),
    Episode(time(8, 50), "cabinet-3", "課長補佐(管理者)がカード保管庫の鍵を出す", use_keys(KACHOHOSA)),
    Episode(time(9, 30), "cabinet-2", "係長が書庫の鍵を出す", use_keys(KAKARICHO, 3)),
    Episode(time(10, 5), "printer-1", "主事が住民票の写しを印刷して受け取る",
            print_and_collect(SHUJI_A, "住民票の写し", 2)),
    Episode(time(10, 40), "cabinet-1", "研修未受講の会計年度任用職員が鍵を取ろうとして拒否される",
            refused(PART_TIMER)),
    Episode(time(12, 10), "cabinet-1", "係長の昼休み中、主任(代理)が鍵を使う", use_keys(SHUNIN, 3)),
    Episode(time(13, 0), "door-1", "係長が昼休みから戻る", enter(KAKARICHO)),
    Episode(time(13, 33), ROLLCALL_UNIT, "会計年度任用職員が研修の会場で出席のタッチ",
            (Tap(tap=PART_TIMER.badge), Wait(wait=2))),
    Episode(time(14, 20), "cabinet-2", "書庫の鍵保管庫がこじ開けられる", forced()),
    Episode(time(14, 30), ANNUNCIATOR, "警報の消音ボタンが押される", silence()),
    Episode(time(14, 30), "cabinet-2", "係長が書庫の鍵保管庫を確認する", use_keys(KAKARICHO, 3)),
    Episode(time(15, 30), "shredder-1", "当番の主事2人で廃棄書類を裁断", shred_together(SHUJI_A, SHUJI_B)),
    Episode(time(15, 45), "cabinet-1", "研修を受けた会計年度任用職員が鍵を使う（指定外の利用として記録）",
            use_keys(PART_TIMER, 3)),
    Episode(time(16, 50), "cabinet-3", "課長補佐がカード保管庫の鍵を戻す", use_keys(KACHOHOSA)),
    Episode(time(17, 5), "cabinet-1", "係長が執務室の鍵を戻す", use_keys(KAKARICHO)),
    Episode(time(19, 20), AFTER_HOURS_STATION, "係長が時間外に書庫を開ける", use_keys(KAKARICHO, 3),
            after_hours=True),
)


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@dataclass(frozen=True)
class Clock:
    """The office's clock on real time: DAY_START is ``epoch`` (Unix seconds) and one real
    second is ``speed`` seconds of the office's day."""

    epoch: float
    speed: float = DEFAULT_SPEED

    def __post_init__(self) -> None:
        if not 0 < self.speed <= MAX_SPEED:
            raise ValueError(f"speed must be above 0 and at most {MAX_SPEED:g}, not {self.speed:g}")

    def offset(self, t: time) -> float:
        """Real seconds from the day's start to ``t`` on the office's clock."""
        return (_seconds(t) - _seconds(DAY_START)) / self.speed

    def length_s(self) -> float:
        """Real seconds of the whole day (DAY_START to DAY_END)."""
        return self.offset(DAY_END)


def _minute(moment: datetime, up: bool) -> datetime:
    base = moment.replace(second=0, microsecond=0)
    return base + timedelta(minutes=1) if up and base != moment else base


def compressed_hours(clock: Clock, tz: tzinfo) -> dict:
    """The archive's business hours for the hub's YAML: the real minutes (local in ``tz``) its
    08:30-17:15 fall on, from the minute that begins before the opening to the minute that ends
    after the closing (hours are whole minutes), on every weekday."""
    opens = datetime.fromtimestamp(clock.epoch + clock.offset(OFFICE_OPENS), tz)
    closes = datetime.fromtimestamp(clock.epoch + clock.offset(OFFICE_CLOSES), tz)
    return {"days": EVERY_DAY, "start": f"{_minute(opens, False):%H:%M}", "end": f"{_minute(closes, True):%H:%M}"}


def _closed_offset(clock: Clock, tz: tzinfo) -> float:
    """Real seconds from the day's start to the end of the archive's compressed hours."""
    closes = datetime.fromtimestamp(clock.epoch + clock.offset(OFFICE_CLOSES), tz)
    return _minute(closes, True).timestamp() - clock.epoch


def due(episode: Episode, clock: Clock, tz: tzinfo) -> float:
    """Real seconds from the day's start at which ``episode`` is played."""
    at = clock.offset(episode.at)
    if episode.after_hours:
        at = max(at, _closed_offset(clock, tz) + AFTER_HOURS_MARGIN_S)
    return at


def _unit_step(step: DayStep, print_server: str, queue: str) -> Step:
    if isinstance(step, DeskPrint):
        return PrintStep(print=PrintJob(server=print_server, queue=queue, user=step.person.print_user,
                                        title=step.title, pages=step.pages))
    return step


def day_length(clock: Clock, tz: tzinfo, day: tuple[Episode, ...] = DAY) -> float:
    """Real seconds from the day's start to its end (the after-hours episode may be later)."""
    return max([clock.length_s(), *(due(e, clock, tz) for e in day)])


def roll_call_times(clock: Clock, roll_call: RollCall = ROLL_CALL) -> tuple[float, float, float]:
    """Real seconds from the day's start at which the roll call opens, starts and closes."""
    return clock.offset(roll_call.opens), clock.offset(roll_call.starts), clock.offset(roll_call.closes)


def for_units(clock: Clock, tz: tzinfo, stations: list[str], *, print_server: str, queue: str,
              repeat: bool = False, day: tuple[Episode, ...] = DAY) -> dict[str, UnitDay]:
    """Each running station's part of the day; episodes of stations not in ``stations`` are left
    out. With ``repeat`` each unit starts the day again when it is over."""
    period = day_length(clock, tz, day) + 1.0 if repeat else None
    parts: dict[str, list[UnitEpisode]] = {sid: [] for sid in stations}
    for episode in sorted(day, key=lambda e: due(e, clock, tz)):
        if episode.station not in parts:
            _LOG.info("demo day: %s %s left out (no such unit)", episode.at, episode.station)
            continue
        parts[episode.station].append(UnitEpisode(
            at_s=round(due(episode, clock, tz), 3), note=f"{episode.at:%H:%M} {episode.note}",
            steps=[_unit_step(s, print_server, queue) for s in episode.steps]))
    return {sid: UnitDay(epoch=clock.epoch, period_s=period, episodes=eps) for sid, eps in parts.items()}

