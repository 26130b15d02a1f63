"""The repeat window every station kind shares: a badge again soon is the same tap."""
from pathlib import Path

import msgspec


from device.unit_file import load
from device.stations import make_logic
from device.stations.effects import Emit, Feedback, Unlock
from device.stations.repeat import RepeatWindow
from device.wire import PolicyEntry

EXAMPLES = Path(__file__).resolve().parents[3] / "config"


def answers():
    calls = []

    def answer(result):
        def run():
            calls.append(result)
            return [Unlock(), Feedback(result), Emit("badge." + result, None)]
        return run
    return calls, answer


def test_the_same_badge_within_the_window_replays_the_feedback_only():
    calls, answer = answers()
    w = RepeatWindow(2.0)
    assert len(w.tap("A", 10.0, answer("granted"))) == 3
    assert w.tap("A", 11.0, answer("granted")) == [Feedback("granted")]
    assert w.tap("A", 12.9, answer("granted")) == [Feedback("granted")]  # 1.9 s after the last sighting
    assert w.tap("A", 15.0, answer("granted"))[-1].kind == "badge.granted"  # away 2.1 s: new
    assert len(calls) == 2


def test_another_badge_is_always_a_new_tap_and_so_is_the_first_again():
    calls, answer = answers()
    w = RepeatWindow(2.0)
    w.tap("A", 10.0, answer("granted"))
    w.tap("B", 10.5, answer("denied"))
    assert w.tap("A", 11.0, answer("granted"))[1] == Feedback("granted")
    assert calls == ["granted", "denied", "granted"]


def test_an_answer_without_feedback_is_replayed_as_silence():
    w = RepeatWindow(2.0)
    w.tap("A", 0.0, lambda: [Emit("badge.granted", None)])
    assert w.tap("A", 1.0, lambda: [Emit("badge.granted", None)]) == []


def test_a_window_of_zero_makes_every_tap_new():
    calls, answer = answers()
    w = RepeatWindow(0.0)
    w.tap("A", 1.0, answer("granted"))
    w.tap("A", 1.0, answer("granted"))
    assert len(calls) == 2


def test_every_kind_gets_the_window_of_its_unit_file():
    for kind in ("cabinet", "door", "shredder", "printer"):
        cfg = load(EXAMPLES / f"{kind}.example.yaml")
        cfg = msgspec.structs.replace(cfg, reader=msgspec.structs.replace(cfg.reader, repeat_s=3.5))
        logic = make_logic(cfg)
        deny = PolicyEntry(decision="deny", reason="unknown")
        first = logic.badge("AAAAAAAAAAAAAAAA", deny, 100.0, None)
        assert Feedback("denied") in first
        assert logic.badge("AAAAAAAAAAAAAAAA", deny, 103.0, None) == [Feedback("denied")], kind
        assert Feedback("denied") in logic.badge("AAAAAAAAAAAAAAAA", deny, 107.0, None), kind


def test_the_window_defaults_to_two_seconds_on_a_real_reader_and_none_on_the_stand_in():
    from device.config import ReaderSection

    assert ReaderSection(type="nfcpy").repeat_window_s == 2.0
    assert ReaderSection(type="standin").repeat_window_s == 0.0  # software taps are each on purpose
    assert ReaderSection(type="standin", repeat_s=1.5).repeat_window_s == 1.5
