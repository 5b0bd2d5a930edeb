/* Marquee check-in: scans go to the JSON API without leaving the page, and the camera is
   offered where the browser can read QR codes (BarcodeDetector). The page works without
   this file: the form posts and the answer comes back as a page. */
(function () {
  "use strict";

  var form = document.getElementById("checkin-form");
  var field = document.getElementById("ticket");
  var result = document.getElementById("checkin-result");
  if (!form || !field || !result || !window.fetch) return;
  var csrf = form.querySelector("input[name=csrf_token]").value;
  var busy = false;
  // Ready for the scanner at once (autofocus alone does not always take).
  field.focus();

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }

  function show(answer) {
    while (result.firstChild) result.removeChild(result.firstChild);
    var kind = answer.result || "refused";
    result.className = "checkin-result checkin-" + kind;
    result.setAttribute("data-result", kind);
    var verdict = kind === "admitted" ? "✓ Admit" : kind === "already_admitted" ? "✕ Already in" : "✕ Refused";
    result.appendChild(el("p", "checkin-verdict", verdict));
    result.appendChild(el("p", "checkin-message", answer.message || answer.error || "refused"));
    if (answer.seats && answer.seats.length) {
      result.appendChild(el("p", "checkin-seats", "Seats " + answer.seats.join(", ") + (answer.name ? " · " + answer.name : "")));
    }
    if (answer.show) {
      var s = answer.show;
      result.appendChild(el("p", "checkin-show", s.movie_title + " · " + s.theater_name + " · " + s.date + " " + s.time));
    }
  }

  function submit(ticket) {
    if (busy || !ticket) return;
    busy = true;
    fetch("/admin/api/checkin", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ ticket: ticket })
    })
      .then(function (res) {
        return res.json().catch(function () { return { error: "the server answered " + res.status }; });
      })
      .then(show, function () { show({ error: "no answer from the server; scan again" }); })
      .then(function () {
        busy = false;
        field.value = "";
        field.focus();
      });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    submit(field.value.trim());
  });

  // The camera, where the browser reads QR codes itself.
  var camera = document.getElementById("checkin-camera");
  var video = document.getElementById("checkin-video");
  if (!camera || !video || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  camera.hidden = false;
  camera.addEventListener("click", function () {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream;
      video.hidden = false;
      video.play();
      var last = "";
      (function look() {
        detector.detect(video).then(function (codes) {
          var seen = codes.length ? codes[0].rawValue : "";
          if (seen && seen !== last) {
            last = seen;
            submit(seen);
          }
          window.setTimeout(look, 300);
        }, function () { window.setTimeout(look, 1000); });
      })();
    }, function () { show({ error: "the camera is not available; use the scanner or type the ticket" }); });
  });
})();
