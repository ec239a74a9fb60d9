// The menu: the current page is marked (the link whose path is the page's, or its longest prefix).
(function () {
  var links = document.querySelectorAll("header nav a[href]");
  var path = location.pathname, best = null;
  for (var i = 0; i < links.length; i++) {
    var href = links[i].getAttribute("href");
    var match = href === "/" ? path === "/" : (path === href || path.indexOf(href + "/") === 0);
    if (match && (!best || href.length > best.getAttribute("href").length)) best = links[i];
  }
  if (best) best.setAttribute("aria-current", "page");
})();

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

// The gate poster's print button (no inline script: the pages' CSP allows none).
(function () {
  var button = document.getElementById("print");
  if (button) button.addEventListener("click", function () { window.print(); });
})();

// The person's own page reports the phone's position every 5 minutes while it is open.
(function () {
  var el = document.getElementById("position");
  if (!el || !navigator.geolocation) return;
  var url = el.getAttribute("data-url");
  function report() {
    navigator.geolocation.getCurrentPosition(function (p) {
      fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ latitude: p.coords.latitude, longitude: p.coords.longitude, accuracy: p.coords.accuracy })
      }).then(function (r) { el.setAttribute("data-last", r.ok ? "sent" : "refused " + r.status); });
    }, function () {}, { enableHighAccuracy: true, maximumAge: 60000, timeout: 30000 });
  }
  report();
  setInterval(report, 5 * 60 * 1000);
})();

// The declaration form: sent by the page; when the box cannot be reached (a phone at home while the
// box's link is down), it is kept on the phone and sent again every 15 s and when the phone is back
// online. The box's answer (thanks, or the form with its problems) replaces the page.
(function () {
  var form = document.querySelector("form[data-retry]");
  if (!form || !window.fetch || !window.localStorage || !window.URLSearchParams) return;
  var key = "outpost-pending " + form.getAttribute("action");
  var status = document.getElementById("retry-status");
  function send(body) {
    return fetch(form.getAttribute("action"), {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
      credentials: "same-origin"
    }).then(function (r) {
      return r.text().then(function (html) {
        localStorage.removeItem(key);
        document.open(); document.write(html); document.close();
      });
    });
  }
  function retry() {
    var body = localStorage.getItem(key);
    if (body) send(body).catch(function () { if (status) status.hidden = false; });
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = new URLSearchParams(new FormData(form)).toString();
    send(body).catch(function () {
      localStorage.setItem(key, body);
      if (status) status.hidden = false;
    });
  });
  retry();
  setInterval(retry, 15000);
  window.addEventListener("online", retry);
})();

// Staff setting a home geofence while standing at the home: fill in this phone's position.
(function () {
  var button = document.getElementById("use-my-position");
  if (!button || !navigator.geolocation) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.geolocation.getCurrentPosition(function (p) {
      var form = button.form;
      form.elements.latitude.value = p.coords.latitude.toFixed(6);
      form.elements.longitude.value = p.coords.longitude.toFixed(6);
    });
  });
})();

// The spot-check page: the phone's position fills the form, and the photo is shrunk (800 px, JPEG)
// before it is sent, so it travels quickly over the site's Wi-Fi and fits the box's limit.
(function () {
  var form = document.getElementById("spot-form");
  if (!form) return;
  var status = document.getElementById("spot-position");
  if (navigator.geolocation) {
    navigator.geolocation.getCurrentPosition(function (p) {
      form.elements.latitude.value = p.coords.latitude;
      form.elements.longitude.value = p.coords.longitude;
      form.elements.accuracy.value = p.coords.accuracy;
      status.textContent = "✓ " + p.coords.latitude.toFixed(5) + ", " + p.coords.longitude.toFixed(5) + " (±" + Math.round(p.coords.accuracy) + " m)";
    }, function () { status.textContent = "⚠"; }, { enableHighAccuracy: true, timeout: 30000 });
  }
  form.addEventListener("submit", function (e) {
    var file = document.getElementById("spot-photo").files[0];
    if (!file || !window.createImageBitmap || !window.fetch) return;
    e.preventDefault();
    createImageBitmap(file).then(function (img) {
      var scale = Math.min(1, 800 / Math.max(img.width, img.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(img.width * scale);
      canvas.height = Math.round(img.height * scale);
      canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (blob) {
        var data = new FormData(form);
        data.set("photo", blob, "photo.jpg");
        fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
          .then(function (r) { return r.text(); })
          .then(function (html) { document.open(); document.write(html); document.close(); });
      }, "image/jpeg", 0.85);
    }, function () { form.submit(); });
  });
})();
