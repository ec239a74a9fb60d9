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

// The sampling desk: where the phone's browser can read QR codes (BarcodeDetector) and use the
// camera, a button scans the person's code into the form and submits it. Elsewhere staff type the ID
// number, or a scanner types the code.
(function () {
  var box = document.getElementById("scanner");
  var code = document.getElementById("code");
  if (!box || !code || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  box.hidden = false;
  document.getElementById("scan").addEventListener("click", function () {
    var video = document.getElementById("scanner-video");
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream;
      video.play();
      function look() {
        detector.detect(video).then(function (found) {
          if (found.length) {
            stream.getTracks().forEach(function (t) { t.stop(); });
            code.value = found[0].rawValue;
            code.form.submit();
          } else {
            requestAnimationFrame(look);
          }
        }, function () { requestAnimationFrame(look); });
      }
      look();
    });
  });
})();
