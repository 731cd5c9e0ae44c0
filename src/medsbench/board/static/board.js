// medsbench leaderboard: sortable tables, the overview's controls and the item browser.
// Every string from runs or submissions is put into the page with textContent, never innerHTML.
(function () {
  "use strict";

  // ---------------------------------------------------------------- sortable tables

  function sortKey(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (!numeric) return raw.toLowerCase();
    var v = parseFloat(raw);
    return isNaN(v) ? null : v;
  }

  function sortBy(table, heads, th, col, dir) {
    var numeric = th.getAttribute("data-type") === "num";
    var tiered = table.hasAttribute("data-tiered");  // complete runs always above samples and partial runs
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = dir === "ascending" ? 1 : -1;
    rows.sort(function (a, b) {
      if (tiered) {
        var ta = +a.getAttribute("data-tier"), tb = +b.getAttribute("data-tier");
        if (ta !== tb) return ta - tb;
      }
      var x = sortKey(a.cells[col], numeric), y = sortKey(b.cells[col], numeric);
      if (x === null || x === "") return (y === null || y === "") ? 0 : 1;  // blanks always last
      if (y === null || y === "") return -1;
      return x < y ? -sign : x > y ? sign : 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function makeSortable(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () {
        var numeric = th.getAttribute("data-type") === "num";
        var current = th.getAttribute("aria-sort");
        // Scores sort best-first on the first click; names A-Z.
        var dir = current ? (current === "descending" ? "ascending" : "descending") : (numeric ? "descending" : "ascending");
        sortBy(table, heads, th, col, dir);
      });
    });
  }

  // ---------------------------------------------------------------- overview controls

  function overviewControls() {
    var hide = document.getElementById("hide-incomplete");
    if (hide) {
      hide.addEventListener("change", function () {
        document.body.classList.toggle("hide-incomplete", hide.checked);
      });
    }
    var pick = document.getElementById("phone-cat");
    if (!pick) return;
    function show() {
      Array.prototype.forEach.call(document.querySelectorAll("table.overview .cat"), function (cell) {
        cell.classList.toggle("off", !cell.classList.contains("cat-" + pick.value));
      });
    }
    pick.addEventListener("change", show);
    show();
  }

  // ---------------------------------------------------------------- item browser

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // Shards are scripts calling medsbenchData(name, data): they load from file:// as well as over HTTP.
  var loaded = {}, waiting = {};
  window.medsbenchData = function (name, data) {
    loaded[name] = data;
    (waiting[name] || []).forEach(function (fn) { fn(data); });
    delete waiting[name];
  };

  function load(base, name) {
    return new Promise(function (resolve, reject) {
      if (loaded[name] !== undefined) { resolve(loaded[name]); return; }
      var first = !waiting[name];
      (waiting[name] = waiting[name] || []).push(resolve);
      if (!first) return;
      var s = document.createElement("script");
      s.src = base + name + ".js";
      s.onerror = function () { reject(new Error("could not load " + s.src)); };
      document.head.appendChild(s);
    });
  }

  var VERDICT = {1: "correct", 0: "wrong"};

  function pre(cls, text, label) {
    var p = el("pre", cls, text);
    p.tabIndex = 0;  // a scrollable box must be reachable from the keyboard
    if (label) {  // named on focus; a <pre> has no role of its own, and ARIA forbids naming an element without one
      p.setAttribute("role", "group");
      p.setAttribute("aria-label", label);
    }
    return p;
  }

  // What the output box shows: the output, or a note where it is empty or only white space (the scorer's
  // "empty": is_empty in medsbench.metrics.strict), which would otherwise be a blank box.
  function outputText(out) {
    if (out === "") return "(empty output)";
    return out.trim() === "" ? "(empty output: white space only)" : out;
  }

  // Item fields: task, id, input, output (null if failed), gold, official verdict, strict verdict, error,
  // parsed (1/0/null), parse note, prompt (or null), judgements [[judge, score, status, reply, unusable]].
  function card(it) {
    var art = el("article", it[5] === 1 ? "v1" : it[5] === 0 ? "v0" : "vna");
    var head = it[0] + " \u00b7 item " + it[1];
    art.appendChild(el("h3", null, head));
    var facts = [];
    if (it[7] !== null) facts.push("failed");
    else {
      facts.push("official: " + (VERDICT[it[5]] || "no verdict"));
      if (it[5] !== null || it[6] !== null) facts.push("strict: " + (VERDICT[it[6]] || "no verdict"));
    }
    art.appendChild(el("p", "facts", facts.join(" \u00b7 ")));
    if (it[10] !== null) {
      var d = el("details", "prompt");
      d.appendChild(el("summary", null, "Full prompt sent to the model"));
      d.appendChild(pre(null, it[10], "Prompt"));
      art.appendChild(d);
    }
    art.appendChild(el("h4", null, "Input"));
    art.appendChild(pre(null, it[2], "Input"));
    var grid = el("div", "grid"), a = el("div"), b = el("div");
    a.appendChild(el("h4", null, "Model output"));
    if (it[7] !== null) a.appendChild(pre("output failed", "failed: " + it[7], "Model output"));
    else a.appendChild(pre("output", outputText(it[3]), "Model output"));
    b.appendChild(el("h4", null, "Gold answer"));
    b.appendChild(pre("reference", it[4], "Gold answer"));
    grid.appendChild(a); grid.appendChild(b); art.appendChild(grid);
    if (it[8] === 1) art.appendChild(el("p", "parse", "strict parse: an answer was found"));
    else if (it[8] === 0) art.appendChild(el("p", "parse bad", "strict parse failed: " + it[9]));
    it[11].forEach(function (j) {
      var box = el("div", "judgement" + (j[4] ? " unusable" : ""));
      var what = j[2] === "ok" ? "score " + j[1] : j[2].replace("_", " ");
      box.appendChild(el("h4", null, "Judge " + j[0] + ": " + what + (j[4] ? " (unusable judge: not a score)" : "")));
      if (j[3]) box.appendChild(pre("reply", j[3], "Judge rationale"));
      art.appendChild(box);
    });
    return art;
  }

  function itemBrowser() {
    var form = document.getElementById("item-filters");
    if (!form) return;
    var base = form.getAttribute("data-base");
    var list = document.getElementById("item-list"), more = document.getElementById("item-more");
    var fTask = document.getElementById("f-task"), fShow = document.getElementById("f-show");
    var fSearch = document.getElementById("f-search"), fCount = document.getElementById("f-count");
    var PAGE = parseInt(form.getAttribute("data-page") || "50", 10), index = null, cands = [], pos = 0, shown = 0, generation = 0, timer = null;

    function item(i) {
      var name = "items-" + ("000" + Math.floor(i / index.shard_size)).slice(-4);
      return load(base, name).then(function (shard) { return shard[i % index.shard_size]; });
    }

    function matches(it, q) {
      if (!q) return true;
      var text = [it[1], it[2], it[3] || "", it[4], it[7] || "", it[10] || ""].join("\u0000").toLowerCase();
      return text.indexOf(q) >= 0;
    }

    function status(q) {
      var head = q ? "showing " + shown + " matching items (searched " + pos + " of " + cands.length + ")"
                   : "showing " + shown + " of " + cands.length + " matching items";
      fCount.textContent = head + " \u00b7 " + index.items.length + " in total";
    }

    async function renderMore(gen) {
      var q = fSearch.value.trim().toLowerCase(), target = shown + PAGE;
      more.hidden = true;
      while (shown < target && pos < cands.length) {
        var it = await item(cands[pos]);
        if (gen !== generation) return;
        pos++;
        if (matches(it, q)) { list.appendChild(card(it)); shown++; }
        if (pos % 200 === 0) status(q);
      }
      more.hidden = pos >= cands.length;
      status(q);
    }

    function apply() {
      var task = fTask.value, show = parseInt(fShow.value || "0", 10);
      var t = task ? index.tasks.indexOf(task) : -1;
      cands = [];
      index.items.forEach(function (x, i) {
        if (task && x[0] !== t) return;
        if (show && !(x[1] & show)) return;
        cands.push(i);
      });
      while (list.firstChild) list.removeChild(list.firstChild);
      pos = 0; shown = 0; generation++;
      renderMore(generation).catch(function (e) { fCount.textContent = String(e); });
    }

    load(base, "index").then(function (data) {
      index = data;
      fTask.addEventListener("change", apply);
      fShow.addEventListener("change", apply);
      fSearch.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 200); });
      more.addEventListener("click", function () { renderMore(generation); });
      apply();
    }).catch(function (e) { fCount.textContent = String(e); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
    overviewControls();
    itemBrowser();
  });
})();
