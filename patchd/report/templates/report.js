// patchd HTML report: sort by clicking a column header, filter with the controls.
// The state lives in the URL hash (#sort=KEY&dir=asc|desc&outcome=..&reason=..&host=..&q=..),
// so a filtered view can be bookmarked or sent to a colleague. No network access.
(function () {
  "use strict";
  var table = document.getElementById("results");
  var tbody = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var keys = heads.map(function (th) { return th.getAttribute("data-key"); });
  var controls = {
    outcome: document.getElementById("f-outcome"),
    reason: document.getElementById("f-reason"),
    host: document.getElementById("f-host"),
    q: document.getElementById("f-q")
  };
  var rows = Array.prototype.slice.call(tbody.rows);
  rows.forEach(function (tr, i) { tr.setAttribute("data-index", String(i)); });
  var state = { sort: "", dir: "asc", outcome: "", reason: "", host: "", q: "" };
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    state.sort = keys.indexOf(params.get("sort")) >= 0 ? params.get("sort") : "";
    state.dir = params.get("dir") === "desc" ? "desc" : "asc";
    ["outcome", "reason", "host", "q"].forEach(function (k) { state[k] = params.get(k) || ""; });
  }

  function writeHash() {
    var params = new URLSearchParams();
    if (state.sort) { params.set("sort", state.sort); params.set("dir", state.dir); }
    ["outcome", "reason", "host", "q"].forEach(function (k) { if (state[k]) { params.set(k, state[k]); } });
    history.replaceState(null, "", "#" + params.toString());
  }

  function cellText(tr, key) {
    return tr.cells[keys.indexOf(key)].textContent;
  }

  function matches(tr) {
    var o = state.outcome;
    if (o === "@success" || o === "@failure") {
      if (tr.getAttribute("data-group") !== o.slice(1)) { return false; }
    } else if (o && tr.getAttribute("data-outcome") !== o) {
      return false;
    }
    if (state.reason && tr.getAttribute("data-reason") !== state.reason) { return false; }
    if (state.host && tr.getAttribute("data-host") !== state.host) { return false; }
    if (state.q) {
      var needle = state.q.toLowerCase();
      if (tr.textContent.toLowerCase().indexOf(needle) < 0) { return false; }
    }
    return true;
  }

  function apply() {
    controls.outcome.value = state.outcome;
    controls.reason.value = state.reason;
    controls.host.value = state.host;
    if (controls.q.value !== state.q) { controls.q.value = state.q; }
    var ordered = rows.slice();
    if (state.sort) {
      var sign = state.dir === "desc" ? -1 : 1;
      ordered.sort(function (a, b) {
        var c = collator.compare(cellText(a, state.sort), cellText(b, state.sort));
        if (c === 0) { c = Number(a.getAttribute("data-index")) - Number(b.getAttribute("data-index")); return c; }
        return sign * c;
      });
    }
    var shown = 0;
    ordered.forEach(function (tr) {
      var ok = matches(tr);
      tr.hidden = !ok;
      if (ok) { shown += 1; }
      tbody.appendChild(tr);
    });
    heads.forEach(function (th) {
      var key = th.getAttribute("data-key");
      th.setAttribute("aria-sort", key === state.sort ? (state.dir === "desc" ? "descending" : "ascending") : "none");
    });
    document.getElementById("shown").textContent = String(shown);
    document.getElementById("empty").hidden = shown > 0;
  }

  function sortBy(key) {
    if (state.sort === key) { state.dir = state.dir === "asc" ? "desc" : "asc"; }
    else { state.sort = key; state.dir = "asc"; }
    writeHash();
    apply();
  }

  heads.forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th.getAttribute("data-key")); });
    th.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(th.getAttribute("data-key")); }
    });
  });
  ["outcome", "reason", "host"].forEach(function (k) {
    controls[k].addEventListener("change", function () { state[k] = controls[k].value; writeHash(); apply(); });
  });
  controls.q.addEventListener("input", function () { state.q = controls.q.value; writeHash(); apply(); });
  document.getElementById("f-reset").addEventListener("click", function () {
    state = { sort: "", dir: "asc", outcome: "", reason: "", host: "", q: "" };
    writeHash();
    apply();
  });
  window.addEventListener("hashchange", function () { readHash(); apply(); });
  readHash();
  apply();
  document.documentElement.setAttribute("data-ready", "1");
})();
