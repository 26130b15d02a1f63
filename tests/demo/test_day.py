"""The demo's office day as data: it holds the things a visitor should see, the compressed clock
puts the archive's after-hours use after its hours and every other use there inside them (judged
by the same function the hub and the stations use), and each unit gets only its own part."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest
import yaml

from demo import day, office
from demo.steps import PrintStep, SilenceStep, UnitDay
from device.simulate import Door, Tap
from hub.config import HoursSection
from kagiban.configfile import load_config
from kagiban.hours import in_hours
from kagiban.protocol import Hours

TOKYO = ZoneInfo("Asia/Tokyo")
STATIONS = ["cabinet-1", "cabinet-2", "cabinet-3", "shredder-1", "printer-1", "door-1"]
# Around the clock, over midnight, at a few speeds.
STARTS = ["2026-12-07T09:00:00+09:00", "2026-12-07T23:58:30+09:00", "2026-12-07T17:14:59.5+09:00"]


def taps(episode: day.Episode) -> list[str]:
    return [s.tap for s in episode.steps if isinstance(s, Tap)]


def test_the_day_holds_what_the_office_does():
    at = {e.station: [] for e in day.DAY}
    for e in day.DAY:
        at[e.station].append(e)
    holder, stand_in = office.DESIGNATIONS["cabinet-1"][0], office.DESIGNATIONS["cabinet-1"][1][0]
    cabinet_1 = [t for e in at["cabinet-1"] for t in taps(e)]
    assert holder.badge in cabinet_1 and stand_in.badge in cabinet_1
    assert office.PART_TIMER.badge in cabinet_1 and not office.PART_TIMER.trained
    # Arrivals: several people through the office's door in the morning.
    assert len({t for e in at["door-1"] if e.at.hour < 9 for t in taps(e)}) >= 4
    # Two different rostered people at the shredder in one episode.
    [shred] = at["shredder-1"]
    assert set(taps(shred)) == {p.badge for p in office.ROSTER["shredder-1"]}
    # A print released by its owner at the printer.
    [printing] = at["printer-1"]
    assert taps(printing) == [office.SHUJI_A.badge] and any(isinstance(s, day.DeskPrint) for s in printing.steps)
    # Exactly one forced door: an opening with no tap in its episode.
    forced = [e for e in day.DAY if any(isinstance(s, Door) for s in e.steps) and not taps(e)]
    assert [e.station for e in forced] == [day.AFTER_HOURS_STATION]
    # The annunciator is silenced after it, one after-hours use at the end, nothing after DAY_END.
    [silenced] = [e for e in day.DAY if any(isinstance(s, SilenceStep) for s in e.steps)]
    assert silenced.station == day.ANNUNCIATOR and silenced.at > forced[0].at
    [late] = [e for e in day.DAY if e.after_hours]
    assert late.at > day.OFFICE_CLOSES and max(e.at for e in day.DAY) < day.DAY_END
    assert office.AFTER_HOURS_USERS[late.station] == (office.KAKARICHO,) and taps(late) == [office.KAKARICHO.badge]


def test_every_badge_tapped_in_the_day_belongs_to_someone_on_the_staff():
    badges = {p.badge for p in office.STAFF}
    assert {t for e in day.DAY for t in taps(e)} <= badges
    assert len(badges) == len(office.STAFF)
    assert all(p.name.startswith("職員") and p.kana and p.role for p in office.STAFF)


@pytest.mark.parametrize("speed", [day.DEFAULT_SPEED, 300.0, 1000.0])
@pytest.mark.parametrize("start", STARTS)
def test_the_archive_is_used_inside_its_compressed_hours_and_once_after_them(start, speed):
    clock = day.Clock(epoch=datetime.fromisoformat(start).timestamp(), speed=speed)
    hours = day.compressed_hours(clock, TOKYO)
    archive = [e for e in day.DAY if e.station == day.AFTER_HOURS_STATION]
    for episode in archive:
        played = datetime.fromtimestamp(clock.epoch + day.due(episode, clock, TOKYO), TOKYO)
        # As the station decides a tap (its policy's hours) and as the hub judges the use.
        for judged in (Hours(**hours), HoursSection(**hours)):
            assert in_hours(played, judged, [], TOKYO) is not episode.after_hours, (episode.note, hours)


def test_about_ten_minutes_by_default_and_speed_shortens_it():
    assert 540 <= day.Clock(epoch=1.0).length_s() <= 660
    assert day.Clock(epoch=1.0, speed=700).length_s() == pytest.approx(60.0)
    for bad in (0, -1, day.MAX_SPEED * 2):
        with pytest.raises(ValueError, match="speed"):
            day.Clock(epoch=1.0, speed=bad)


def test_each_unit_gets_its_own_part_in_order_and_the_annunciator_waits_for_its_unit():
    clock = day.Clock(epoch=datetime.fromisoformat(STARTS[0]).timestamp(), speed=120)
    parts = day.for_units(clock, TOKYO, STATIONS, print_server="/run/demo/cups.sock", queue="kagiban-hold")
    assert set(parts) == set(STATIONS)
    assert sum(len(p.episodes) for p in parts.values()) == len([e for e in day.DAY if e.station in STATIONS])
    for part in parts.values():
        assert part.period_s is None and part.epoch == clock.epoch
        assert [e.at_s for e in part.episodes] == sorted(e.at_s for e in part.episodes)
    # The print goes to the demo's print server as the person's print user.
    [job] = [s for e in parts["printer-1"].episodes for s in e.steps if isinstance(s, PrintStep)]
    assert (job.print.server, job.print.queue, job.print.user) == ("/run/demo/cups.sock", "kagiban-hold",
                                                                   office.SHUJI_A.print_user)
    # Once the annunciator is a unit, it gets its silence press.
    with_it = day.for_units(clock, TOKYO, [*STATIONS, day.ANNUNCIATOR], print_server="/x.sock", queue="q")
    assert [type(s) for e in with_it[day.ANNUNCIATOR].episodes for s in e.steps] == [SilenceStep]


def test_repeat_starts_the_day_again_after_its_end_and_a_part_survives_its_file(tmp_path):
    clock = day.Clock(epoch=datetime.fromisoformat(STARTS[1]).timestamp(), speed=300)
    parts = day.for_units(clock, TOKYO, STATIONS, print_server="/x.sock", queue="q", repeat=True)
    last = max(e.at_s for p in parts.values() for e in p.episodes)
    assert all(p.period_s is not None and p.period_s > last for p in parts.values())
    part = parts["cabinet-2"]
    # As demo.run writes it and a unit reads it back.
    path = tmp_path / "day.yaml"
    path.write_text(yaml.safe_dump(msgspec.to_builtins(part), allow_unicode=True))
    assert load_config(path, UnitDay) == part
