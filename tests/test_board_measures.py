"""The board shows clean scores (where a contamination report exists, and says so), category averages
and slices (macro and micro, named), and tokens and cost; the store migrates schema 4 in place."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from medsbench.board.publish import add_run
from medsbench.board.site import build_site
from medsbench.board.store import Store
from medsbench.contam import ContamOptions, check_run
from medsbench.errors import MedsbenchError
from medsbench.pipeline import evaluate, score_run
from medsbench.prices import Price
from medsbench.records.folder import RunFolder
from medsbench.tasks.format import Instance, write_task
from test_runs import CountingBackend

MCQA_META = {"Definition": ["Given a question and a list of options, select the correct answer from the options directly."],
             "Categories": ["Question Answering"]}


def _question(task: str, i: int) -> str:
    right = i % 2 == 1  # the fake model answers "A" (right) where the prompt holds "[A]"
    return f"Question {i} of {task} about a patient with condition number {i * 7 + 3}?{' [A]' if right else ''}\nA. yes\nB. no"


def priced_run(tmp_path: Path) -> Path:
    """A run over three MCQA tasks (English MedQA, Chinese MedQA, English MedMCQA), scored with a price."""
    ws = tmp_path / "ws"
    for tid, slug in (("task57", "medqa_en"), ("task58", "medqa_zh"), ("task122", "medmcqa")):
        write_task(ws / "tasks" / f"{tid}_{slug}.test.json", MCQA_META,
                   [Instance(f"{tid}-{i}", _question(tid, i), ["A"]) for i in range(10)])
    run = tmp_path / "run"
    evaluate(CountingBackend(), "task57,task58,task122", workspace=ws, out=run, progress=False)
    folder = RunFolder(run)
    folder.save_results(score_run(folder.predictions(), folder.manifest(), folder, prices=Price(input=3, output=15)))
    return run


def text_of(html: str, start: str, end: str) -> str:
    part = html[html.index(start):html.index(end, html.index(start))]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part))


def test_board_shows_clean_scores_slices_and_cost(tmp_path):
    run = priced_run(tmp_path)
    rows = RunFolder(run).predictions()
    planted = [r for r in rows if r.task_id == "task57" and "[A]" in (r.input or "")]  # 5 right answers
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": r.input}) + "\n" for r in planted))
    report = check_run(run, [corpus], ContamOptions(bootstrap=200))
    assert report.n_contaminated == 5 and report.tasks["task57"].clean.metrics["accuracy"] == 0.0
    with Store(tmp_path / "board.sqlite") as store:
        assert add_run(store, run) == "added"
        head = store.contamination("run")
        assert head["run"]["n_contaminated"] == 5 and head["run"]["corpora"][0]["kind"] == "jsonl"
        averages = {(r["slice_kind"], r["slice_key"], r["average"], r["mode"], r["metric"]): r for r in store.averages("run")}
        assert averages[("all", "", "macro", "strict", "accuracy")]["value"] == 50.0
        assert averages[("all", "", "micro", "strict", "accuracy")]["n"] == 30
        assert averages[("language", "zh", "micro", "strict", "accuracy")]["n"] == 10
        assert ("source", "MedMCQA", "macro", "reference", "accuracy") in averages
        usage = {r["task_id"]: r for r in store.usage("run")}
        prompt = sum(r.prompt_tokens for r in rows)
        assert usage[""]["prompt_tokens"] == prompt and usage[""]["output_tokens"] == 30
        assert usage[""]["cost_usd"] == pytest.approx((prompt * 3 + 30 * 15) / 1e6, abs=1e-6)
        assert json.loads(usage[""]["price"])["input"] == 3
        site = build_site(store, tmp_path / "site")
    index = (site.out / "index.html").read_text(encoding="utf-8")
    assert "clean score: 5 of 30 items contaminated, left out" in index
    page = (site.out / "runs" / f"{next(p.stem for p in (site.out / 'runs').glob('*.html'))}.html").read_text()
    contam = text_of(page, 'id="contamination"', "</section>")
    assert "5 of 30 items of this run overlap" in contam and "corpus.jsonl" in contam
    assert str(tmp_path) not in contam  # the corpus by its name: no local directory
    assert re.search(r"task57 .* 10 5 .* 0\.00 .* 100\.00 .* -100\.00", contam)
    avg = text_of(page, 'id="averages"', "</section>")
    assert "Macro" in avg and "Micro" in avg and "English (en)" in avg and "Chinese (zh)" in avg and "MedMCQA" in avg
    cost = text_of(page, 'id="usage"', "</section>")
    assert f"{prompt:,} prompt and 30 completion tokens" in cost and "per 1,000 items" in cost and "$0.00" in cost


def test_board_refuses_a_contamination_report_of_other_predictions(tmp_path):
    run = priced_run(tmp_path)
    corpus = tmp_path / "c.txt"
    corpus.write_text("nothing here\n")
    check_run(run, [corpus], ContamOptions(bootstrap=0))
    path = run / "contamination.json"
    data = json.loads(path.read_text())
    data["predictions_sha256"] = "0" * 64
    path.write_text(json.dumps(data))
    with Store(tmp_path / "b.sqlite") as store, pytest.raises(MedsbenchError, match="another predictions.jsonl"):
        add_run(store, run)
    data = json.loads(path.read_text())
    data["predictions_sha256"] = RunFolder(run).predictions_sha256()
    data["items"] = [{"task_id": "task57", "id": "not-an-item", "reasons": ["ngram"],
                      "first": {"corpus": 0, "file": "c.txt", "record": 1}}]
    path.write_text(json.dumps(data))
    with Store(tmp_path / "b.sqlite") as store, pytest.raises(MedsbenchError, match="does not have"):
        add_run(store, run)


def test_unknown_tokens_stay_unknown_on_the_board(tmp_path):
    run = priced_run(tmp_path)
    folder = RunFolder(run)
    rows = [r.model_copy(update={"prompt_tokens": None}) if r.task_id == "task58" else r for r in folder.predictions()]
    folder.write_predictions(rows)
    folder.save_results(score_run(folder.predictions(), folder.manifest(), folder, prices=Price(input=3, output=15)))
    with Store(tmp_path / "board.sqlite") as store:
        add_run(store, run)
        usage = {r["task_id"]: r for r in store.usage("run")}
        assert usage["task58"]["prompt_tokens"] is None and usage["task58"]["n_tokens_unknown"] == 10
        assert usage[""]["prompt_tokens"] is None and usage[""]["cost_usd"] is None
        assert usage["task57"]["cost_usd"] is not None
        site = build_site(store, tmp_path / "site")
    page = next((site.out / "runs").glob("*.html")).read_text()
    cost = text_of(page, 'id="usage"', "</section>")
    assert "unknown prompt and 30 completion tokens" in cost and "10 item(s) without one" in cost and "but the tokens are unknown: no cost" in cost
    assert "unknown" in cost.split("task58")[1][:60]


def test_a_schema_4_store_is_migrated_without_losing_its_runs(tmp_path):
    run = priced_run(tmp_path)
    path = tmp_path / "board.sqlite"
    with Store(path) as store:
        add_run(store, run)
        reported = [r.name for r in store.runs() if r.kind == "reported"]
        baselines = store.db.execute("SELECT COUNT(*) FROM task_info WHERE majority_baseline IS NOT NULL").fetchone()[0]
        assert baselines == 3
    db = sqlite3.connect(path)
    for table in ("contam_runs", "contam_tasks", "contam_categories", "average_scores", "usage"):
        db.execute(f"DROP TABLE {table}")
    db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.get_meta("schema_version") == "5"
        assert [r.name for r in store.runs() if r.kind == "reported"] == reported and reported
        assert store.db.execute("SELECT COUNT(*) FROM task_info WHERE majority_baseline IS NOT NULL").fetchone()[0] == baselines
        assert store.usage("run") == [] and store.run_state("run").store_version == 5
        store.db.execute("UPDATE runs SET store_version = 4 WHERE name = 'run'")
        assert add_run(store, run) == "updated" and store.usage("run")
