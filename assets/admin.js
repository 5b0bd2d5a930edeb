/* Marquee admin: live import progress. The dashboard works without this file. */
(function () {
  "use strict";

  var box = document.getElementById("imports");
  if (!box || !window.fetch) return;
  var form = document.getElementById("start-import-form");
  var button = document.getElementById("start-import");
  var wasActive = false;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }

  function counts(c) {
    return "Movies " + c.movies.created + " new, " + c.movies.updated + " updated, " + c.movies.unchanged + " unchanged · " +
      "theaters " + c.theaters.created + " new, " + c.theaters.updated + " updated, " + c.theaters.unchanged + " unchanged · " +
      "shows " + c.shows.created + " new, " + c.shows.updated + " updated, " + c.shows.unchanged + " unchanged, " +
      c.shows_removed + " removed, " + c.shows_withdrawn + " withdrawn";
  }

  function triple(c) { return c.created + "/" + c.updated + "/" + c.unchanged; }

  function renderJob(job) {
    var target = document.getElementById("current-job");
    if (!target) return;
    while (target.firstChild) target.removeChild(target.firstChild);
    if (!job) { target.appendChild(el("p", "hint", "No import has run since this node started.")); return; }
    var head = el("p", "admin-job-head");
    head.appendChild(el("strong", null, "Import #" + job.id));
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("span", "badge badge-" + job.state, job.state));
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("span", null, job.phase_label));
    target.appendChild(head);
    var bar = el("progress");
    bar.id = "import-progress";
    bar.max = 100;
    bar.value = job.percent;
    bar.textContent = job.percent + "%";
    target.appendChild(bar);
    target.appendChild(el("p", "hint", job.theaters_done + " of " + (job.theaters_total == null ? "?" : job.theaters_total) + " theaters"));
    if (job.counts) target.appendChild(el("p", "hint", counts(job.counts)));
    if (job.error) {
      var err = el("div", "notice notice-error", job.error);
      err.setAttribute("role", "alert");
      target.appendChild(err);
    }
  }

  function renderHistory(jobs) {
    var body = document.getElementById("history-rows");
    if (!body) return;
    while (body.firstChild) body.removeChild(body.firstChild);
    jobs.forEach(function (j) {
      var tr = el("tr");
      var badge = el("span", "badge badge-" + j.state, j.state);
      var stateCell = el("td");
      stateCell.appendChild(badge);
      var c = j.counts;
      [el("td", null, j.id), stateCell, el("td", null, j.trigger), el("td", null, j.queued_label),
        el("td", "num", j.theaters_done + "/" + (j.theaters_total == null ? "?" : j.theaters_total)),
        el("td", null, c ? triple(c.movies) : ""), el("td", null, c ? triple(c.theaters) : ""),
        el("td", null, c ? triple(c.shows) : ""), el("td", null, c ? c.shows_removed + "/" + c.shows_withdrawn : ""),
        el("td", "num", j.requests), el("td", "num", j.duration_label), el("td", "admin-error", j.error || "")
      ].forEach(function (td) { tr.appendChild(td); });
      body.appendChild(tr);
    });
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (r) {
      if (r.status === 401 || r.status === 403) { window.location.reload(); throw new Error("logged out"); }
      return r.json();
    });
  }

  function poll() {
    getJson(box.getAttribute("data-current-url")).then(function (data) {
      var job = data.job;
      renderJob(job);
      var active = !!(job && job.active);
      if (button) button.disabled = active;
      if (wasActive && !active) {
        getJson(box.getAttribute("data-history-url")).then(function (h) { renderHistory(h.jobs); });
      }
      wasActive = active;
      setTimeout(poll, active ? 1000 : 5000);
    }).catch(function () { setTimeout(poll, 5000); });
  }

  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (button) button.disabled = true;
      var token = form.querySelector("input[name=csrf_token]").value;
      fetch(box.getAttribute("data-start-url"), {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": token, "Accept": "application/json" }
      }).then(function (r) { return r.json(); }).then(function (data) {
        if (data.job) { renderJob(data.job); wasActive = true; }
        else if (data.error) {
          var target = document.getElementById("current-job");
          var err = el("div", "notice notice-error", data.error);
          err.setAttribute("role", "alert");
          target.insertBefore(err, target.firstChild);
        }
        getJson(box.getAttribute("data-history-url")).then(function (h) { renderHistory(h.jobs); });
      }).catch(function () { form.submit(); });
    });
  }

  var initial = document.querySelector("#current-job .badge");
  wasActive = !!(initial && (initial.textContent === "running" || initial.textContent === "queued"));
  setTimeout(poll, wasActive ? 1000 : 5000);
})();
