/* Live status page: server-sent events from /events/stream.
   The server sends rows already rendered in the reader's language; this script only
   places them, so it holds no texts of its own. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) { return; }
  var stateLine = document.getElementById("live-state");
  var after = parseInt(live.dataset.after || "0", 10);
  var alertsAfter = parseInt(live.dataset.alertsAfter || "0", 10);
  var source = null, retryTimer = null, failures = 0;

  function show(ok) {
    stateLine.textContent = ok ? live.dataset.textLive : live.dataset.textLost;
    stateLine.className = "live-state " + (ok ? "ok" : "lost");
  }

  function fromHtml(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  function trim(tbody) {
    var keep = parseInt(tbody.dataset.keep || "0", 10);
    while (keep && tbody.rows.length > keep) { tbody.deleteRow(tbody.rows.length - 1); }
  }

  function flash(row) { row.classList.add("fresh"); }

  function setField(station, name, value) {
    var row = document.getElementById("station-" + station);
    if (!row) { return null; }
    var cell = row.querySelector('[data-field="' + name + '"]');
    if (cell && value !== undefined && value !== null) { cell.textContent = value; }
    return row;
  }

  function onEvent(msg) {
    if (msg.row_no <= after && document.querySelector('[data-row-no="' + msg.row_no + '"]')) { return; }
    after = Math.max(after, msg.row_no);
    var tbody = document.getElementById("recent-events");
    if (tbody && !tbody.querySelector('[data-row-no="' + msg.row_no + '"]')) {
      var row = fromHtml(msg.html);
      tbody.insertBefore(row, tbody.firstChild);
      flash(row);
      trim(tbody);
    }
    setField(msg.station, "last-kind", msg.kind_label);
    setField(msg.station, "last-at", msg.at_text);
    setField(msg.station, "last-person", msg.person);
    if (msg.door) { setDoor(msg.station, msg.door, msg.door_label); }
    if (msg.lock_html) { setLock(msg.station, msg.lock_html); }
  }

  function setLock(station, html) {
    var row = document.getElementById("station-" + station);
    var cell = row && row.querySelector('[data-field="lock-cell"]');
    if (cell) { cell.innerHTML = html; }  // only a station that shows a lock
  }

  function setDoor(station, door, label) {
    var row = setField(station, "door", label);
    var pill = row && row.querySelector('[data-field="door"]');
    if (!pill) { return; }  // a station without a door of its own (a shredder, a printer)
    pill.className = "pill door door-" + door;
  }

  function setState(station, state, label) {
    var row = setField(station, "state", label);
    if (!row) { return; }
    row.className = row.className.replace(/\bstate-\w+/, "state-" + state);
  }

  function onStation(msg) {
    setState(msg.station, msg.state, msg.state_label);
    setField(msg.station, "since", msg.since_text);
  }

  function onHeartbeat(msg) {
    var row = document.getElementById("station-" + msg.station);
    if (row && !row.classList.contains("state-online")) { setState(msg.station, msg.state, msg.state_label); }
    setDoor(msg.station, msg.door, msg.door_label);
    var version = setField(msg.station, "policy", msg.policy_text) && row.querySelector('[data-field="policy"]');
    if (version) { version.dataset.version = msg.policy_version === null || msg.policy_version === undefined ? "" : String(msg.policy_version); }
    if (msg.lock_html) { setLock(msg.station, msg.lock_html); }
    setPolicy(msg.station, msg.policy_state, msg.policy_state_label, msg.policy_latest_text);
    setField(msg.station, "heartbeat", msg.heartbeat_text);
    var cell = row && row.querySelector('[data-field="peripherals"]');
    if (cell && msg.peripherals_html !== undefined) { cell.innerHTML = msg.peripherals_html; }
    var clock = row && row.querySelector('[data-field="clock-cell"]');
    if (clock && msg.clock_html !== undefined) { clock.innerHTML = msg.clock_html; }
    setAnnunciators(msg.annunciators_html);
  }

  // The annunciator block: drawn again by the server when a site's alarm changes or an
  // annunciator reports its lamp.
  function setAnnunciators(html) {
    var slot = document.getElementById("annunciators-slot");
    if (!slot || html === undefined || html === null) { return; }
    slot.innerHTML = html;
  }

  // The offices table and its stale-office warning: drawn again by the server when an
  // office goes stale or is heard again (the hub judges that by the clock every second).
  function setOffices(html) {
    var slot = document.getElementById("offices-slot");
    if (!slot || html === undefined || html === null) { return; }
    slot.innerHTML = html;
  }

  function setPolicy(station, state, label, latestText) {
    var row = document.getElementById("station-" + station);
    if (!row || !state) { return; }
    var cell = row.querySelector('[data-field="policy-cell"]');
    if (cell) { cell.className = cell.className.replace(/\bpolicy-\w+/, "policy-" + state); }
    var warn = state === "stale" || state === "pending";
    var pill = setField(station, "policy-state", label) && row.querySelector('[data-field="policy-state"]');
    if (pill) { pill.hidden = !warn; }
    var latest = setField(station, "policy-latest", latestText) && row.querySelector('[data-field="policy-latest"]');
    if (latest) { latest.hidden = !warn; }
  }

  // --- the alerts panel: grouped on the server, fetched again when an alert changes ---
  var panelTimer = null, panelBusy = false, panelAgain = false;
  var baseTitle = document.title.replace(/^\([^)]*\)\s*/, "");
  var lastCritical = null;

  function panelNode() { return document.getElementById("alerts-panel"); }

  function applyTitle(panel) {
    if (!panel) { return; }
    var prefix = panel.dataset.titleCount || "";
    document.title = prefix ? prefix + " " + baseTitle : baseTitle;
    var critical = parseInt(panel.dataset.critical || "0", 10);
    if (lastCritical !== null && critical > lastCritical) { alarm(critical); }
    lastCritical = critical;
  }

  function refreshPanel() {
    if (panelBusy) { panelAgain = true; return; }
    panelBusy = true;
    var url = live.dataset.panel + window.location.search;
    fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}}).then(function (r) {
      if (!r.ok) { throw new Error("panel " + r.status); }
      return r.text();
    }).then(function (html) {
      var old = panelNode();
      var fresh = fromHtml(html);
      if (!old || !fresh) { return; }
      // What the supervisor typed or ticked survives the refresh.
      var ticked = {}, typed = {};
      old.querySelectorAll("input.tick:checked").forEach(function (c) { ticked[c.closest("tr").dataset.group] = true; });
      old.querySelectorAll("form.ack input[name=comment]").forEach(function (i) {
        var row = i.closest("tr"), key = row ? row.dataset.group || row.id : "bulk";
        if (i.value) { typed[key] = i.value; }
      });
      var focused = document.activeElement && old.contains(document.activeElement);
      if (focused) { panelAgain = true; return; }  // never pull a field from under the typist
      old.parentNode.replaceChild(fresh, old);
      fresh.querySelectorAll("input.tick").forEach(function (c) { if (ticked[c.closest("tr").dataset.group]) { c.checked = true; } });
      fresh.querySelectorAll("form.ack input[name=comment]").forEach(function (i) {
        var row = i.closest("tr"), key = row ? row.dataset.group || row.id : "bulk";
        if (typed[key]) { i.value = typed[key]; }
      });
      fresh.querySelectorAll("tr.alert").forEach(function (row) {
        if (!old.querySelector('[data-group="' + row.dataset.group + '"][data-count="' + row.dataset.count + '"]')) { flash(row); }
      });
      wirePanel();
      applyTitle(fresh);
    }).catch(function (err) { if (window.console) { console.error(err); } })
      .then(function () {
        panelBusy = false;
        if (panelAgain) { panelAgain = false; schedulePanel(1000); }
      });
  }

  function schedulePanel(ms) {
    clearTimeout(panelTimer);
    panelTimer = setTimeout(refreshPanel, ms);
  }

  function wirePanel() {
    var all = document.getElementById("tick-all");
    if (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll("#open-alerts input.tick").forEach(function (c) { c.checked = all.checked; });
      });
    }
  }

  // --- opt-in notice and sound for new critical alerts (remembered in localStorage) ---
  var NOTIFY_KEY = "kagiban.notify-critical";
  var notifyButton = document.getElementById("enable-notify");
  var notifyState = document.getElementById("notify-state");
  var audio = null;

  function notifyOn() {
    try { return window.localStorage.getItem(NOTIFY_KEY) === "1"; } catch (e) { return false; }
  }

  function showNotify() {
    if (!notifyButton) { return; }
    var on = notifyOn();
    notifyButton.hidden = on;
    if (notifyState) { notifyState.textContent = on ? notifyButton.dataset.textOn : ""; }
    document.documentElement.dataset.notifyCritical = on ? "on" : "off";
  }

  function beep() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { return; }
    try {
      audio = audio || new Ctx();
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.value = 0.15;
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.6);
    } catch (e) { if (window.console) { console.error(e); } }
  }

  function alarm(critical) {
    if (!notifyOn()) { return; }
    window.kagibanAlarms = (window.kagibanAlarms || 0) + 1;  // alarms sounded: what a test can count
    beep();
    if (window.Notification && Notification.permission === "granted") {
      try { new Notification(notifyButton ? notifyButton.dataset.textTitle : "kagiban", {body: document.title, tag: "kagiban-critical"}); }
      catch (e) { if (window.console) { console.error(e); } }
    }
  }

  if (notifyButton) {
    notifyButton.addEventListener("click", function () {
      try { window.localStorage.setItem(NOTIFY_KEY, "1"); } catch (e) { /* private mode: this page only */ }
      beep();  // a user gesture: unlocks sound for later alerts
      if (window.Notification && Notification.permission === "default") { Notification.requestPermission(); }
      showNotify();
    });
  }
  showNotify();
  wirePanel();
  applyTitle(panelNode());

  function onAlert(msg) {
    alertsAfter = Math.max(alertsAfter, msg.id);
    if (panelNode()) { schedulePanel(250); return; }
    var old = document.getElementById("alert-" + msg.id);
    if (old) { old.parentNode.removeChild(old); }
    var row = fromHtml(msg.html);
    var target = document.getElementById(msg.state === "open" ? "open-alerts" : "acked-alerts");
    if (target) {
      target.insertBefore(row, target.firstChild);
      flash(row);
      trim(target);
    }
    var open = document.getElementById("open-alerts");
    var count = document.getElementById("open-count");
    var n = open ? open.rows.length : 0;
    if (count) {
      count.textContent = String(n);
      count.classList.toggle("hot", n > 0);
    }
    var none = document.getElementById("no-open-alerts");
    if (none) { none.hidden = n > 0; }
    var acked = document.getElementById("acked-alerts");
    var noneAcked = document.getElementById("no-acked-alerts");
    if (acked && noneAcked) { noneAcked.hidden = acked.rows.length > 0; }
  }

  function handler(fn) {
    return function (e) {
      try { fn(JSON.parse(e.data)); } catch (err) { if (window.console) { console.error(err); } }
    };
  }

  function connect() {
    source = new EventSource(live.dataset.stream + "?after=" + after + "&alerts_after=" + alertsAfter);
    source.onopen = function () { failures = 0; show(true); };
    source.onerror = function () {
      show(false);
      source.close();
      failures += 1;
      // Signed out or the hub restarted with a new key: a reload leads to the sign-in page.
      if (failures >= 5) { window.location.reload(); return; }
      clearTimeout(retryTimer);
      retryTimer = setTimeout(connect, 2000);
    };
    source.addEventListener("event", handler(onEvent));
    source.addEventListener("station", handler(onStation));
    source.addEventListener("heartbeat", handler(onHeartbeat));
    source.addEventListener("site_alarm", handler(function (msg) { setAnnunciators(msg.annunciators_html); }));
    source.addEventListener("offices", handler(function (msg) { setOffices(msg.offices_html); }));
    source.addEventListener("alert", handler(onAlert));
    source.addEventListener("alert_ack", handler(onAlert));
    source.addEventListener("reload", function () { window.location.reload(); });
  }

  connect();
})();
