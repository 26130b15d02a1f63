"""One catalogue: every code the hub words for a person (registry errors and import problems,
alert rules, their causes and severities, export labels) has a Japanese and an English text
in the web page's catalogs, and code outside a web request (exports, notifier, CLI) reads
them in either language."""
from __future__ import annotations

import csv
import io
import re
import threading
from pathlib import Path

import pytest

from hub import catalog
from hub.alerting import alerts, wording
from hub.catalog import Msg
from hub.ledgers import base, closeout, keys, printing, shredding
from hub.registry import messages
from hub.registry.io import RowProblem
from hub.registry.log import NotFound, RegistryError

ROOT = Path(__file__).resolve().parents[2]
_PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def coded_texts() -> list[tuple[str, str, Msg]]:
    """(group, code, text) of every code the hub words."""
    tables: dict[str, dict[str, Msg]] = {
        "registry error": messages.ERRORS,
        "import problem": messages.PROBLEMS,
        **{f"alert {name}": dict(table) for name, table in wording.TEXTS.items()},
    }
    for ledger, parts in (
        (keys, {"headers": keys.HEADERS, "entries": keys.ENTRIES}),
        (printing, {"headers": printing.HEADERS, "entries": printing.ENTRIES, "words": printing.WORDS}),
        (shredding, {"headers": shredding.HEADERS, "endings": shredding.ENDINGS}),
        (closeout, {"headers": closeout.HEADERS, "statuses": closeout.STATUSES}),
    ):
        name = ledger.__name__.rsplit(".", 1)[1]
        for part, table in parts.items():
            tables[f"{name} export {part}"] = table
        tables[f"{name} export sheet"] = {"sheet": ledger.SHEET}
    tables["export words"] = {"yes": base.YES}
    return [(group, code, msg) for group, table in tables.items() for code, msg in table.items()]


def test_the_tables_are_all_there():
    groups = {group for group, _code, _msg in coded_texts()}
    assert {"registry error", "import problem", "alert rules", "alert severities", "alert sentences",
            "keys export headers", "printing export words", "shredding export endings",
            "closeout export statuses"} <= groups
    assert len(coded_texts()) > 200


@pytest.mark.parametrize("group, code, msg", coded_texts(), ids=lambda v: v if isinstance(v, str) else None)
def test_every_code_has_japanese_and_english(group, code, msg):
    japanese = catalog.lookup("ja", msg)
    english = catalog.translate("en", msg)
    assert japanese, f"{group} {code}: no Japanese for {msg}"
    assert english.strip() and japanese != code
    # A code that is one plain word ("ok", "unplugged") may read as itself in English.
    assert english != code or re.fullmatch(r"[a-z]+", code)
    # Both say every value the sentence is given, so neither drops nor invents one.
    assert sorted(_PLACEHOLDER.findall(japanese)) == sorted(_PLACEHOLDER.findall(english))


def test_every_code_the_registry_raises_has_a_sentence():
    source = "\n".join(p.read_text() for p in sorted((ROOT / "hub" / "registry").glob("*.py")))
    raised = set(re.findall(r"(?:RegistryError|NotFound)\(\s*\"([\w.]+)\"", source))
    problems = set(re.findall(r"self\.problem\(\w+, [^,]+,\s*\"(\w+)\"", source))
    problems |= set(re.findall(r"RowProblem\([^\"]*?\"\", \"(\w+)\"", source))
    assert len(raised) > 30 and len(problems) > 15
    assert raised - set(messages.ERRORS) == set()
    assert problems - set(messages.PROBLEMS) == set()


def test_a_registry_error_reads_in_each_language_and_in_english_for_logs():
    taken = RegistryError("badge.taken", {"badge": "AABBCCDD", "number": "001001"})
    assert str(taken) == "Badge AABBCCDD is already registered to 001001 (a badge ID is never reused)."
    assert taken.text("ja") == "バッジ AABBCCDD は既に 001001 に登録されています（バッジIDは再利用できません）。"
    # The field the sentence leaves out is named in the log line, not on the page.
    missing = NotFound("person.not_found", {"number": "009999"})
    assert isinstance(missing, RegistryError) and missing.code == "person.not_found"
    no_date = RegistryError("date.missing", {"what": "held_on"})
    assert (str(no_date), no_date.text("ja")) == ("held_on: A date is needed.", "日付を入力してください。")
    problem = RowProblem(3, "職員番号", "unknown_staff_no", (("number", "009999"),))
    assert (problem.reason, problem.text("ja")) == ("unknown staff number 009999", catalog.translate(
        "ja", messages.PROBLEMS["unknown_staff_no"], number="009999"))
    assert "009999" in problem.text("ja") and problem.text("ja") != problem.reason


def test_alert_rules_are_named_on_the_page_and_in_notifications_and_have_sentences():
    from hub.web import i18n

    rules = set(wording.RULE_NAMES)
    assert rules == set(i18n.ALERT_RULES)
    for rule in rules:
        assert any(s == rule or s.startswith(rule + ".") for s in wording.SENTENCES), rule
    assert {s.split(".")[0] for s in wording.SENTENCES} <= rules
    assert set(alerts.SEVERITIES) <= set(wording.SEVERITY_NAMES) & set(i18n.SEVERITIES)
    assert wording.RULE_NAMES["forced"] == ("扉のこじ開け", "Door forced open")
    assert (wording.rule_name("forced", "ja"), wording.severity_name("critical", "en")) == ("扉のこじ開け", "Critical")


def test_every_rule_the_hub_raises_is_named_in_both_languages():
    from hub.web import throttle

    source = "\n".join(p.read_text() for p in sorted((ROOT / "hub").rglob("*.py")))
    # A rule is raised as ("rule", "severity", ...) or ("rule", severity); peripheral rules
    # as ("rule_failed", "rule_ok", "severity").
    raised = set(re.findall(r'"([a-z_]+)",\s*(?:"(?:critical|warning|info)"|severity)', source))
    for pair in re.findall(r'"([a-z_]+)", "([a-z_]+)", "(?:critical|warning|info)"', source):
        raised |= set(pair)
    raised = (raised - set(alerts.SEVERITIES)) | {throttle.RULE}
    assert len(raised) >= 30
    assert raised - set(wording.RULES) == set()
    for rule in raised:
        ja, en = wording.RULE_NAMES[rule]
        assert ja != en and ja != rule and en != rule, rule


def test_an_export_outside_a_request_is_worded_in_japanese():
    body = keys.to_csv([], keys.labels("ja")).decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(body)))
    assert header[:3] == [catalog.translate("ja", keys.HEADERS[c]) for c in keys.COLUMNS[:3]]
    assert header[0] == "鍵保管庫" and keys.labels("ja").sheet == "鍵の使用簿"
    assert keys.to_csv([]).decode("utf-8-sig").startswith("Cabinet,Day,Entry,")


def test_the_notifier_thread_words_alerts_like_the_page():
    params = {"station": "cabinet-1", "station_name": "金庫室", "at": "2025-04-01T00:00:00+00:00",
              "zone": "Asia/Tokyo"}
    said: list[str] = []
    worker = threading.Thread(target=lambda: said.extend(wording.alert_text("forced", params, lang)
                                                         for lang in ("ja", "en")))
    worker.start()
    worker.join(timeout=10)
    assert said == ["金庫室で扉がこじ開けられました（2025-04-01 09:00:00）。",
                    "Door forced open at 金庫室 at 2025-04-01 09:00:00."]


def test_every_code_an_api_token_refusal_carries_is_worded_on_the_account_page():
    from hub.web.tokens import ERRORS

    source = (ROOT / "hub" / "accounts" / "tokens.py").read_text()
    raised = set(re.findall(r"\"(token_\w+)\"\)", source))  # TokenError(message, code)
    assert len(raised) == 4 and raised == set(ERRORS)
    for code, text in ERRORS.items():
        msg = Msg(text._args[0])  # the lazy text's source string
        assert catalog.lookup("ja", msg) and msg.id != code
