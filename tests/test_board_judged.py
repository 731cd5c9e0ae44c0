"""Board: judged (model-graded) scores in their own section, the about page's rubric text, paired
comparisons of a run with its baseline, and the schema-2 -> 3 migration.

The workspace holds real MedQA-USMLE (task57) and MeQSum (task114) items converted from
../shared/data/raw, answered by two recorded "models": a base that picks the right option on a third
of the questions and answers a summary with the question's first words, and a tuned one that is right
on five sixths of the questions and summarizes like the base except on two items. Both runs are
scored with the real engine (tests/test_board_support.record_run) and judged by the real judge
pipeline against the local OpenAI-compatible judge server of tests/judge_server.py (a separate process).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import raw_dir
from test_board import Page
from test_board_support import record_run
from test_judge import KEY_ENV, JudgeServer

from medsbench.board.publish import add_run

from medsbench.board.site import build_site

from medsbench.board.store import Store
from medsbench.board.site import detectable_difference, verdict
from medsbench.board.names import unique_slug as slugify
from medsbench.board.store import SCHEMA_VERSION
from medsbench.errors import MedsbenchError
from medsbench.metrics import compare_predictions
from medsbench.records import PredictionRow, read_predictions
from medsbench.records.folder import RunFolder

N_MCQA, N_SUMM = 60, 30
BASE, TUNED = "base", "tuned"
BASE_MODEL, TUNED_MODEL = "SmolLM2 base (recorded)", "SmolLM2 tuned (recorded)"
HOSTILE = '<script>alert("judge")</script><img src=x onerror=alert(3)>'
JUDGED_TITLE = "Judged free-text scores (model-graded, not part of the official scores)"


def _tasks(root: Path) -> dict[str, Path]:
    from medsbench.sources import convert

    files: dict[str, Path] = {}
    for source, tid in (("medqa_usmle", "task57"), ("meqsum", "task114")):
        paths = convert(source, raw_dir(source), root / "tasks")
        files[tid] = next(p for p in paths if p.name.endswith(".test.json"))
    return files


def _rows(files: dict[str, Path], tuned: bool) -> list[PredictionRow]:
    from medsbench.tasks.format import read_task

    rows: list[PredictionRow] = []
    for k, inst in enumerate(read_task(files["task57"]).instances[:N_MCQA]):
        gold = inst.output[0]  # "The right answer is B: ..."
        letter = gold.split("The right answer is ", 1)[1][0]
        right = (k % 6 != 0) if tuned else (k % 3 == 0)
        answer = letter if right else "ABCD"[("ABCD".index(letter) + 1 + k % 3) % 4]
        rows.append(PredictionRow(task_id="task57", id=inst.id, category="mcqa", language="en", input=inst.input,
                                  output=f"The right answer is {answer}.", reference=gold))
    for k, inst in enumerate(read_task(files["task114"]).instances[:N_SUMM]):
        ref = inst.output[0]
        out = " ".join(inst.input.split()[:12])
        if tuned and k in (3, 7):
            out = ref
        rows.append(PredictionRow(task_id="task114", id=inst.id, category="summarization", language="en",
                                  input=inst.input, output=out, reference=ref))
    return rows


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """WORKSPACE with runs/base (judged by one judge) and runs/tuned (judged by a jury of two)."""
    from medsbench.judge import judge_run

    root = tmp_path_factory.mktemp("pair-ws")
    files = _tasks(root)
    base = record_run(root / "runs" / BASE, files, _rows(files, tuned=False), spec="hf:/models/smol-base")
    tuned = record_run(root / "runs" / TUNED, files, _rows(files, tuned=True), spec="hf:/models/smol-tuned")
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, "sk-judge-test-never-logged")
    server = JudgeServer()
    try:
        judge_run(base, [server.spec("overlap")], bootstrap=200)
        judge_run(tuned, [server.spec("overlap"), server.spec("recall")], bootstrap=200)
    finally:
        server.close()
        mp.undo()
    return {"root": root, "files": files, "base": base, "tuned": tuned}


def _copy_run(pair, name: str, tmp_path: Path) -> Path:
    dst = tmp_path / "runs" / name
    shutil.copytree(pair[name], dst)
    return dst


def _store(tmp_path: Path, pair, *, baseline: bool = True) -> Store:
    store = Store(tmp_path / "board.sqlite")
    assert add_run(store, pair["base"], model_name=BASE_MODEL) == "added"
    assert add_run(store, pair["tuned"], model_name=TUNED_MODEL, baseline=BASE if baseline else None) == "added"
    return store


def _tables(page: Page, cls: str) -> list[dict]:
    """Tables of ``page`` whose class attribute names ``cls`` (in document order)."""
    wanted = [a.get("id") or i for i, (tag, a) in enumerate(page.tags) if tag == "table" and cls in (a.get("class") or "").split()]
    ids = [i for i, (tag, _) in enumerate(page.tags) if tag == "table"]
    return [page.tables[ids.index(w)] if isinstance(w, int) else next(t for t in page.tables if t["id"] == w) for w in wanted]


# -- judged scores ----------------------------------------------------------------------------------


def test_judged_scores_are_stored_as_judged_json_says(tmp_path, pair):
    rec = RunFolder(pair["tuned"]).judged()
    with _store(tmp_path, pair) as store:
        j = store.judged(TUNED)
        assert j is not None and j["run"]["headline"] == "jury"
        assert [x["name"] for x in j["run"]["judges"]] == ["overlap", "recall"]
        assert all(x["spec"].startswith("openai:") and "sk-judge" not in x["spec"] for x in j["run"]["judges"])
        [t] = j["tasks"]
        r = rec.tasks["task114"]
        assert t["task_id"] == "task114" and t["rubric"] == r.rubric == "summarization@1"
        assert (t["n"], t["n_scored"]) == (N_SUMM, r.jury.n_scored) == (N_SUMM, N_SUMM)
        assert t["mean"] == r.jury.mean and [t["ci_lo"], t["ci_hi"]] == r.jury.ci95
        assert t["ci_lo"] < t["mean"] < t["ci_hi"] and 1 <= t["mean"] <= 5
        assert t["parse_failure_rate"] == r.jury.parse_failure_rate == 0
        assert t["alpha"] == r.agreement.krippendorff_alpha and t["kappa"] == r.agreement.cohen_kappa
        assert t["judges"]["recall"]["mean"] == r.judges["recall"].mean
        assert t["probes"]["jury"]["reference"]["pass_rate"] == r.probes["jury"]["reference"].pass_rate
        [c] = j["categories"]
        assert c["category"] == "summarization" and c["mean"] == rec.categories["summarization"].means["jury"]
        assert [c["ci_lo"], c["ci_hi"]] == r.jury.ci95  # one task: the task's CI
        assert c["n_scored"] == N_SUMM and c["parse_failure_rate"] == 0
        # A single judge is its own headline; the multiple-choice task is never judged.
        b = store.judged(BASE)
        assert b["run"]["headline"] == "overlap" and [t["task_id"] for t in b["tasks"]] == ["task114"]
        assert b["tasks"][0]["mean"] == RunFolder(pair["base"]).judged().tasks["task114"].jury.mean
        # Official tables are untouched by judged scores: same rows as a store without judged.json.
        official = {(s["task_id"], s["mode"], s["metric"]): s["value"] for s in store.task_scores(TUNED)}
    plain = _copy_run(pair, TUNED, tmp_path / "plain")
    (plain / "judged.json").unlink()
    with Store(tmp_path / "plain.sqlite") as other:
        add_run(other, plain, model_name=TUNED_MODEL)
        assert other.judged(TUNED) is None
        assert {(s["task_id"], s["mode"], s["metric"]): s["value"] for s in other.task_scores(TUNED)} == official


def test_judged_section_on_index_model_and_run_pages(tmp_path, pair):
    rec = RunFolder(pair["tuned"]).judged()
    t = rec.tasks["task114"]
    with _store(tmp_path, pair) as store:
        build_site(store, tmp_path / "site")
        build_site(store, tmp_path / "again")
    for page_path in (tmp_path / "site").rglob("*.html"):  # judged and compared pages rebuild byte for byte
        assert page_path.read_bytes() == (tmp_path / "again" / page_path.relative_to(tmp_path / "site")).read_bytes()
    for html_path in (tmp_path / "site").rglob("*.html"):  # every local link of the new sections resolves
        for tag, attrs in Page(html_path.read_text()).tags:
            ref = attrs.get("href") if tag == "a" else None
            if ref and not ref.startswith(("https://", "http://", "#")):
                assert (html_path.parent / ref.split("#")[0]).resolve().is_file(), f"{html_path}: {ref}"
    index = (tmp_path / "site" / "index.html").read_text()
    page = Page(index)
    assert JUDGED_TITLE in index
    judged = next(tb for tb in page.tables if tb["id"] == "table-judged")
    heads = judged["head"][0]
    assert heads[0] == "Model" and any(h.startswith("Text summarization") for h in heads)
    rows = {r[0].split("run ")[0]: r for r in judged["rows"]}
    row = rows[TUNED_MODEL]
    cell = next(x for x in row if x.startswith(f"{t.jury.mean:.2f}"))
    assert f"95% CI {t.jury.ci95[0]:.2f}–{t.jury.ci95[1]:.2f}" in cell and f"n={N_SUMM}" in cell
    assert row[-2].startswith("overlap, recall") and "reference copy 100.0%" in row[-1]
    assert rows[BASE_MODEL][-2].startswith("overlap")
    # The official tables carry no judged column or number.
    for tid in ("table-reference", "table-strict"):
        tb = next(x for x in page.tables if x["id"] == tid)
        assert not any("judged" in h.lower() for h in tb["head"][0])
    model = Page((tmp_path / "site" / "models" / f"{slugify(TUNED_MODEL)}.html").read_text())
    [cats] = _tables(model, "judged")
    [summ] = [r for r in cats["rows"] if r[0] == "Text summarization"]
    assert summ[1].startswith(f"{t.jury.mean:.2f}") and f"{t.jury.ci95[0]:.2f}–{t.jury.ci95[1]:.2f}" in summ[1]
    assert summ[2] == f"{rec.categories['summarization'].means['overlap']:.2f}"
    [per_task] = _tables(model, "judged-tasks")
    [row] = per_task["rows"]
    assert row[0].startswith("task114") and row[1] == "summarization@1"
    assert f"{t.agreement.krippendorff_alpha:.2f} / {t.agreement.cohen_kappa:.2f}" in row[-2]
    task_page = Page((tmp_path / "site" / "tasks" / "task114.html").read_text())
    [jt] = _tables(task_page, "judged-task")
    shown = {r[0].split(" run ")[0]: r for r in jt["rows"]}
    assert set(shown) == {BASE_MODEL, TUNED_MODEL} and shown[TUNED_MODEL][1].startswith(f"{t.jury.mean:.2f}")
    assert not _tables(Page((tmp_path / "site" / "tasks" / "task57.html").read_text()), "judged-task")
    run_page = (tmp_path / "site" / "runs" / f"{slugify(TUNED)}.html").read_text()
    assert JUDGED_TITLE in run_page and f"{t.jury.mean:.2f}" in run_page and "summarization@1" in run_page


def test_no_judged_section_without_judged_json(tmp_path, pair):
    runs = [_copy_run(pair, name, tmp_path) for name in (BASE, TUNED)]
    for run in runs:
        (run / "judged.json").unlink()
    with Store(tmp_path / "board.sqlite") as store:
        for run in runs:
            add_run(store, run)
        assert store.judged(BASE) is None and store.judged(TUNED) is None
        build_site(store, tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    assert JUDGED_TITLE not in index and 'id="table-judged"' not in index
    for page in (tmp_path / "site" / "models").glob("*.html"):
        assert "judged-tasks" not in page.read_text()


def test_judged_json_added_later_updates_the_run(tmp_path, pair):
    run = _copy_run(pair, TUNED, tmp_path)
    judged = (run / "judged.json").read_bytes()
    (run / "judged.json").unlink()
    with Store(tmp_path / "board.sqlite") as store:
        assert add_run(store, run) == "added" and store.judged(TUNED) is None
        (run / "judged.json").write_bytes(judged)
        assert add_run(store, run) == "updated" and store.judged(TUNED)["tasks"][0]["n_scored"] == N_SUMM
        assert add_run(store, run) == "unchanged"
        (run / "judged.json").unlink()
        assert add_run(store, run) == "updated" and store.judged(TUNED) is None


def test_a_judged_json_of_another_run_is_refused(tmp_path, pair):
    # The base run's folder with the tuned run's judged.json: another model.
    base = _copy_run(pair, BASE, tmp_path)
    shutil.copy(pair["tuned"] / "judged.json", base / "judged.json")
    with Store(tmp_path / "board.sqlite") as store:
        with pytest.raises(MedsbenchError, match=r"judged.json does not belong to this run \(it judged model "
                                                 r"'hf:/models/smol-tuned', manifest.json says 'hf:/models/smol-base'\)") as err:
            add_run(store, base)
        assert "\n" not in str(err.value) and str(base / "judged.json") in str(err.value)
        assert store.runs() and BASE not in {r.name for r in store.runs()}  # nothing stored
    # Same model, but the predictions changed after judging: fewer summaries than were judged.
    tuned = _copy_run(pair, TUNED, tmp_path)
    rows = [r for i, r in enumerate(read_predictions(tuned / "predictions.jsonl")) if r.task_id != "task114" or i % 5]
    record_run(tuned, pair["files"], rows, spec="hf:/models/smol-tuned")
    with Store(tmp_path / "board2.sqlite") as store, pytest.raises(MedsbenchError, match=r"it judged another predictions.jsonl \(sha256 differs\)"):
        add_run(store, tuned)
    # A judged.json from before predictions_sha256 was recorded: caught by the item counts.
    data = json.loads((tuned / "judged.json").read_text())
    assert data.pop("predictions_sha256")
    (tuned / "judged.json").write_text(json.dumps(data))
    with Store(tmp_path / "board2.sqlite") as store, pytest.raises(MedsbenchError, match=r"task114: it judged 30 item\(s\), predictions.jsonl has 24"):
        add_run(store, tuned)
    # A judged.json written for another run folder.
    other = _copy_run(pair, TUNED, tmp_path / "elsewhere")
    data = json.loads((other / "judged.json").read_text())
    data["run"] = str(tmp_path / "runs" / "some-other-run")
    (other / "judged.json").write_text(json.dumps(data))
    with Store(tmp_path / "board3.sqlite") as store, pytest.raises(MedsbenchError, match="it judged the run folder 'some-other-run'"):
        add_run(store, other)


def test_hostile_judge_names_are_refused_and_judge_text_is_escaped(tmp_path, pair):
    run = _copy_run(pair, TUNED, tmp_path)
    rec = RunFolder(run).judged()
    ren = {"overlap": HOSTILE}

    def rename(d: dict) -> dict:
        return {ren.get(k, k): v for k, v in d.items()}

    hostile = rec.model_copy(deep=True)
    hostile.judges[0].name = HOSTILE
    for t in hostile.tasks.values():
        t.judges = rename(t.judges)
        t.probes = rename(t.probes)
    for c in hostile.categories.values():
        c.means = rename(c.means)
    hostile.probe_totals = rename(hostile.probe_totals)
    RunFolder(run).save_judged(hostile)
    with Store(tmp_path / "board.sqlite") as store:
        with pytest.raises(MedsbenchError, match=r"judged.json: .*judge name .* is not a valid name") as err:
            add_run(store, run, model_name=TUNED_MODEL)
        assert "\n" not in str(err.value) and TUNED not in {r.name for r in store.runs()}
    # Free text of a judged.json (a judge's spec, a rubric id) and of the rubric files is shown escaped.
    rec.judges[0].spec = f"openai:{HOSTILE}"
    for t in rec.tasks.values():
        t.rubric = "summarization@1<b>bold</b>"
    RunFolder(run).save_judged(rec)
    rubrics = tmp_path / "rubrics"
    shutil.copytree(Path(__import__("medsbench.judge", fromlist=["x"]).__file__).parent / "rubrics", rubrics)
    text = (rubrics / "summarization.yaml").read_text()
    text = text.replace("title: Clinical text summarization", "title: 'Summaries <script>alert(\"rubric\")</script>'")
    text = text.replace("  5: Equivalent", "  5: <iframe src=//evil.example></iframe> Equivalent")
    (rubrics / "summarization.yaml").write_text(text)
    with Store(tmp_path / "board.sqlite") as store:
        add_run(store, run, model_name=TUNED_MODEL)
        build_site(store, tmp_path / "site", rubrics_dir=rubrics)
    pages = {p.name: p.read_text() for p in (tmp_path / "site").rglob("*.html")}
    for name, html in pages.items():
        assert "<script>alert(" not in html and "<img src=x" not in html and "<iframe" not in html, name
        assert "<b>bold</b>" not in html, name
    model = pages[f"{slugify(TUNED_MODEL)}.html"]
    assert "openai:&lt;script&gt;alert(&#34;judge&#34;)&lt;/script&gt;" in model
    assert "summarization@1&lt;b&gt;bold&lt;/b&gt;" in model
    about = pages["about.html"]
    assert "Summaries &lt;script&gt;alert(&#34;rubric&#34;)&lt;/script&gt;" in about
    assert "&lt;iframe src=//evil.example&gt;&lt;/iframe&gt; Equivalent" in about


def test_about_page_renders_every_rubric_and_the_limits(tmp_path):
    from medsbench.judge.rubric import load_rubrics

    with Store(tmp_path / "board.sqlite") as store:
        build_site(store, tmp_path / "site")
    about = (tmp_path / "site" / "about.html").read_text()
    page = Page(about)
    import html

    rubrics, template, _ = load_rubrics()
    assert len(rubrics) >= 5 and template.ref in about
    anchors = [t for t in page.tables if t["head"] and t["head"][0] == ["Score", "Anchor"]]
    assert len(anchors) == len(rubrics)
    for r in rubrics.values():
        assert r.ref in about and html.escape(r.title, quote=True) in about
        for c in r.criteria:
            assert html.escape(c.ask, quote=True) in about
        table = anchors[sorted(rubrics.values(), key=lambda x: (x.id == "generic", x.id)).index(r)]
        assert table["rows"] == [[str(s), " ".join(r.scale[s].split())] for s in sorted(r.scale, reverse=True)]
    for phrase in ("not a clinical validation", "verbosity", "position", "Small judges", "never replace"):
        assert phrase in about


# -- paired comparisons --------------------------------------------------------------------------------


def _stored(store: Store, run: str) -> dict:
    c = store.comparison(run)
    return {(r["scope"], r["key"], r["mode"], r["metric"]): dict(r) for r in c["rows"]}


def _expect(res: dict) -> dict:
    """compare_predictions(tuned, base) in the stored comparison's shape (A = tuned, B = base)."""
    out = {}
    for tid, t in res["tasks"].items():
        for mode in ("strict", "reference"):
            for metric, v in t[mode].items():
                out[("task", tid, mode, metric)] = (v["b"], v["a"], v["delta"], v["ci"], v["p_value"], t["n"])
    for ckey, c in res["categories"].items():
        members = [t for t in res["tasks"].values() if t["category"] == ckey]
        for mode in ("strict", "reference"):
            for metric, v in c[mode].items():
                base = round(sum(t[mode][metric]["b"] for t in members) / len(members), 4)
                tuned = round(sum(t[mode][metric]["a"] for t in members) / len(members), 4)
                out[("category", ckey, mode, metric)] = (base, tuned, v["delta"], v["ci"], v["p_value"],
                                                         sum(t["n"] for t in members))
    return out


def _as_expect(stored: dict) -> dict:
    return {k: (r["base"], r["tuned"], r["delta"], [r["ci_lo"], r["ci_hi"]], r["p_value"], r["n"]) for k, r in stored.items()}


def test_baseline_comparison_equals_compare_predictions(tmp_path, pair):
    res = compare_predictions(pair["tuned"] / "predictions.jsonl", pair["base"] / "predictions.jsonl")
    with _store(tmp_path, pair) as store:
        assert store.baseline_of(TUNED) == BASE and store.comparison(BASE) is None
        stored = _stored(store, TUNED)
        assert _as_expect(stored) == _expect(res)
        # The data shows what it was built to show: tuning helps on MCQA, not measurably on summaries.
        mcqa = stored[("category", "mcqa", "strict", "accuracy")]
        assert mcqa["base"] == pytest.approx(100 * 20 / 60, abs=0.01) and mcqa["tuned"] == pytest.approx(100 * 50 / 60, abs=0.01)
        assert mcqa["ci_lo"] > 0 and mcqa["p_value"] < 0.05 and mcqa["n"] == N_MCQA
        summ = stored[("category", "summarization", "strict", "rougeL")]
        assert summ["delta"] > 0 and summ["ci_lo"] <= 0 <= summ["ci_hi"]
        build_site(store, tmp_path / "site")
    model = Page((tmp_path / "site" / "models" / f"{slugify(TUNED_MODEL)}.html").read_text())
    cats, tasks = _tables(model, "comparison")
    # Key columns first: delta and verdict right after the row's name.
    assert cats["head"][0] == ["Category", "Delta", "Verdict", "95% CI of delta", "Detectable difference80% power", "p",
                               "Base", "Tuned", "n items"]
    shown = {r[0]: r for r in cats["rows"]}
    row = shown["Multiple-choice QAstrict · accuracy"]
    assert row[6] == f"{mcqa['base']:.2f}" and row[7] == f"{mcqa['tuned']:.2f}"
    assert row[1] == f"{mcqa['delta']:+.2f}" and row[3] == f"{mcqa['ci_lo']:+.2f} to {mcqa['ci_hi']:+.2f}"
    assert row[8] == f"{N_MCQA} in 1 task" and row[2] == "tuned is better"
    mdd = detectable_difference(mcqa["ci_lo"], mcqa["ci_hi"])
    assert row[4] == f"±{mdd:.2f}" and mdd == pytest.approx(2.8016 * (mcqa["ci_hi"] - mcqa["ci_lo"]) / 3.92, abs=0.01)
    summ_row = shown["Text summarizationstrict · ROUGE-L"]
    assert summ_row[2] == "no difference found"
    # Every row's verdict follows its own CI and p-value; the per-task table folds under <details>.
    for r in cats["rows"] + tasks["rows"]:
        lo, hi = (float(x) for x in r[3].split(" to "))
        p = 0.0 if r[5] == "< 0.001" else float(r[5])
        assert r[2] == verdict(float(r[1]), lo, hi, p)[0]
    assert {r[0].split()[0] for r in tasks["rows"]} == {"task57", "task114"}
    # The base model's page shows no comparison.
    base_page = (tmp_path / "site" / "models" / f"{slugify(BASE_MODEL)}.html").read_text()
    assert "comparison-tasks" not in base_page


def test_baseline_is_recomputed_when_either_run_changes(tmp_path, pair):
    base = _copy_run(pair, BASE, tmp_path)
    with Store(tmp_path / "board.sqlite") as store:
        add_run(store, base, model_name=BASE_MODEL)
        add_run(store, pair["tuned"], model_name=TUNED_MODEL, baseline=BASE)
        before = _stored(store, TUNED)
        # Unchanged re-add (baseline kept without naming it again) is a no-op.
        assert add_run(store, pair["tuned"], model_name=TUNED_MODEL) == "unchanged"
        # The base run answers fewer items now: the comparison follows (only shared items).
        rows = read_predictions(base / "predictions.jsonl")
        kept = [r for i, r in enumerate(rows) if r.task_id != "task57" or i % 2 == 0]
        record_run(base, pair["files"], kept, spec="hf:/models/smol-base")
        (base / "judged.json").unlink(missing_ok=True)  # it judged the old predictions.jsonl (refused otherwise)
        assert add_run(store, base, model_name=BASE_MODEL) == "updated"
        after = _stored(store, TUNED)
        assert after != before and after[("task", "task57", "strict", "accuracy")]["n"] == N_MCQA // 2
        res = compare_predictions(pair["tuned"] / "predictions.jsonl", base / "predictions.jsonl")
        assert _as_expect(after) == _expect(res)
        assert after[("task", "task57", "strict", "accuracy")]["only_in_run"] == N_MCQA // 2
        # Removing the baseline drops the comparison with it.
        store.remove(BASE)
        assert store.comparison(TUNED) is None and store.baseline_of(TUNED) is None


def test_bad_baselines_are_refused_in_one_line(tmp_path, pair):
    with Store(tmp_path / "board.sqlite") as store:
        for baseline, msg in ((None, None), ("nope", "no stored run named 'nope'"), (TUNED, "cannot be its own baseline"),
                              ("reported-GPT-4", "reported \\(seeded\\) row")):
            if baseline is None:
                continue
            with pytest.raises(MedsbenchError, match=msg) as err:
                add_run(store, pair["tuned"], baseline=baseline)
            assert "\n" not in str(err.value)
        assert TUNED not in {r.name for r in store.runs()}


def test_cli_add_with_baseline(tmp_path, pair):
    from typer.testing import CliRunner

    from medsbench.cli import app

    ws = ["--workspace", str(tmp_path)]
    runner = CliRunner()
    res = runner.invoke(app, ["board", "add", str(pair["base"]), *ws])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["board", "add", str(pair["tuned"]), "--baseline", BASE, *ws])
    assert res.exit_code == 0, res.output
    assert "added (judged scores stored; compared with base)" in res.output
    res = runner.invoke(app, ["board", "add", str(pair["tuned"]), "--baseline", "missing-run", *ws])
    assert res.exit_code != 0 and isinstance(res.exception, MedsbenchError)
    assert "no stored run named 'missing-run'" in str(res.exception)
    with Store(tmp_path / "board.sqlite") as store:
        assert store.baseline_of(TUNED) == BASE


# -- migration ---------------------------------------------------------------------------------------

_V2_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE models (name TEXT PRIMARY KEY, kind TEXT NOT NULL, size TEXT, link TEXT, description TEXT, source TEXT);
CREATE TABLE runs (name TEXT PRIMARY KEY, model TEXT NOT NULL REFERENCES models(name), kind TEXT NOT NULL,
  status TEXT NOT NULL, source TEXT, manifest TEXT NOT NULL, results_sha256 TEXT, predictions_sha256 TEXT,
  added TEXT NOT NULL, protocol TEXT, partial INTEGER NOT NULL DEFAULT 0, flags TEXT NOT NULL DEFAULT '[]');
CREATE TABLE task_info (run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, category TEXT,
  language TEXT, n INTEGER, metric TEXT, parse_failure_rate REAL, empty_rate REAL, n_failed INTEGER, coverage REAL,
  n_planned INTEGER, n_total INTEGER, majority_baseline REAL, degenerate INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run, task_id));
CREATE TABLE task_scores (run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL,
  mode TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, ci_lo REAL, ci_hi REAL, PRIMARY KEY (run, task_id, mode, metric));
CREATE TABLE category_scores (run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, category TEXT NOT NULL,
  mode TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, n_tasks INTEGER, derived INTEGER NOT NULL DEFAULT 0,
  ci_lo REAL, ci_hi REAL, PRIMARY KEY (run, category, mode, metric));
CREATE TABLE predictions (run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, seq INTEGER NOT NULL,
  task_id TEXT NOT NULL, item_id TEXT, input TEXT, output TEXT, reference TEXT, correct INTEGER, strict_correct INTEGER,
  error TEXT, PRIMARY KEY (run, seq));
INSERT INTO meta VALUES ('schema_version', '2');
"""


def test_a_schema_2_store_is_migrated(tmp_path, pair):
    path = tmp_path / "board.sqlite"
    con = sqlite3.connect(path)
    con.executescript(_V2_DDL)
    con.execute("INSERT INTO models VALUES (?, 'measured', NULL, NULL, NULL, NULL)", (BASE_MODEL,))
    con.execute("INSERT INTO runs(name, model, kind, status, manifest, results_sha256, predictions_sha256, added, protocol) "
                "VALUES (?, ?, 'measured', 'approved', '{}', 'r', 'p', '2026-01-01T00:00:00+00:00', 'medsbench')",
                (BASE, BASE_MODEL))
    con.execute("INSERT INTO task_info(run, task_id, category, n, metric) VALUES (?, 'task57', 'mcqa', 1, 'accuracy')", (BASE,))
    con.execute("INSERT INTO task_scores VALUES (?, 'task57', 'reference', 'accuracy', 100.0, NULL, NULL)", (BASE,))
    con.execute("INSERT INTO predictions VALUES (?, 0, 'task57', '0', 'q', 'A', 'A', 1, 1, NULL)", (BASE,))
    con.commit()
    con.close()
    with Store(path) as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION) == "5"
        assert [s["value"] for s in store.task_scores(BASE)] == [100.0]
        assert store.judged(BASE) is None and store.comparison(BASE) is None
        # Old rows lack what scoring needs: not a baseline until its folder is added again.
        with pytest.raises(MedsbenchError, match="stored by an older medsbench.*add its run folder again"):
            add_run(store, pair["tuned"], model_name=TUNED_MODEL, baseline=BASE)
        assert add_run(store, pair["base"], model_name=BASE_MODEL) == "updated"  # same name: replaced, rows complete
        assert add_run(store, pair["tuned"], model_name=TUNED_MODEL, baseline=BASE) == "added"
        assert store.judged(TUNED) is not None and store.baseline_of(TUNED) == BASE
        build_site(store, tmp_path / "site")
    with Store(path) as again:  # opens as schema 5 without migrating twice
        assert again.get_meta("schema_version") == "5" and again.baseline_of(TUNED) == BASE


# -- unusable judges ---------------------------------------------------------------------------------


def test_the_unusable_rule(pair):
    """Parse failures >= 50%, a failed probe kind, or no probe at all make a judge unusable (and its jury)."""
    from medsbench.judge.reliability import unusable_judges

    rec = RunFolder(pair["tuned"]).judged()
    assert unusable_judges(rec) == {}  # the pair's judges pass their probes and always give a score
    bad = rec.model_copy(deep=True)
    s = bad.tasks["task114"].judges["recall"]
    s.parse_failures = (s.n - s.errors) // 2
    assert unusable_judges(bad) == {"recall": "50% of its replies had no parseable score (unusable from 50%)",
                                    "jury": "its judge(s) recall are unusable"}
    bad = rec.model_copy(deep=True)
    p = bad.probe_totals["overlap"]["empty"]
    p.passed = p.n_scored // 3
    assert unusable_judges(bad)["overlap"] == f"empty probes passed {p.passed}/{p.n_scored} (needs 50%)"
    bad.probe_totals = {}
    assert set(unusable_judges(bad)) == {"overlap", "recall", "jury"}
    assert "no sanity probe was scored (probes 0/0)" in unusable_judges(bad)["overlap"]


def test_an_unusable_judge_is_said_and_its_numbers_are_not_scores(tmp_path, pair):
    """A real judge run without probes (0/0): the board says "this judge is unusable" and shows no judged mean;
    `medsbench judge --report` says so too. The item browser shows each judge's score and rationale."""
    from medsbench.judge import judge_run

    run = _copy_run(pair, BASE, tmp_path)
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, "sk-judge-test-never-logged")
    server = JudgeServer()
    try:
        judge_run(run, [server.spec("sloppy")], probes=False, bootstrap=200)
    finally:
        server.close()
        mp.undo()
    mean = RunFolder(run).judged().tasks["task114"].jury.mean
    with Store(tmp_path / "board.sqlite") as store:
        add_run(store, run, model_name=BASE_MODEL)
        add_run(store, pair["tuned"], model_name=TUNED_MODEL)
        assert store.judged(BASE)["run"]["unusable"] == {"sloppy": "no sanity probe was scored (probes 0/0)"}
        build_site(store, tmp_path / "site")
    site = tmp_path / "site"
    index = Page((site / "index.html").read_text())
    judged = next(t for t in index.tables if t["id"] == "table-judged")
    rows = {r[0].split("run ")[0]: r for r in judged["rows"]}
    assert rows[BASE_MODEL][1].startswith("unusable judge") and f"{mean:.2f}" not in rows[BASE_MODEL][1]
    assert "this judge is unusable: no sanity probe was scored" in rows[BASE_MODEL][-2]
    assert not rows[TUNED_MODEL][1].startswith("unusable")
    for page in (site / "models" / f"{slugify(BASE_MODEL)}.html", site / "runs" / f"{slugify(BASE)}.html"):
        text = page.read_text()
        assert "This judge is unusable" in text and f"{mean:.2f}" not in text
    # Per item: every judge's score (and whether it is usable) and its rationale, beside the prediction.
    from test_board_support import site_items

    _, items = site_items(site, TUNED)
    judged_items = [it for it in items if it[0] == "task114"]
    assert len(judged_items) == N_SUMM and all({j[0] for j in it[11]} == {"overlap", "recall"} for it in judged_items)
    assert all(j[2] == "ok" and 1 <= j[1] <= 5 and "key terms" in j[3]
               for it in judged_items for j in it[11] if j[0] == "recall")
    _, base_items = site_items(site, BASE)
    assert all(j[4] == 1 for it in base_items for j in it[11])  # flagged: from an unusable judge
    # The report of `medsbench judge` says it as well.
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "medsbench.cli", "judge", str(run), "--report"], capture_output=True,
                         text=True, timeout=300, env={**__import__("os").environ, "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    assert "judge sloppy: this judge is unusable (no sanity probe was scored (probes 0/0))" in res.stdout
    score_rows = [line for line in res.stdout.splitlines() if "│" in line and line.lstrip("│ ").startswith("task114")]
    assert score_rows and all("unusable (n=" in line for line in score_rows)  # no mean shown for it
    # In the browser: the judged sections and the judgements in the item browser pass axe and fit a phone.
    from board_browser import DESKTOP, PHONE, axe_violations, open_browser, serious, serve, sideways_overflow

    base, httpd = serve(site)
    with open_browser() as browser:
        for width in (DESKTOP, PHONE):
            page = browser.new_page(viewport={"width": width, "height": 900})
            for rel in (f"runs/{slugify(BASE)}.html", f"models/{slugify(TUNED_MODEL)}.html", "index.html"):
                page.goto(base + rel)
                if rel.startswith("runs/"):
                    page.select_option("#f-show", "16")
                    page.wait_for_selector("#item-list .judgement")
                    assert "(unusable judge: not a score)" in page.text_content("#item-list")
                assert serious(axe_violations(page)) == [], (rel, width)
                assert sideways_overflow(page) == [], (rel, width)
            page.close()
    httpd.shutdown()
    httpd.server_close()
