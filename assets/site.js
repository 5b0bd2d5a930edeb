/* Marquee — progressive enhancement. Every page works without this file. */
(function () {
  "use strict";

  var M = window.Marquee = window.Marquee || {};

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  /* ---------- Posters: placeholder with the title initial when the image fails ---------- */
  function posterFallback(img) {
    if (!img || img.getAttribute("data-poster-failed") === "1") return;
    img.setAttribute("data-poster-failed", "1");
    img.hidden = true;
    img.style.display = "none";
    var box = document.createElement("span");
    box.className = "poster-placeholder";
    box.setAttribute("aria-hidden", "true");
    box.textContent = img.getAttribute("data-poster-initial") || "?";
    if (img.parentNode) img.parentNode.insertBefore(box, img.nextSibling);
  }
  M.posterFallback = posterFallback;

  // Errors that happen after this script runs (capture: error events don't bubble).
  document.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t.tagName === "IMG" && t.hasAttribute("data-poster-initial")) posterFallback(t);
  }, true);

  function sweepPosters() {
    $all("img[data-poster-initial]").forEach(function (img) {
      // Already failed before we were loaded.
      if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) posterFallback(img);
      if (!img.getAttribute("src")) posterFallback(img);
    });
  }

  /* ---------- Small helpers ---------- */
  function parseCents(price) {
    if (price == null) return 0;
    var s = String(price).replace(/[^0-9.,-]/g, "").replace(/,/g, "");
    var n = parseFloat(s);
    return isNaN(n) ? 0 : Math.round(n * 100);
  }
  function currencyPrefix(price) {
    var m = String(price || "").match(/^[^0-9.,-]*/);
    return (m && m[0]) || "$";
  }
  function formatMoney(cents, prefix) {
    var neg = cents < 0; cents = Math.abs(cents);
    var whole = Math.floor(cents / 100), frac = cents % 100;
    var w = String(whole).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (neg ? "-" : "") + (prefix || "$") + w + "." + (frac < 10 ? "0" : "") + frac;
  }
  M.formatMoney = formatMoney;

  /* ---------- Seat map ---------- */
  function seatmap() { return document.getElementById("seatmap"); }
  function maxSeats() {
    var sm = seatmap();
    var n = sm ? parseInt(sm.getAttribute("data-max-seats"), 10) : NaN;
    return isNaN(n) || n <= 0 ? 10 : n;
  }
  function bookable() {
    var sm = seatmap();
    return !!sm && sm.getAttribute("data-bookable") !== "false";
  }
  function seatInput(label) {
    var sm = seatmap();
    if (!sm || label == null) return null;
    var inputs = sm.querySelectorAll("input[data-seat]");
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].getAttribute("data-seat") === String(label)) return inputs[i];
    }
    return null;
  }
  function selectedInputs() {
    var sm = seatmap();
    return sm ? $all("input[data-seat]:checked", sm) : [];
  }
  M.selectedSeats = function () { return selectedInputs().map(function (i) { return i.getAttribute("data-seat"); }); };

  var msgTimer = null;
  function showMessage(text) {
    var el = document.getElementById("seat-message");
    if (!el) return;
    el.textContent = "";
    // Re-set after a tick so screen readers announce repeated messages.
    setTimeout(function () { el.textContent = text || ""; }, 30);
    if (msgTimer) clearTimeout(msgTimer);
    if (text) msgTimer = setTimeout(function () { el.textContent = ""; }, 8000);
  }
  M.showMessage = showMessage;

  function updateSummary() {
    var el = document.getElementById("seat-summary");
    if (!el) return;
    var sel = selectedInputs();
    var max = maxSeats();
    if (sel.length === 0) {
      el.textContent = "Pick up to " + max + " seats, then hold them.";
      return;
    }
    var cents = 0, prefix = null;
    sel.forEach(function (i) {
      var p = i.getAttribute("data-price");
      cents += parseCents(p);
      if (!prefix) prefix = currencyPrefix(p);
    });
    el.textContent = sel.length + (sel.length === 1 ? " seat" : " seats") + " selected · " +
      formatMoney(cents, prefix) + " (" + sel.map(function (i) { return i.getAttribute("data-seat"); }).join(", ") + ")";
  }
  M.updateSummary = updateSummary;

  /* The same words as the server's label (templates/show.html), the seat's kind included. */
  var KIND_WORDS = {
    wheelchair: "wheelchair space, ",
    companion: "companion seat beside a wheelchair space, "
  };

  function seatAriaLabel(input, state) {
    return "Row " + (input.getAttribute("data-row") || "") +
      " seat " + (input.getAttribute("data-number") || input.getAttribute("data-seat") || "") +
      ", " + (Object.prototype.hasOwnProperty.call(KIND_WORDS, input.getAttribute("data-kind"))
        ? KIND_WORDS[input.getAttribute("data-kind")] : "") +
      (input.getAttribute("data-category-name") || "") +
      ", " + (input.getAttribute("data-price") || "") +
      ", " + state;
  }

  /* Set a seat's state ("free" | "held" | "booked"). Returns true if the seat exists. */
  M.markSeat = function (label, state) {
    var input = seatInput(label);
    if (!input) return false;
    state = (state === "held" || state === "booked") ? state : "free";
    var box = input.closest ? input.closest(".seat") : input.parentNode;
    var was = box ? box.getAttribute("data-state") : null;
    if (box) {
      box.setAttribute("data-state", state);
      var t = box.getAttribute("title");
      if (t) box.setAttribute("title", t.replace(/[^·]*$/, " " + state));
    }
    input.setAttribute("aria-label", seatAriaLabel(input, state));
    if (state === "free") {
      input.disabled = !bookable();
    } else {
      if (input.checked) {
        input.checked = false;
        showMessage("Seat " + label + " was just taken by someone else, so it is no longer selected.");
        if (box && box.classList) {
          box.classList.remove("just-taken");
          void box.offsetWidth;
          box.classList.add("just-taken");
        }
      }
      input.disabled = true;
    }
    if (was !== state) updateSummary();
    return true;
  };

  M.seatState = function (label) {
    var input = seatInput(label);
    var box = input && (input.closest ? input.closest(".seat") : input.parentNode);
    return box ? box.getAttribute("data-state") : null;
  };
  M.getVersion = function () {
    var sm = seatmap();
    var v = sm ? parseInt(sm.getAttribute("data-version"), 10) : NaN;
    return isNaN(v) ? 0 : v;
  };
  M.setVersion = function (v) {
    var sm = seatmap();
    if (sm && v != null) sm.setAttribute("data-version", String(v));
  };

  function initSeatmap() {
    var sm = seatmap();
    if (!sm) return;
    sm.addEventListener("change", function (e) {
      var t = e.target;
      if (!t || !t.hasAttribute || !t.hasAttribute("data-seat")) return;
      if (t.checked && selectedInputs().length > maxSeats()) {
        t.checked = false;
        showMessage("You can select up to " + maxSeats() + " seats per booking.");
      } else if (t.checked) {
        showMessage("");
      }
      updateSummary();
    });
    // On a narrow screen, start with the middle of a wide auditorium in view.
    var scroller = sm.querySelector(".seatmap-scroll");
    if (scroller && scroller.scrollWidth > scroller.clientWidth + 8) {
      scroller.scrollLeft = Math.round((scroller.scrollWidth - scroller.clientWidth) / 2);
    }
    var form = document.getElementById("seat-form");
    if (form) {
      form.addEventListener("submit", function (e) {
        if (selectedInputs().length === 0) {
          e.preventDefault();
          e.stopImmediatePropagation();
          showMessage("Select at least one seat first.");
          var first = sm.querySelector("input[data-seat]:not(:disabled)");
          if (first) first.focus();
        }
      });
    }
    updateSummary();
  }

  /* ---------- Hold countdown ---------- */
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function initCountdown() {
    var box = document.getElementById("hold-countdown");
    if (!box) return;
    var ms = parseInt(box.getAttribute("data-ms-left"), 10);
    var secs = parseInt(box.getAttribute("data-seconds-left"), 10);
    var deadline;
    // Prefer the server's time left (immune to a wrong client clock); fall back to expires_at.
    // The server frees the seats a moment after the deadline, so count down a little past it.
    if (!isNaN(ms)) {
      deadline = Date.now() + ms + 300;
    } else if (!isNaN(secs)) {
      deadline = Date.now() + secs * 1000;
    } else {
      var t = Date.parse(box.getAttribute("data-expires-at") || "");
      if (isNaN(t)) return;
      deadline = t;
    }
    var timeEl = $(".countdown-time", box);
    var live = document.getElementById("countdown-live");
    var warned = false, timer = null;

    function expire() {
      if (timer) clearInterval(timer);
      box.classList.remove("is-urgent");
      box.classList.add("countdown-expired");
      var url = box.getAttribute("data-show-url") || "/";
      var p = document.createElement("p");
      p.className = "countdown-text";
      var strong = document.createElement("strong");
      strong.textContent = "Your hold has expired.";
      p.appendChild(strong);
      p.appendChild(document.createTextNode(" The seats were released and are free again. "));
      var a = document.createElement("a");
      a.href = url;
      a.textContent = "Choose seats again";
      p.appendChild(a);
      var old = $(".countdown-text", box);
      if (old) box.replaceChild(p, old); else box.insertBefore(p, box.firstChild);
      if (live) live.textContent = "Your hold has expired. The seats are free again.";
      var btn = document.getElementById("confirm-btn");
      if (btn) { btn.disabled = true; btn.textContent = "Hold expired"; }
      if (document.title.indexOf("Hold expired") !== 0) document.title = "Hold expired · " + document.title;
    }

    function tick() {
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      if (left <= 0) { expire(); return; }
      if (timeEl) timeEl.textContent = Math.floor(left / 60) + ":" + pad(left % 60);
      if (left <= 60) {
        box.classList.add("is-urgent");
        if (!warned && live) { warned = true; live.textContent = "Less than one minute left to confirm your booking."; }
      }
    }
    if (box.classList.contains("countdown-expired")) { expire(); return; }
    tick();
    timer = setInterval(tick, 250);
    M.holdDeadline = function () { return deadline; };
  }

  /* ---------- Forms: confirm prompts and no double submit ---------- */
  function initForms() {
    $all("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        var msg = f.getAttribute("data-confirm");
        if (msg && !window.confirm(msg)) { e.preventDefault(); e.stopImmediatePropagation(); }
      });
    });
    $all("form[data-once]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (e.defaultPrevented) return;
        if (f.getAttribute("data-submitting") === "1") { e.preventDefault(); return; }
        f.setAttribute("data-submitting", "1");
        $all("button[type=submit], button:not([type])", f).forEach(function (b) { b.setAttribute("aria-disabled", "true"); b.classList.add("is-busy"); });
      });
    });
    // Coming back via the back button: let forms be used again.
    window.addEventListener("pageshow", function (e) {
      if (!e.persisted) return;
      $all("form[data-once]").forEach(function (f) {
        f.removeAttribute("data-submitting");
        $all(".is-busy", f).forEach(function (b) { b.removeAttribute("aria-disabled"); b.classList.remove("is-busy"); });
      });
      updateSummary();
    });
  }

  function init() {
    try { sweepPosters(); } catch (e) { /* ignore */ }
    try { initSeatmap(); } catch (e) { if (window.console) console.error(e); }
    try { initCountdown(); } catch (e) { if (window.console) console.error(e); }
    try { initForms(); } catch (e) { if (window.console) console.error(e); }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
