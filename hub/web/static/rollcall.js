/* An open roll call's page: every few seconds, fetch the page again and put its fresh counts,
   roster and state in place (no reload, so nothing the supervisor is doing is interrupted).
   The server renders everything in the reader's language; this script holds no texts.
   Bounded: it stops when the session is closed, and after 12 hours in any case. */
(function () {
  "use strict";
  var roster = document.getElementById("roster");
  if (!roster || !roster.dataset.refreshS || !window.fetch || !window.DOMParser) { return; }
  var every = parseInt(roster.dataset.refreshS, 10) * 1000;
  var left = Math.ceil(12 * 3600 * 1000 / every);

  function swap(doc, id) {
    var fresh = doc.getElementById(id), old = document.getElementById(id);
    if (fresh && old) { old.replaceWith(fresh); }
  }

  function tick() {
    left -= 1;
    fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return true; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["session-state", "counts", "roster"].forEach(function (id) { swap(doc, id); });
        var now = document.getElementById("roster");
        return Boolean(now && now.dataset.refreshS);
      })
      .catch(function () { return true; })
      .then(function (again) { if (again && left > 0) { window.setTimeout(tick, every); } });
  }
  window.setTimeout(tick, every);
})();
