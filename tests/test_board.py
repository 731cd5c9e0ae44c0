"""Board store and static site: seeded rows, idempotent add, generated HTML structure, escaping,
byte-identical rebuilds, CLI."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_board_support import HOSTILE_INPUT_TAIL, HOSTILE_MODEL, HOSTILE_OUTPUT, board_ws, fresh_store, site_items  # noqa: F401

from medsbench.board.publish import add_run

from medsbench.board.site import build_site

from medsbench.board.store import Store
from medsbench.board.site import script_json
from medsbench.metrics import primary_metric
from medsbench.board.names import reported_run_name, unique_slug as slugify
from medsbench.board.store import load_seed
from medsbench.errors import MedsbenchError
from medsbench.tasks.catalog import catalog


class Page(HTMLParser):
    """Collects tags, links and table cells of one generated page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_script: dict | None = None
        self.scripts: list[tuple[dict, str]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self.tables.append({"id": a.get("id"), "head": [], "rows": [], "section": None})
        elif tag in ("thead", "tbody") and self.tables:
            self.tables[-1]["section"] = tag
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "script":
            self._in_script = a
            self.scripts.append((a, ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self.tables:
            t = self.tables[-1]
            (t["head"] if t["section"] == "thead" else t["rows"]).append(self._row)
            self._row = None
        elif tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def site(tmp_path, board_ws):
    store = fresh_store(tmp_path, board_ws)
    out = tmp_path / "site"
    build_site(store, out)
    yield store, out
    store.close()


# -- store ------------------------------------------------------------------------------------


def test_seed_rows_match_the_published_numbers(tmp_path):
    """Every seeded number is stored exactly as the seed file gives it, under the metric it reports."""
    seed = load_seed()
    cat = catalog()
    with Store(tmp_path / "b.sqlite") as store:
        runs = {r.name: r for r in store.runs()}
        assert {r.model for r in runs.values()} == {m["name"] for m in seed["models"]}
        assert all(r.kind == "reported" for r in runs.values())
        for m in seed["models"]:
            run = reported_run_name(m["name"])
            assert runs[run].manifest["label"] == seed["sources"][m["source"]]["label"]
            cats = {(c["category"], c["metric"]): c for c in store.category_scores(run)}
            for key, metrics in m.get("categories", {}).items():
                for metric, value in metrics.items():
                    assert cats[(key, metric)]["value"] == value and cats[(key, metric)]["derived"] == 0
            tasks = {(s["task_id"], s["metric"]): s["value"] for s in store.task_scores(run)}
            expected = {(tid, k): v for tid, ms in m.get("tasks", {}).items() for k, v in ms.items()}
            expected |= {(f"pooled-{g}", k): v for g, ms in m.get("pooled", {}).items() for k, v in ms.items()}
            assert tasks == expected
            infos = {i["task_id"]: i for i in store.task_info(run)}
            for tid, ms in m.get("tasks", {}).items():
                # The stored primary metric is the one the scorer uses, and the seed reports it.
                assert infos[tid]["metric"] == primary_metric(cat[tid]) and infos[tid]["metric"] in ms
            for group in m.get("pooled", {}):
                assert infos[f"pooled-{group}"]["metric"] == "rougeL" in m["pooled"][group]
            # Categories of per-task sources are derived means of the seeded tasks, flagged as such.
            own = {k for k in m.get("categories", {})}
            by_cat: dict[tuple[str, str], list[float]] = {}
            for tid, ms in m.get("tasks", {}).items():
                for k, v in ms.items():
                    by_cat.setdefault((cat[tid].category, k), []).append(v)
            for (key, metric), values in by_cat.items():
                if key in own:
                    continue
                c = cats[(key, metric)]
                assert c["derived"] == 1 and c["n_tasks"] == len(values)
                assert c["value"] == pytest.approx(sum(values) / len(values), abs=1e-3)


def test_primary_metric_is_one_function():
    """Text tasks are ranked by ROUGE-L (the paper's leaderboard reports ROUGE), as results.json says."""
    from medsbench.metrics import scorer_for_task

    cat = catalog()
    for entry in cat.tasks.values():
        assert primary_metric(entry) == scorer_for_task(entry).primary
    assert primary_metric(cat["task114"]) == "rougeL" and primary_metric(cat["task57"]) == "accuracy"
    assert primary_metric(cat.categories["summarization"]) == "rougeL"


def test_mmedins_link_is_the_released_model(site):
    _, out = site
    seed = {m["name"]: m for m in load_seed()["models"]}
    link = "https://huggingface.co/Henrychur/MMedS-Llama-3-8B"
    assert seed["MMedIns-Llama 3"]["link"] == link
    page = (out / "models" / f"{slugify('MMedIns-Llama 3')}.html").read_text()
    assert f'href="{link}"' in page and "MMedIns-Llama-3-8B" not in page


def test_seed_file_is_consistent_with_the_catalog():
    seed = load_seed()
    cat = catalog()
    from medsbench.metrics import headline_metrics

    for m in seed["models"]:
        assert m["source"] in seed["sources"] and seed["sources"][m["source"]]["url"].startswith("https://")
        for tid, metrics in m.get("tasks", {}).items():
            assert set(metrics) <= set(headline_metrics(tid)), (m["name"], tid)
        for key, metrics in m.get("categories", {}).items():
            assert key in cat.categories and set(metrics) <= set(headline_metrics(key)), (m["name"], key)
        for values in [*m.get("tasks", {}).values(), *m.get("categories", {}).values()]:
            assert all(0 <= v <= 100 for v in values.values())


def test_add_is_idempotent_and_keeps_last_update(tmp_path, board_ws):
    run = board_ws["runs"][0]
    with Store(tmp_path / "b.sqlite") as store:
        assert add_run(store, run, model_name="tiny") == "added"
        stamp = store.last_update
        dump = "\n".join(store.db.iterdump())
        assert add_run(store, run, model_name="tiny") == "unchanged"
        assert store.last_update == stamp
        assert "\n".join(store.db.iterdump()) == dump
        n_items = sum(1 for _ in open(run / "predictions.jsonl"))
        assert store.prediction_count("tiny-llama") == n_items
        infos = {i["task_id"]: i for i in store.task_info("tiny-llama")}
        assert set(infos) == {"task57", "task114"} and infos["task57"]["n"] == 6
    # A second process sees the same rows: nothing lives only in memory.
    con = sqlite3.connect(tmp_path / "b.sqlite")
    assert con.execute("SELECT COUNT(*) FROM runs WHERE name = 'tiny-llama'").fetchone()[0] == 1
    con.close()


def test_add_refuses_bad_runs_and_reported_names(tmp_path, board_ws):
    with Store(tmp_path / "b.sqlite") as store:
        with pytest.raises(MedsbenchError, match="run folder not found"):
            add_run(store, tmp_path / "nope")
        empty = tmp_path / "runs" / "empty"
        empty.mkdir(parents=True)
        with pytest.raises(MedsbenchError, match="results.json missing"):
            add_run(store, empty)
        with pytest.raises(MedsbenchError, match="reported"):
            add_run(store, board_ws["runs"][0], model_name="GPT-4")
        with pytest.raises(MedsbenchError, match="path traversal"):
            add_run(store, board_ws["runs"][0], model_name="../../etc")


def test_manifest_spec_becomes_a_path_free_name(tmp_path, board_ws, tiny_model_dir):
    from medsbench.records.folder import RunFolder

    run = board_ws["runs"][0]
    spec = RunFolder(run).manifest().model  # written by run_eval: "hf:/.../model"
    assert spec.startswith("hf:/") and spec.endswith("/" + tiny_model_dir.name)
    with Store(tmp_path / "b.sqlite") as store:
        add_run(store, run)
        assert [r.model for r in store.runs() if r.kind == "measured"] == [tiny_model_dir.name]
        # A foreign manifest (the old {"model": {"spec": ..., "name": ...}} shape) is refused in one line.
        old = tmp_path / "runs" / "old"
        import shutil

        shutil.copytree(run, old)
        data = json.loads((old / "manifest.json").read_text())
        data["model"] = {"spec": spec, "name": "tiny"}
        (old / "manifest.json").write_text(json.dumps(data))
        with pytest.raises(MedsbenchError, match=r"manifest.json: not a medsbench run manifest: model") as exc:
            add_run(store, old)
        assert "\n" not in str(exc.value)


def test_unfinished_runs_are_refused(tmp_path, board_ws):
    import shutil

    run = tmp_path / "runs" / "half"
    shutil.copytree(board_ws["runs"][0], run)
    from medsbench.records.folder import RunFolder

    manifest = RunFolder(run).manifest()
    manifest.status = "interrupted"
    RunFolder(run).save_manifest(manifest)
    with Store(tmp_path / "b.sqlite") as store:
        with pytest.raises(MedsbenchError, match="interrupted.*--resume.*--allow-partial"):
            add_run(store, run)
        assert add_run(store, run, allow_partial=True) == "added"
        assert [r.partial for r in store.runs() if r.name == "half"] == [True]
        manifest.status = "running"
        RunFolder(run).save_manifest(manifest)
        with pytest.raises(MedsbenchError, match="run is running.*--resume"):
            add_run(store, run, allow_partial=True)


# -- site -------------------------------------------------------------------------------------


def test_overview_structure(site):
    store, out = site
    seed = load_seed()
    cat = catalog()
    page = Page((out / "index.html").read_text())
    tables = {t["id"]: t for t in page.tables}
    ref, strict = tables["table-reference"], tables["table-strict"]
    categories = list(cat.categories)
    head = ref["head"][0]
    # Kind and protocol live in the model cell; the overall column comes right after it.
    assert head[0] == "Model" and head[1].startswith("Overall") and len(head) == 2 + len(categories)
    assert head[2].startswith(cat.categories["mcqa"].title) and head[2].endswith("accuracy")
    assert "BLEU-1 / ROUGE-L" in head[2 + categories.index("summarization")]
    models = [r[0] for r in ref["rows"]]
    assert len(models) == len(seed["models"]) + 2  # every reported model + 2 measured, one row per model
    assert any(HOSTILE_MODEL in m for m in models) and any("tiny-llama (random)" in m for m in models)
    assert sum("reported" in m and "protocol as published" in m for m in models) == len(seed["models"])
    assert sum("measured" in m and "protocol medsbench" in m for m in models) == 2
    # Ranked by the overall score: the mean of the primary metric over the categories a row covers.
    overall = []
    for r in ref["rows"]:
        value, covered, total = re.match(r"^(\d+\.\d\d)(\d+)/(\d+) categories", r[1]).groups()
        primaries = []
        for k in range(len(categories)):
            m = re.match(r"^(\d+\.\d\d)(?: / (\d+\.\d\d))?", r[2 + k])
            if m:
                primaries.append(float(m.group(2) or m.group(1)))
        assert int(covered) == len(primaries) and int(total) == len(categories), r[0]
        assert float(value) == pytest.approx(sum(primaries) / len(primaries), abs=0.01), r[0]
        overall.append(float(value))
    assert overall == sorted(overall, reverse=True)  # every row here is complete: one tier
    # Strict mode has only the rows scored here, each with a CI (or why not) in small print.
    assert len(strict["rows"]) == 2
    assert all("95% CI" in r[2] for r in strict["rows"])
    # Published category numbers are shown exactly as the seed file gives them.
    for m in seed["models"]:
        row = next(r for r in ref["rows"] if m["name"] in r[0].split("reported")[0] and "reported" in r[0])
        for key, metrics in m.get("categories", {}).items():
            headline = [k for k in ("accuracy", "bleu1", "rougeL", "f1") if k in metrics]
            assert row[2 + categories.index(key)] == " / ".join(f"{metrics[k]:.2f}" for k in headline), (m["name"], key)
        if m.get("categories") and not m.get("tasks"):
            for key in set(categories) - set(m["categories"]):
                assert row[2 + categories.index(key)] == "–", (m["name"], key)
    # Every score cell carries a numeric sort key; the ranking tables are sortable and tiered.
    cells = [a for t, a in page.tags if t == "td" and "num" in (a.get("class") or "")]
    assert cells and all(a.get("data-sort") == "" or re.fullmatch(r"-?\d+\.\d{4}", a["data-sort"]) for a in cells)
    tables = [a for t, a in page.tags if t == "table"]
    assert len(tables) == 2 and all("sortable" in a["class"] and a.get("data-tiered") == "1" for a in tables)


def test_every_local_link_resolves(site):
    _, out = site
    checked = 0
    for html in out.rglob("*.html"):
        page = Page(html.read_text())
        for tag, attrs in page.tags:
            ref = attrs.get("href") if tag in ("a", "link") else attrs.get("src") if tag in ("img", "script") else None
            if not ref or ref.startswith(("https://", "http://", "#", "data:")):
                continue
            assert not ref.startswith("//"), f"{html}: protocol-relative {ref}"
            target = (html.parent / ref.split("#")[0]).resolve()
            assert target.is_file(), f"{html.relative_to(out)} links to missing {ref}"
            checked += 1
    assert checked > 200


def test_no_cdn_or_remote_assets(site):
    _, out = site
    for p in out.rglob("*"):
        if p.suffix in (".html", ".css", ".js", ".svg"):
            text = p.read_text()
            assert not re.search(r"""(src|href)=["']?(https?:)?//""", text.replace('href="https://', "").replace('href="http://', "")), p
            assert "@import" not in text and "url(http" not in text


def test_charts_are_inline_legible_svg(site):
    store, out = site
    import xml.etree.ElementTree as ET

    seed = {m["name"]: m for m in load_seed()["models"]}
    cat = catalog()
    index = (out / "index.html").read_text()
    assert "<img" not in index  # the chart is inline SVG: labels and values are text, no hover needed
    panels = re.findall(r'<figure class="panel">(.*?)</figure>', index, re.S)
    assert len(panels) == len(cat.categories)
    for svg, (key, c) in zip(panels, cat.categories.items()):
        root = ET.fromstring(svg)  # well-formed XML even with markup in a model name
        texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
        assert texts[0].startswith(c.title)
        sizes = [float(t.get("font-size") or root.get("font-size")) for t in root.iter("{http://www.w3.org/2000/svg}text")]
        assert min(sizes) >= 12 and int(root.get("width")) <= 340
        # Every complete row with a published number in this category has a labelled bar with its value.
        for name, m in seed.items():
            value = m.get("categories", {}).get(key)
            if value is not None and len(m.get("tasks", {})) == 0:
                metric = "rougeL" if "rougeL" in value else next(iter(value))
                assert name in texts and f"{value[metric]:.1f}" in texts, (key, name)
    assert HOSTILE_MODEL not in index and "&lt;img src=x onerror=al" in index
    # Model pages: an inline chart of both modes, one bar per published category of a reported model.
    gpt4 = seed["GPT-4"]
    page = (out / "models" / f"{slugify('GPT-4')}.html").read_text()
    svg = re.search(r'<figure class="chart">\s*(<svg.*?</svg>)', page, re.S).group(1)
    ET.fromstring(svg)
    assert svg.count("<rect x=\"0\" y=") == len(gpt4["categories"]) + 1  # + the legend swatch
    assert f"ROUGE-L (official scoring): {gpt4['categories']['summarization']['rougeL']:.1f}" in svg
    assert not (out / "charts").exists()


def test_task_pages_list_every_model_with_scores(site):
    _, out = site
    page = Page((out / "tasks" / "task57.html").read_text())
    table = next(t for t in page.tables if t["id"] == "task-table")
    head = table["head"][0]
    names = [r[0] for r in table["rows"]]
    reported = {m["name"]: m["tasks"]["task57"] for m in load_seed()["models"] if "task57" in m.get("tasks", {})}
    assert len(names) == 2 + len(reported)  # both measured runs and every model with a published task57 number
    assert any(n.startswith(HOSTILE_MODEL) for n in names)
    col = next(i for i, h in enumerate(head) if h.startswith("accuracy") and "official" in h)
    for name, metrics in reported.items():
        row = next(r for r in table["rows"] if r[0].startswith(name))
        assert row[col] == f"{metrics['accuracy']:.2f}"
    assert (out / "tasks" / "pooled-CT.html").is_file()
    assert "task114" in (out / "tasks.html").read_text()


def test_run_page_items_are_escaped_json_shards(site, board_ws):
    store, out = site
    html = (out / "runs" / f"{slugify('hostile')}.html").read_text()
    assert html.count("<script") == 1 and "medsbenchData" not in html  # the items load lazily
    index, items = site_items(out, "hostile")
    assert len(items) == store.prediction_count("hostile") == 10
    assert HOSTILE_OUTPUT in {it[3] for it in items}
    assert any(HOSTILE_INPUT_TAIL in it[2] for it in items)
    for shard in (out / "runs" / slugify("hostile")).iterdir():  # nothing can start a tag or close a script
        text = shard.read_text()
        assert "<" not in text and ">" not in text and "&" not in text, shard
    assert {(it[5], it[6]) for it in items if it[0] == "task114"} == {(None, None)}  # BLEU/ROUGE: no verdict
    hostile = next(it for it in items if it[3] == HOSTILE_OUTPUT)
    assert hostile[5] == 1 and hostile[6] == 1 and hostile[8] == 1  # "B. croup": right in both modes, parsed
    assert {it[5] for it in items if it[0] == "task57"} <= {0, 1}
    assert all(it[10] and it[10].endswith("<|im_start|>assistant\n") for it in items)  # the prompt sent
    # The index carries task and flags per item (filters work without loading the items).
    assert index["tasks"] == ["task57", "task114"] and len(index["items"]) == 10
    assert all(flags & 128 for t, flags in index["items"] if t == 1)  # text task: no verdict
    assert all(bool(flags & 8) == (it[8] == 0) for (t, flags), it in zip(index["items"], items))


def test_markup_in_names_is_escaped_everywhere(site):
    _, out = site
    for p in out.rglob("*.html"):
        text = p.read_text()
        assert HOSTILE_MODEL not in text, p  # only ever as &lt;img ...
    index = (out / "index.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in index


def test_script_json_cannot_break_out():
    evil = {"a": "</script><script>alert(1)</script>", "b": "x\u2028y", "c": "&amp;<!--"}
    text = script_json(evil)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == evil


def test_rebuild_is_byte_identical(site, tmp_path):
    store, out = site
    first = _tree_digest(out)
    build_site(store, out)
    assert _tree_digest(out) == first
    again = tmp_path / "site2"
    build_site(store, again)
    assert _tree_digest(again) == first
    # The one date shown is the store's last update, not the clock.
    assert f'datetime="{store.last_update}"' in (out / "index.html").read_text()


def test_pending_runs_stay_off_the_site(tmp_path, board_ws):
    with Store(tmp_path / "b.sqlite") as store:
        add_run(store, board_ws["runs"][0], model_name="pending-model", kind="submission", status="pending")
        build_site(store, tmp_path / "site")
        assert "pending-model" not in (tmp_path / "site" / "index.html").read_text()
        assert store.approve("pending-model") == ["tiny-llama"]
        build_site(store, tmp_path / "site")
        assert "pending-model" in (tmp_path / "site" / "index.html").read_text()
        with pytest.raises(MedsbenchError, match="nothing pending"):
            store.approve("pending-model")


def test_build_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with Store(tmp_path / "b.sqlite") as store, pytest.raises(MedsbenchError, match="not a medsbench site"):
        build_site(store, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_items_cap_is_stated(tmp_path, board_ws):
    with Store(tmp_path / "b.sqlite") as store:
        add_run(store, board_ws["runs"][0], model_name="capped")
        build_site(store, tmp_path / "site", max_items_per_task=2)
        html = (tmp_path / "site" / "runs" / f"{slugify('tiny-llama')}.html").read_text()
        _, items = site_items(tmp_path / "site", "tiny-llama")
        assert len(items) == 4  # 2 per task
        assert "task57: 2 of 6 shown" in html


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_add_build_list(tmp_path, board_ws):
    from typer.testing import CliRunner

    from medsbench.cli import app

    runner = CliRunner()
    ws = ["--workspace", str(tmp_path)]
    res = runner.invoke(app, ["board", "add", str(board_ws["runs"][0]), "--model-name", "cli-model", *ws])
    assert res.exit_code == 0, res.output
    assert "added" in res.output
    res = runner.invoke(app, ["board", "add", str(board_ws["runs"][0]), "--model-name", "cli-model", *ws])
    assert "unchanged" in res.output
    res = runner.invoke(app, ["board", "build", *ws])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "site" / "index.html").is_file() and "run pages" in res.output
    res = runner.invoke(app, ["board", "list", *ws])
    assert res.exit_code == 0 and "cli-model" in res.output and "GPT-4" in res.output


def test_cli_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "medsbench.cli", "board", "add", str(tmp_path / "missing"), "--workspace", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_serve_answers_on_localhost(site):
    import threading
    import urllib.request

    from medsbench.board.serve import make_server

    _, out = site
    server = make_server(out, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10).read()
        assert body == (out / "index.html").read_bytes()
    finally:
        server.shutdown()
        server.server_close()


def test_task_page_describes_the_test_set(site, board_ws):
    """Size, gold labels and the full-file majority baseline, one escaped example item, source and licence in
    plain words (never the catalog's availability codes)."""
    _, out = site
    html = (out / "tasks" / "task57.html").read_text()
    page = Page(html)
    assert "6 items in the test file" in html
    labels = next(t for t in page.tables if t["head"] and t["head"][0] == ["Label", "Items", "Share"])
    assert labels["rows"] == [["A", "3", "50.0%"], ["B", "1", "16.7%"], ["C", "1", "16.7%"], ["D", "1", "16.7%"]]
    assert "50.0% accuracy by always answering “A” (over the whole test file)" in html
    assert "<dt>Source</dt><dd>hand-written</dd>" in html and "<dt>Licence</dt><dd>CC0</dd>" in html
    assert "A 45-year-old man has crushing chest pain" in html  # the example item (the first instance)
    for p in out.rglob("*.html"):
        text = p.read_text()
        for jargon in ("public-here", "public-elsewhere"):
            assert jargon not in text, (p, jargon)
    about_task114 = (out / "tasks" / "task114.html").read_text()
    assert "4 items in the test file" in about_task114 and "Gold label distribution" not in about_task114


def test_small_samples_get_honest_intervals(site):
    """Accuracy: a Wilson interval from the number right and n (scipy); other metrics below 10 items: no
    interval, "n too small"."""
    from scipy.stats import binomtest

    store, out = site
    scores = {(s["task_id"], s["mode"], s["metric"]): s for s in store.task_scores("tiny-llama")}
    infos = {i["task_id"]: i for i in store.task_info("tiny-llama")}
    acc = scores[("task57", "strict", "accuracy")]
    k, n = round(acc["value"] * infos["task57"]["n"] / 100), infos["task57"]["n"]
    ci = binomtest(k, n).proportion_ci(method="wilson")
    assert acc["ci_method"] == "wilson" and (acc["ci_lo"], acc["ci_hi"]) == pytest.approx((100 * ci.low, 100 * ci.high), abs=1e-3)
    rouge = scores[("task114", "strict", "rougeL")]
    assert rouge["ci_method"] == "bootstrap" and infos["task114"]["n"] == 4
    table = next(t for t in Page((out / "runs" / f"{slugify('tiny-llama')}.html").read_text()).tables if t["id"] == "run-tasks")
    rows = {r[0].split(" ")[0]: r for r in table["rows"]}
    assert f"95% CI {acc['ci_lo']:.1f}–{acc['ci_hi']:.1f}" in rows["task57"][2]
    assert rows["task114"][2].endswith("n too small for a CI") and "95% CI" not in rows["task114"][2]
