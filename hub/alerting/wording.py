"""What an alert says, in Japanese and English: rule and severity names and each rule's sentence,
made from the alert's stored params (so a page can say it in either language at any time).

Shared by the alerts themselves, the notifier and every page or report that shows an alert.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kagiban import events as ev

# (Japanese, English) names, for titles and the page.
RULE_NAMES: dict[str, tuple[str, str]] = {
    "forced": ("扉のこじ開け", "Door forced"),
    "intrusion": ("制限区域への無許可の立ち入り", "Intrusion"),
    "shred_flagged": ("要確認のシュレッダー利用", "Shredding to check"),
    "held_open": ("扉の長時間開放", "Door held open"),
    "denied": ("バッジの拒否", "Badge denied"),
    "after_hours": ("時間外の利用", "After-hours use"),
    "flagged_use": ("指定外の職員による利用", "Non-designated use"),
    "offline": ("端末のオフライン", "Station offline"),
    "online": ("端末の復帰", "Station back online"),
    "seq_gap": ("イベントの欠落", "Missing events"),
    "outbox_filling": ("未送信イベントの滞留", "Outbox filling up"),
    "storage_failed": ("端末の記録不能", "Station cannot record"),
    "storage_corrupt": ("端末の保存ファイルの破損", "Station storage damaged"),
    "policy_rejected": ("ポリシーの受け取り拒否", "Policy refused"),
    "policy_stale": ("古いポリシーのままの端末", "Station holds an old policy"),
    "policy_expired": ("端末のポリシーの期限切れ", "Station policy expired"),
    "tray_uncollected": ("印刷物の取り忘れ", "Printouts left uncollected"),
    "print_expired": ("保留印刷の期限切れ", "Held print jobs expired"),
    "cups_down": ("印刷サーバーに接続できない", "Print server unreachable"),
    "cups_up": ("印刷サーバーへの接続の回復", "Print server reachable again"),
    "pins_failed": ("GPIO（扉センサー・錠）の故障", "GPIO pins not working"),
    "pins_ok": ("GPIO（扉センサー・錠）の回復", "GPIO pins working again"),
    "reader_failed": ("カードリーダーの故障", "Badge reader not working"),
    "reader_ok": ("カードリーダーの回復", "Badge reader working again"),
    "camera_failed": ("カメラの故障", "Camera not working"),
    "camera_ok": ("カメラの回復", "Camera working again"),
    "clock_skew": ("端末の時計のずれ", "Station clock off"),
    "clock_unsynced": ("端末の時計が未同期", "Station clock not synchronised"),
    "bad_signature": ("署名を検証できないイベント", "Event with a bad signature"),
    "signin_failures": ("Webサインインの失敗の繰り返し", "Repeated failed web sign-ins"),
}
SEVERITY_NAMES: dict[str, tuple[str, str]] = {
    "info": ("情報", "Info"),
    "warning": ("警告", "Warning"),
    "critical": ("重大", "Critical"),
}
# What an event is called inside a sentence ({what}), by kind (kagiban.events, the one list of kinds).
KIND_NAMES: dict[str, tuple[str, str]] = {
    ev.BadgeGranted.KIND: ("バッジによる解錠", "badge unlock"),
    ev.DoorForced.KIND: ("扉のこじ開け", "forced door"),
    ev.DoorIntrusion.KIND: ("無許可の立ち入り", "intrusion"),
    ev.DoorOpened.KIND: ("扉の開放", "door opening"),
    ev.KeyUsed.KIND: ("鍵の使用", "key use"),
}
_REASONS: dict[str, tuple[str, str]] = {
    "unknown": ("未登録のバッジ", "unknown badge"),
    # Why the registry's policy denies a badge (hub.registry.compile).
    "revoked": ("失効・紛失したバッジ", "badge revoked or lost"),
    "inactive": ("在職期間外", "person no longer active"),
    "badge_expired": ("バッジの有効期限切れ", "badge expired"),
    "not_yet_valid": ("有効期間の開始前", "not yet valid"),
    "untrained": ("研修未受講", "training not taken"),
    "training_expired": ("研修の有効期限切れ", "training expired"),
    "not_designated": ("指定外の職員", "not designated"),
    "outside_hours": ("時間外", "outside hours"),
    "no_policy": ("ポリシー未受信", "no policy received yet"),
    # Why a station refused a policy (kagiban.signing, device.policy_cache).
    "unsigned": ("署名なし", "not signed"),
    "unknown_key": ("ハブ以外の鍵で署名", "signed with an unknown key"),
    "bad_signature": ("署名が一致しない", "signature does not match"),
    "retired_key": ("廃止済みの鍵で署名", "signed with a retired key"),
    "bad_schema": ("形式の誤り", "malformed"),
    "wrong_station": ("別の端末あて", "meant for another station"),
    "older_version": ("保持している版より古い", "older than the one held"),
    "": ("-", "-"),
}
# What is wrong with a peripheral (kagiban.protocol.PeripheralHealth.error), and its state.
PERIPHERAL_ERRORS: dict[str, tuple[str, str]] = {
    "not_found": ("見つからない", "not found"),
    "unplugged": ("取り外された", "unplugged"),
    "read_failed": ("読み取りエラー", "read error"),
    "open_failed": ("開けない", "cannot be opened"),
    "open_timeout": ("開く処理が応答しない", "does not answer when opened"),
    "capture_failed": ("撮影エラー", "capture error"),
    "capture_timeout": ("撮影が応答しない", "capture does not answer"),
    "gpio_unavailable": ("GPIOを開けない", "GPIO cannot be opened"),
    "pin_failed": ("ピンを使えない", "a pin cannot be used"),
    "cups_down": ("応答しない", "not answering"),
}
_PERIPHERAL_STATES: dict[str, tuple[str, str]] = {
    "failed": ("故障", "failed"),
    "absent": ("未検出", "absent"),
    "ok": ("正常", "ok"),
}
# Why a shredding session is flagged (hub.ledgers.shredding).
_SHRED_FLAGS: dict[str, tuple[str, str]] = {
    "not_on_roster": ("2人とも当日の当番外", "neither on the day's roster"),
    "after_hours": ("時間外", "after hours"),
}
_TEMPLATES: dict[str, tuple[str, str]] = {
    "intrusion": ("{station_name}の扉がバッジなしで開けられました（{time}）。",
                  "Door {station_name} opened without a badge at {time}."),
    "shred_flagged": ("{station_name}で確認が必要なシュレッダー利用がありました（{who}、{flags}、{time}）。",
                      "Shredding at {station_name} to check: {who} ({flags}) at {time}."),
    "forced": ("{station_name}で扉がこじ開けられました（{time}）。",
               "Door forced open at {station_name} at {time}."),
    "held_open": ("{station_name}の扉が{open_s}秒間開いたままです（上限{limit_s}秒、{time}）。",
                  "Door held open at {station_name} for {open_s} s (limit {limit_s} s) at {time}."),
    "denied": ("{station_name}でバッジ{badge}が拒否されました（理由: {reason}、{time}）。",
               "Badge {badge} denied at {station_name} (reason: {reason}) at {time}."),
    "after_hours": ("{station_name}で時間外の{what}がありました（{who}、{time}）。",
                    "After-hours {what} at {station_name} by {who} at {time}."),
    "flagged_use": ("{station_name}を指定外の職員が利用しました（{who}、{time}）。",
                    "Non-designated use of {station_name} by {who} at {time}."),
    "offline.last_will": ("{station_name}がオフラインになりました（接続断、{time}）。",
                          "{station_name} went offline (connection lost) at {time}."),
    "offline.no_heartbeat": ("{station_name}がオフラインになりました（{time}以降{silent_s}秒間応答なし）。",
                             "{station_name} went offline: nothing heard for {silent_s} s since {time}."),
    "online": ("{station_name}がオンラインに戻りました（{time}）。",
               "{station_name} is back online at {time}."),
    "seq_gap": ("{station_name}のイベント{missing_from}〜{missing_to}が{grace_s}秒以内に届きませんでした。",
                "{station_name}: events {missing_from}-{missing_to} did not arrive within {grace_s} s."),
    "storage_failed": ("{station_name}が記録を保存できません（{unrecorded}件が未保存、{error}）。"
                       "記録できない間は解錠しません（{time}）。",
                       "{station_name} cannot store its records ({unrecorded} unsaved, {error}); it "
                       "unlocks nothing until it can ({time})."),
    # A damaged store moved aside at start (hub.alerting.rules._storage_corrupt): what may be missing.
    "storage_corrupt.outbox": (
        "{station_name}の記録ファイルが壊れていたため退避し（{kept}）、新しいファイルで記録を再開しました"
        "（{error}、{time}）。以前の記録ファイルのseq {last_stored}より後のイベントは失われた可能性があります。",
        "{station_name} found its outbox damaged ({error}), kept it as {kept} and records in a fresh one "
        "from {time}: events after seq {last_stored} of the previous storage may be lost."),
    "storage_corrupt.outbox_range": (
        "{station_name}の記録ファイルが壊れていたため退避し（{kept}）、新しいファイルで記録を再開しました"
        "（{error}、{time}）。以前の記録ファイルのseq {lost_from}〜{lost_to}はハブに届いておらず、"
        "seq {last_stored}より後のイベントは失われた可能性があります。",
        "{station_name} found its outbox damaged ({error}), kept it as {kept} and records in a fresh one "
        "from {time}: events after seq {last_stored} of the previous storage may be lost "
        "(seq {lost_from}-{lost_to} never reached the hub)."),
    "storage_corrupt.outbox_nothing": (
        "{station_name}の記録ファイルが壊れていたため退避し（{kept}）、新しいファイルで記録を再開しました"
        "（{error}、{time}）。以前の記録ファイルのイベントは1件もハブに届いておらず、失われた可能性があります。",
        "{station_name} found its outbox damaged ({error}), kept it as {kept} and records in a fresh one "
        "from {time}: no event of the previous storage reached the hub; all of them may be lost."),
    "storage_corrupt.policy": (
        "{station_name}のポリシーの保存ファイルが使えないため退避しました（{kept}、{error}、{time}）。"
        "ハブからポリシーが届くまで、すべてのバッジを拒否します。",
        "{station_name} could not use its stored policy ({error}), kept it as {kept} at {time}; it "
        "refuses every badge until the hub's policy reaches it."),
    "outbox_filling": ("{station_name}の未送信イベントが溜まっています（{depth}/{capacity}件、{time}）。",
                       "{station_name}: {depth} of {capacity} outbox places hold unsent events at {time}."),
    "policy_rejected": ("{station_name}がポリシー（版{offered_version}）を拒否しました"
                        "（理由: {reason}、保持中の版{held_version}、{time}）。",
                        "{station_name} refused policy version {offered_version} (reason: {reason}; "
                        "holding version {held_version}) at {time}."),
    "policy_stale": ("{station_name}が古いポリシー（版{held_version}）のままです。最新の版{latest_version}が"
                     "{grace_s}秒以上届いていません（{time}以降）。",
                     "{station_name} still holds policy version {held_version}: the latest, version "
                     "{latest_version}, has not reached it for {grace_s} s (since {time})."),
    "policy_expired": ("{station_name}のポリシー（版{held_version}）が期限切れです（{time}）。ハブのポリシーが届くまで、"
                       "この端末の判定にはすべて印が付きます（設定により拒否）。",
                       "The policy of {station_name} (version {held_version}) has expired ({time}): until the "
                       "hub's policy reaches it, every decision there is flagged (or denied, as configured)."),
    "tray_uncollected": ("{station_name}のトレイに印刷物が{minutes}分以上残っています（{time}）。",
                         "Printouts have been lying in the tray of {station_name} for {minutes} min ({time})."),
    "print_expired": ("{station_name}で保留中の印刷{count}件が{limit_min}分を過ぎたため取り消されました"
                      "（{time}）。", "{count} held print job(s) at {station_name} were cancelled unprinted after "
                      "{limit_min} min ({time})."),
    "cups_down": ("{station_name}が印刷サーバー（CUPS）に接続できません。印刷は保留されたままです（{time}）。",
                  "{station_name} cannot reach its print server (CUPS); jobs stay held ({time})."),
    "cups_up": ("{station_name}から印刷サーバー（CUPS）に再び接続できました（{time}）。",
                "{station_name} reaches its print server (CUPS) again ({time})."),
    "pins_failed": ("{station_name}のGPIO（扉センサー・錠）が使えません（{problem}、{time}から）。扉を監視できず、"
                    "解錠もできません。", "The GPIO pins of {station_name} (door switch, lock) do not work "
                    "({problem}) since {time}: the door is not watched and nothing is unlocked."),
    "pins_ok": ("{station_name}のGPIO（扉センサー・錠）が再び使えます（{time}）。",
                "The GPIO pins of {station_name} work again ({time})."),
    "reader_failed": ("{station_name}のカードリーダーが使えません（{problem}、{time}から）。バッジを読めませんが、"
                      "扉の監視は続いています。", "The badge reader of {station_name} does not work ({problem}) "
                      "since {time}: no badge can be read; the door is still watched."),
    "reader_ok": ("{station_name}のカードリーダーが再び使えます（{time}）。",
                  "The badge reader of {station_name} works again ({time})."),
    "camera_failed": ("{station_name}のカメラが使えません（{problem}、{time}から）。写真なしで記録を続けています。",
                      "The camera of {station_name} does not work ({problem}) since {time}: events are "
                      "recorded without photos."),
    "camera_ok": ("{station_name}のカメラが再び使えます（{time}）。",
                  "The camera of {station_name} works again ({time})."),
    # The station's clock against the hub's receive time (hub.alerting.rules._clock).
    "clock_skew.ahead": ("{station_name}の時計が{offset_abs_s}秒進んでいます（許容{limit_s}秒、{time}）。"
                         "この端末の記録の時刻は正確ではありません。",
                         "The clock of {station_name} is {offset_abs_s} s ahead (limit {limit_s} s) at {time}: "
                         "the times of its records are not right."),
    "clock_skew.behind": ("{station_name}の時計が{offset_abs_s}秒遅れています（許容{limit_s}秒、{time}）。"
                          "この端末の記録の時刻は正確ではありません。",
                          "The clock of {station_name} is {offset_abs_s} s behind (limit {limit_s} s) at {time}: "
                          "the times of its records are not right."),
    "clock_unsynced": ("{station_name}の時計が時刻同期されていません（{time}）。同期されるまでの記録には印が付きます。",
                       "The clock of {station_name} is not synchronised ({time}); its records are marked until "
                       "it is."),
    # A signed event refused at ingest (hub.ingest.refusals); the first of each station until acknowledged.
    "bad_signature": ("{station_name}から署名を検証できないイベント（連番{seq}、{reason}）を受け取りました（{time}）。"
                      "保存せず隔離しています。端末の鍵と登録内容を確認してください。",
                      "{station_name} sent an event (seq {seq}) whose signature the hub refused ({reason}) at "
                      "{time}; it is quarantined, not stored. Check the unit's key against the one registered."),
    # Guessed passwords on the web page (hub.web.throttle): per account, or per address.
    "signin_failures.account": (
        "Webページのアカウント「{user}」で、{window_min}分以内に{failures}回サインインに失敗しました"
        "（最後は{address}から、{time}）。このアカウントへのサインインはしばらく拒否されます。",
        "{failures} failed web sign-ins for account \"{user}\" within {window_min} min (the last from "
        "{address} at {time}); sign-in to this account is refused for a while."),
    "signin_failures.address": (
        "{address}から、{window_min}分以内に{failures}回Webページへのサインインに失敗しました"
        "（最後はアカウント「{user}」、{time}）。このアドレスからのサインインはしばらく拒否されます。",
        "{failures} failed web sign-ins from {address} within {window_min} min (the last for account "
        "\"{user}\" at {time}); sign-in from this address is refused for a while."),
}


class _Blank(dict):
    """Format arguments where a missing key reads as "?" rather than failing."""

    def __missing__(self, key: str) -> str:
        return "?"


def local_time_text(at_iso: str | None, zone: str | None) -> str:
    """``at_iso`` as ``YYYY-MM-DD HH:MM:SS ZONE`` in ``zone`` (or its own offset)."""
    if not at_iso:
        return "?"
    if not isinstance(at_iso, str):  # a stored params row with something else in it
        return str(at_iso)
    try:
        when = datetime.fromisoformat(at_iso.replace("Z", "+00:00"))
        if zone:
            when = when.astimezone(ZoneInfo(zone))
    except (ValueError, OverflowError, ZoneInfoNotFoundError):
        return at_iso
    return when.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def alert_text(rule: str, params: dict[str, Any], lang: str = "en") -> str:
    """The alert's sentence in ``lang`` ("ja" or "en"), from its stored params."""
    i = 0 if lang == "ja" else 1
    args = _Blank(params)
    args["time"] = local_time_text(params.get("at"), params.get("zone"))
    args["station_name"] = params.get("station_name") or params.get("station") or "?"
    args["who"] = params.get("person") or params.get("badge") or ("不明" if i == 0 else "unknown")
    kind = params.get("kind") or ""
    args["what"] = KIND_NAMES.get(kind, (kind, kind))[i]
    reason = params.get("reason") or ""
    args["reason"] = _REASONS.get(reason, (reason, reason))[i]
    for key in ("held_version", "offered_version"):
        if key in params and params[key] is None:
            args[key] = "なし" if i == 0 else "none"  # a station that holds no policy yet
    code = params.get("error_code")
    if "peripheral" in params:
        state = _PERIPHERAL_STATES.get(params.get("state") or "", ("?", "?"))[i]
        args["problem"] = PERIPHERAL_ERRORS.get(code, (code, code))[i] if code else state
    flags = [f for f in params.get("flags") or [] if isinstance(f, str)]
    args["flags"] = ("、" if i == 0 else ", ").join(_SHRED_FLAGS.get(f, (f, f))[i] for f in flags)
    template = _TEMPLATES.get(f"{rule}.{params.get('cause')}") or _TEMPLATES.get(rule)
    if template is None:
        return params.get("message") or rule
    return template[i].format_map(args)
