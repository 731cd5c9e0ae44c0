// medsbench leaderboard: sortable tables and the predictions browser.
// Every string from runs or submissions is put into the page with textContent, never innerHTML.
(function () {
  "use strict";

  function sortKey(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (!numeric) return raw.toLowerCase();
    var v = parseFloat(raw);
    return isNaN(v) ? null : v;
  }

  function makeSortable(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      th.tabIndex = 0;
      var go = function () {
        var numeric = th.getAttribute("data-type") === "num";
        var current = th.getAttribute("aria-sort");
        // Scores sort best-first on the first click; names A-Z.
        var dir = current ? (current === "descending" ? "ascending" : "descending") : (numeric ? "descending" : "ascending");
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var sign = dir === "ascending" ? 1 : -1;
        rows.sort(function (a, b) {
          var x = sortKey(a.cells[col], numeric), y = sortKey(b.cells[col], numeric);
          if (x === null || x === "") return (y === null || y === "") ? 0 : 1;  // blanks always last
          if (y === null || y === "") return -1;
          return x < y ? -sign : x > y ? sign : 0;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      };
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function predictionsBrowser() {
    var holder = document.getElementById("predictions-data");
    if (!holder) return;
    // Fields: task_id, item id, input, output, reference, official verdict, strict verdict (1/0/null), error.
    var items = JSON.parse(holder.textContent);
    var list = document.getElementById("pred-list");
    var more = document.getElementById("pred-more");
    var fTask = document.getElementById("f-task"), fVerdict = document.getElementById("f-verdict");
    var fSearch = document.getElementById("f-search"), fCount = document.getElementById("f-count");
    var PAGE = 50, shown = 0, matches = [];

    function word(v) { return v === 1 ? "correct" : v === 0 ? "incorrect" : "no verdict"; }

    function card(it) {
      var art = el("article", it[5] === 1 ? "v1" : it[5] === 0 ? "v0" : "vna");
      var head = it[0] + " \u00b7 item " + it[1] + " \u00b7 official: " + word(it[5]);
      if (it[5] !== null || it[6] !== null) head += " \u00b7 strict: " + word(it[6]);
      art.appendChild(el("header", null, head));
      art.appendChild(el("h4", null, "Input"));
      art.appendChild(el("pre", null, it[2]));
      var grid = el("div", "grid"), a = el("div"), b = el("div");
      a.appendChild(el("h4", null, "Model output"));
      a.appendChild(el("pre", "output", it[3] === "" ? "(empty)" : it[3]));
      b.appendChild(el("h4", null, "Reference"));
      b.appendChild(el("pre", "reference", it[4]));
      grid.appendChild(a); grid.appendChild(b); art.appendChild(grid);
      if (it[7]) art.appendChild(el("p", "err", "error: " + it[7]));
      return art;
    }

    function renderMore() {
      var end = Math.min(shown + PAGE, matches.length);
      for (var i = shown; i < end; i++) list.appendChild(card(matches[i]));
      shown = end;
      more.hidden = shown >= matches.length;
      fCount.textContent = "showing " + shown + " of " + matches.length + " matching items (" + items.length + " in total)";
    }

    function apply() {
      var task = fTask.value, verdict = fVerdict.value, q = fSearch.value.trim().toLowerCase();
      matches = items.filter(function (it) {
        if (task && it[0] !== task) return false;
        if (verdict === "na" && (it[5] !== null || it[6] !== null)) return false;
        if (verdict && verdict !== "na") {  // "r1": official correct, "s0": strict incorrect, ...
          var v = verdict.charAt(0) === "r" ? it[5] : it[6];
          if (v !== parseInt(verdict.charAt(1), 10)) return false;
        }
        if (q && (it[2] + "\u0000" + it[3] + "\u0000" + it[4]).toLowerCase().indexOf(q) < 0) return false;
        return true;
      });
      while (list.firstChild) list.removeChild(list.firstChild);
      shown = 0;
      renderMore();
    }

    fTask.addEventListener("change", apply);
    fVerdict.addEventListener("change", apply);
    fSearch.addEventListener("input", apply);
    more.addEventListener("click", renderMore);
    apply();
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
    predictionsBrowser();
  });
})();
