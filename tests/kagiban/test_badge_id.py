"""The one badge-id normaliser: every form people copy an id in is accepted, and every id no
card can have is refused with a code that says why."""
from __future__ import annotations

import pytest

from kagiban.badge_id import BadgeIdError, normalise_badge_id

FELICA = "012E4CD2A5B71F03"  # an IDm: 8 bytes

ACCEPTED = [
    # (typed, stored)
    ("012E4CD2A5B71F03", FELICA),
    ("012e4cd2a5b71f03", FELICA),  # lower case
    ("01:2E:4C:D2:A5:B7:1F:03", FELICA),  # colons, as reader software shows it
    ("01 2e 4c d2 a5 b7 1f 03", FELICA),  # spaces
    ("01-2E-4C-D2-A5-B7-1F-03", FELICA),  # hyphens
    ("  012E 4CD2-A5B7:1F03\t", FELICA),  # mixed, with blanks around
    ("０１２Ｅ４ＣＤ２Ａ５Ｂ７１Ｆ０３", FELICA),  # full-width digits and letters
    ("０１－２Ｅ－４Ｃ－Ｄ２－Ａ５－Ｂ７－１Ｆ－０３", FELICA),  # full-width hyphens
    ("01\u30002E\u30004C\u3000D2\u3000A5\u3000B7\u30001F\u300003", FELICA),  # ideographic spaces
    ("04‐A2‐2B‐1A", "04A22B1A"),  # a dash an input method types for "-"
    ("04:a2:2b:1a", "04A22B1A"),  # ISO 14443 single-size UID: 4 bytes
    ("04 5A 2B 1A 6C 3D 80", "045A2B1A6C3D80"),  # double-size UID: 7 bytes
    ("04:5A:2B:1A:6C:3D:80:11:22:33", "045A2B1A6C3D80112233"),  # triple-size UID: 10 bytes
]

REFUSED = [
    # (typed, code, params that must be in the error)
    (None, "badge_id_not_text", {"kind": "NoneType"}),
    (12345678, "badge_id_not_text", {"kind": "int"}),
    ("", "badge_id_empty", {}),
    (" : - ", "badge_id_empty", {}),
    ("012E4CD2A5B71F0G", "badge_id_not_hex", {"char": "G"}),
    ("012E4CD2_A5B71F03", "badge_id_not_hex", {"char": "_"}),
    ("0x012E4CD2", "badge_id_not_hex", {"char": "X"}),
    ("012E4CD2A5B71F0", "badge_id_odd_length", {"digits": 15}),  # a digit lost
    ("04A22B1A0", "badge_id_odd_length", {"digits": 9}),
    ("04A22B", "badge_id_length", {"digits": 6, "bytes": 3}),
    ("04A22B1A6C", "badge_id_length", {"digits": 10, "bytes": 5}),
    ("012E4CD2A5B71F0304", "badge_id_length", {"digits": 18, "bytes": 9}),
    ("00" * 16, "badge_id_length", {"digits": 32, "bytes": 16}),  # the old rule's upper end
]


@pytest.mark.parametrize(("typed", "stored"), ACCEPTED)
def test_every_way_people_write_an_id_gives_the_one_the_reader_reports(typed, stored):
    assert normalise_badge_id(typed) == stored
    assert normalise_badge_id(stored) == stored  # and normalising again changes nothing


@pytest.mark.parametrize(("typed", "code", "params"), REFUSED)
def test_ids_no_card_has_are_refused_with_a_code_and_its_parameters(typed, code, params):
    with pytest.raises(BadgeIdError) as caught:
        normalise_badge_id(typed)
    err = caught.value
    assert err.code == code
    assert params.items() <= err.params.items()
    assert isinstance(err, ValueError)  # callers that know only ValueError still catch it


def test_the_english_message_says_what_is_wrong():
    with pytest.raises(BadgeIdError) as odd:
        normalise_badge_id("012E4CD2A5B71F0")
    assert "15 hex digits" in str(odd.value) and "not whole bytes" in str(odd.value)
    with pytest.raises(BadgeIdError) as short:
        normalise_badge_id("04:A2:2B")
    text = str(short.value)
    assert "'04:A2:2B'" in text and "3 bytes" in text and "8, 14, 16 or 20" in text
