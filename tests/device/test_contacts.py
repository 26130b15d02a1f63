"""The door and the extra inputs are debounced the same way: a bouncing contact is heard once,
at the time it really moved, once its level has held for ``debounce_ms``."""
from device.contacts import DOOR, Contacts, Settled


def test_a_bouncing_door_is_heard_once_with_the_time_it_settled_on_its_new_level():
    c = Contacts(0.05)
    c.reset({DOOR: False})
    for i in range(11):  # contact bounce, ending open
        assert c.edge(DOOR, i % 2 == 0, 10.0 + i * 0.002) == []
    assert c.due(10.03) == []  # not held long enough yet
    assert c.due(c.next_deadline()) == [Settled(DOOR, True, 10.02)]
    assert c.next_deadline() is None and c.due(11.0) == []


def test_a_bounce_that_ends_where_it_began_is_no_change():
    c = Contacts(0.05)
    c.reset({DOOR: False})
    c.edge(DOOR, True, 1.0)
    c.edge(DOOR, False, 1.01)
    assert c.due(2.0) == []


def test_without_debounce_an_edge_is_heard_at_once():
    c = Contacts(0.0)
    c.reset({DOOR: False, "stop_button": True})
    assert c.edge("stop_button", False, 5.0) == [Settled("stop_button", False, 5.0)]
    assert c.edge(DOOR, True, 5.1) == [Settled(DOOR, True, 5.1)]
    assert c.edge(DOOR, True, 5.2) == []  # the same level again is not an edge


def test_the_door_and_an_input_settle_each_on_its_own_time():
    c = Contacts(0.05)
    c.reset({DOOR: False, "bin": False})
    c.edge("bin", True, 1.0)
    c.edge(DOOR, True, 1.02)
    assert c.due(1.06) == [Settled("bin", True, 1.0)]
    assert c.due(1.08) == [Settled(DOOR, True, 1.02)]


def test_an_edge_of_a_contact_the_unit_does_not_have_is_ignored():
    c = Contacts(0.0)
    c.reset({"tray": False})
    assert c.edge(DOOR, True, 1.0) == [] and c.next_deadline() is None
