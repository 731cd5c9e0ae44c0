"""`medsbench demo`: the paired base-vs-tuned comparison rows (CI, p-value, verdict) on real PubMedQA
items, and the whole demo end to end with the tiny fixture model and tiny settings (seconds, not minutes)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import raw_dir

from medsbench.errors import MedsbenchError
from medsbench.pipeline.demo import comparison_markdown, comparison_rows, verdict


@pytest.fixture(scope="module")
def pubmedqa_test(tmp_path_factory) -> list[dict]:
    from medsbench.sources import convert
    from medsbench.tasks.format import iter_instances

    out = tmp_path_factory.mktemp("pqa")
    written = convert("pubmedqa", raw_dir("pubmedqa"), out)
    test = next(p for p in written if ".test." in p.name)
    return [{"id": i.id, "input": i.input, "gold": i.output[0]} for i in list(iter_instances(test))[:150]]


def _write(path: Path, items: list[dict], answer) -> Path:
    with path.open("w") as fh:
        for k, it in enumerate(items):
            fh.write(json.dumps({"task_id": "task123", "id": it["id"], "category": "mcqa", "input": it["input"],
                                 "output": answer(k, it), "reference": it["gold"]}) + "\n")
    return path


def test_verdict_needs_ci_off_zero_and_small_p():
    assert verdict(12.0, [4.0, 20.0], 0.001) == "tuned better"
    assert verdict(-12.0, [-20.0, -4.0], 0.001) == "tuned worse"
    assert verdict(6.0, [-1.0, 13.0], 0.09) == "no difference found"
    assert verdict(0.0, [0.0, 0.0], 1.0) == "no difference found"
    # the two tests disagree at the margin: no claim
    assert verdict(5.0, [0.5, 9.5], 0.06) == "no difference found"


def test_comparison_rows_carry_ci_p_and_verdict(tmp_path, pubmedqa_test):
    from medsbench.metrics import compare_predictions

    items = pubmedqa_test
    always_no = _write(tmp_path / "base.jsonl", items, lambda k, it: "The right answer is no.")
    # right on 9 of every 10 items, the tenth answered "no"
    mostly_right = _write(tmp_path / "good.jsonl", items, lambda k, it: it["gold"] if k % 10 else "The right answer is no.")
    n_no = sum(it["gold"].endswith("no.") for it in items)
    n_good = sum(1 for k, it in enumerate(items) if k % 10 or it["gold"].endswith("no."))

    better = comparison_rows(compare_predictions(always_no, mostly_right, resamples=500))
    cat = next(r for r in better if r["level"] == "category")
    task = next(r for r in better if r["level"] == "task")
    assert cat["name"] == "mcqa" and task["name"] == "task123" and cat["n"] == task["n"] == len(items)
    assert task["metric"] == "accuracy"
    assert task["base"] == pytest.approx(100 * n_no / len(items), abs=0.01)
    assert task["tuned"] == pytest.approx(100 * n_good / len(items), abs=0.01)
    assert task["delta"] == pytest.approx(task["tuned"] - task["base"], abs=0.02) and task["delta"] > 40
    lo, hi = task["ci"]
    assert 0 < lo < task["delta"] < hi
    assert task["p_value"] < 0.01 and task["verdict"] == "tuned better" and cat["verdict"] == "tuned better"
    assert task["mde80"] > 0

    worse = comparison_rows(compare_predictions(mostly_right, always_no, resamples=500))
    assert {r["verdict"] for r in worse} == {"tuned worse"}
    assert worse[0]["delta"] == pytest.approx(-better[0]["delta"], abs=0.02)

    same = comparison_rows(compare_predictions(always_no, _write(tmp_path / "same.jsonl", items,
                                                                 lambda k, it: "The right answer is no.")))
    assert {r["verdict"] for r in same} == {"no difference found"}
    assert all(r["delta"] == 0 and r["ci"][0] <= 0 <= r["ci"][1] for r in same)

    md = comparison_markdown({"strict": better})
    assert "| category | mcqa |" in md and "tuned better" in md and "95% CI" in md


def test_demo_end_to_end_tiny(tmp_path, tiny_model_dir):
    """Every stage with tiny settings on real BC5CDR data, then a rerun that skips every stage,
    and a rerun with other settings that is refused."""
    from medsbench.board.store import Store
    from medsbench.pipeline.demo import DemoConfig, run_demo
    from medsbench.reporter import ListReporter

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "bc5cdr").symlink_to(raw_dir("bc5cdr"))
    work = tmp_path / "demo"
    said = ListReporter()
    config = DemoConfig(work=work, raw=raw, steps=2, items=6, tasks="task126", max_length=256, max_new_tokens=16,
                        base_model=f"hf:{tiny_model_dir}", resamples=200)
    out = run_demo(config, said)

    assert out["training"]["steps"] == 2
    assert set(out["rows"]) == {"strict", "reference"}
    rows = out["rows"]["strict"]
    assert [r["level"] for r in rows] == ["category", "task"] and rows[1]["name"] == "task126"
    for r in rows:
        assert r["n"] == 6 and r["metric"] == "f1" and len(r["ci"]) == 2 and 0 < r["p_value"] <= 1
        assert r["verdict"] in ("tuned better", "tuned worse", "no difference found")
    saved = json.loads((work / "demo_comparison.json").read_text())
    assert saved["rows"] == out["rows"] and saved["comparison"]["tasks"]["task126"]["n"] == 6
    assert "| task | task126 | 6 | f1 |" in (work / "demo_comparison.md").read_text()
    assert {"convert", "mixture", "tune", "eval_base", "eval_tuned"} <= set(saved["seconds"])
    stats = json.loads((work / "mixtures" / "demo" / "stats.json").read_text())
    assert set(stats["tasks"]) == {"task126"}  # only the evaluated task's train split
    with Store(work / "board.sqlite") as store:
        assert {r.name for r in store.runs() if r.kind == "measured"} == {"smollm2-base", "smollm2-demo-lora"}
        # the tuned model's page compares it with the base run: the same paired numbers as the demo's table
        assert store.baseline_of("smollm2-demo-lora") == "smollm2-base"
        stored = {(r["scope"], r["key"], r["mode"], r["metric"]): r for r in store.comparison("smollm2-demo-lora")["rows"]}
        mine = next(r for r in out["rows"]["strict"] if r["level"] == "task" and r["name"] == "task126")
        assert stored[("task", "task126", "strict", mine["metric"])]["delta"] == pytest.approx(mine["delta"], abs=0.01)

    said.lines.clear()
    again = run_demo(config, said)
    assert again["rows"] == out["rows"]
    assert "already in" in said.text() and "LoRA-tuned" not in said.text()

    with pytest.raises(MedsbenchError, match="steps=2"):
        run_demo(dataclasses.replace(config, steps=3))


def test_cli_defaults_are_the_demo_defaults():
    import inspect

    from medsbench.commands.tune import demo_cmd
    from medsbench.pipeline.demo import DEFAULT_ITEMS, DEFAULT_STEPS

    params = inspect.signature(demo_cmd).parameters
    assert params["steps"].default.default == DEFAULT_STEPS
    assert params["items"].default.default == DEFAULT_ITEMS
