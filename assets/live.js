/* Marquee — the live seat map. The show page works without this file (plain form, a
   reload shows the latest seats); with it, every hold, booking, cancel and expiry shows
   up as it happens. The server sends a snapshot of the map on every (re)connect, then each
   change with a growing version number. */
(function () {
  "use strict";

  var M = window.Marquee;
  var map = document.getElementById("seatmap");
  if (!M || !M.markSeat || !map || !window.WebSocket || !window.JSON) return;
  var showId = map.getAttribute("data-show-id") || "";
  if (!/^[0-9]+$/.test(showId)) return;

  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/shows/" + showId + "/live";
  var status = document.getElementById("live-status");
  var freeCount = document.getElementById("free-count");
  var ws = null, retry = null, delay = 0, wanted = true;

  function setStatus(state, text) {
    map.setAttribute("data-live", state);
    if (status) {
      status.hidden = false;
      status.setAttribute("data-state", state);
      status.textContent = text;
    }
  }

  function updateFreeCount() {
    if (!freeCount) return;
    var n = map.querySelectorAll('.seat[data-state="free"]').length;
    freeCount.textContent = n + (n === 1 ? " seat free" : " seats free");
  }

  // A notice above the map with a link that reloads the page; shown once.
  function offerReload(id, text, linkText) {
    if (document.getElementById(id)) return;
    var note = document.createElement("div");
    note.id = id;
    note.className = "notice notice-info";
    note.setAttribute("role", "status");
    note.appendChild(document.createTextNode(text + " "));
    var a = document.createElement("a");
    a.href = location.pathname;
    a.textContent = linkText;
    note.appendChild(a);
    note.appendChild(document.createTextNode("."));
    var before = status || map;
    before.parentNode.insertBefore(note, before);
  }

  function apply(seats, whole) {
    var known = 0;
    for (var i = 0; i < seats.length; i++) {
      var s = seats[i];
      if (s && typeof s[0] === "string" && typeof s[1] === "string" && M.markSeat(s[0], s[1])) known++;
    }
    // The auditorium was given a new layout while the page was open: the seats drawn here
    // are not the show's any more.
    if (whole && (known !== seats.length || known !== map.querySelectorAll(".seat input[data-seat]").length)) {
      offerReload("layout-changed", "The seating of this show has changed.", "Reload the page to see the new seat map");
    }
    updateFreeCount();
    // A sold-out page has no form to hold seats with; when seats come free, offer a reload.
    if (map.getAttribute("data-sold-out") === "true" && map.querySelector('.seat[data-state="free"]')) {
      offerReload("seats-back", "Seats just became free.", "Reload the page to choose them");
    }
  }

  function onMessage(ev) {
    var m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    if (!m || typeof m.version !== "number" || !(m.seats instanceof Array)) return;
    if (m.type === "snapshot") {
      // The map as it is now: it replaces whatever we had (the server may have restarted,
      // so its version can be lower than ours).
      apply(m.seats, true);
      M.setVersion(m.version);
      delay = 0;
      setStatus("open", "Live: seats update as others book");
    } else if (m.type === "change") {
      if (m.version <= M.getVersion()) return;
      apply(m.seats, false);
      M.setVersion(m.version);
    }
  }

  function schedule() {
    if (retry || !wanted) return;
    // 0.5 s, 1 s, 2 s ... up to 15 s, with some jitter so a restarted node is not stampeded.
    delay = delay ? Math.min(delay * 2, 15000) : 500;
    setStatus("closed", "Reconnecting to live updates…");
    retry = setTimeout(function () { retry = null; connect(); }, delay * (0.75 + Math.random() / 2));
  }

  function connect() {
    if (ws || !wanted) return;
    var sock;
    try { sock = new WebSocket(url); } catch (e) { schedule(); return; }
    ws = sock;
    setStatus("connecting", "Connecting to live updates…");
    sock.onmessage = onMessage;
    sock.onclose = function () {
      if (ws === sock) ws = null;
      schedule();
    };
    sock.onerror = function () { try { sock.close(); } catch (e) { /* closing anyway */ } };
  }

  function reconnectNow() {
    if (!wanted || ws) return;
    if (retry) { clearTimeout(retry); retry = null; }
    delay = 0;
    connect();
  }

  // Leaving the page (or going into the back-forward cache) closes the socket; coming
  // back opens a new one, whose snapshot brings the map up to date.
  window.addEventListener("pagehide", function () {
    wanted = false;
    if (retry) { clearTimeout(retry); retry = null; }
    if (ws) { var s = ws; ws = null; s.onclose = null; try { s.close(); } catch (e) { /* gone */ } }
  });
  window.addEventListener("pageshow", function (e) { if (e.persisted) { wanted = true; reconnectNow(); } });
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) reconnectNow(); });

  M.live = {
    state: function () { return map.getAttribute("data-live") || "off"; },
    reconnect: function () { if (ws) ws.close(); else reconnectNow(); }
  };
  connect();
})();
