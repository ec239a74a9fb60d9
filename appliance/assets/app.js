// Outpost — live dashboard. Listens to the box's server-sent events and reloads the live part of the
// page when a declaration, an alert or a person changes. No framework, no external script.
(function () {
  var live = document.getElementById("live");
  var badge = document.getElementById("live-state");
  if (!live || !window.EventSource) return;
  var pending = null;
  function refresh() {
    pending = null;
    fetch("/dashboard/live", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { live.innerHTML = html; } });
  }
  function connect() {
    var es = new EventSource("/events");
    es.onopen = function () { if (badge) badge.className = "live"; };
    es.onmessage = function () { if (!pending) pending = setTimeout(refresh, 150); };
    es.onerror = function () { if (badge) badge.className = "live off"; };
  }
  connect();
  setInterval(refresh, 60000);
})();
