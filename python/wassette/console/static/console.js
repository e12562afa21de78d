// The console's only script (no inline script: the Content-Security-Policy
// allows this file alone). It keeps two parts of a page current by polling
// fragments the server renders: new audit records, and the grant requests.
"use strict";

(function () {
  var EVERY_MS = 1000;

  function poll(url, apply) {
    function tick() {
      fetch(url(), { credentials: "same-origin", headers: { accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) { apply(data); } })
        .catch(function () { /* the server restarts: try again */ })
        .then(function () { window.setTimeout(tick, EVERY_MS); });
    }
    window.setTimeout(tick, EVERY_MS);
  }

  var audit = document.getElementById("audit");
  if (audit) {
    poll(function () {
      var base = audit.dataset.live;
      return base + (base.indexOf("?") < 0 ? "?" : "&") + "after=" + audit.dataset.after;
    }, function (data) {
      if (data.html) {
        audit.tBodies[0].insertAdjacentHTML("afterbegin", data.html);
      }
      audit.dataset.after = String(data.after);
    });
  }

  var requests = document.getElementById("requests");
  if (requests) {
    var shown = null;
    poll(function () { return requests.dataset.refresh; }, function (data) {
      if (data.html !== shown) {  // not while nothing changed: a click may be under way
        requests.innerHTML = data.html;
        shown = data.html;
      }
    });
  }
})();
