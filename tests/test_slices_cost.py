"""Category slices (per language, per source) with macro and micro averages, and tokens and cost.

Hand examples check the arithmetic exactly; a real multi-language MCQA sample (task files built from
../shared/data/raw, synthetic answers over the real rows) checks the slices and their CIs.
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import RAW, missing
from medsbench.errors import MedsbenchError
from medsbench.metrics import score_predictions
from medsbench.metrics.slices import usage_of
from medsbench.prices import Price, PriceTable, resolve_price
from medsbench.records import PredictionRow

OPTIONS = "\nOptions:\nA. alpha\nB. beta\nC. gamma\nD. delta"


def mcqa(task: str, i: int, correct: bool, **extra) -> dict:
    answer = "B: beta" if correct else "C: gamma"
    return {"task_id": task, "id": f"{task}-{i}", "input": f"Question {task} {i}?{OPTIONS}",
            "output": f"The right answer is {answer}.", "reference": "The right answer is B: beta.", **extra}


def hand_rows() -> list[dict]:
    """task57 (en, MedQA) 3/4, task58 (zh, MedQA) 0/2, task122 (en, MedMCQA) 2/2."""
    rows = [mcqa("task57", i, i < 3) for i in range(4)]
    rows += [mcqa("task58", i, False) for i in range(2)]
    rows += [mcqa("task122", i, True) for i in range(2)]
    return rows


def test_macro_and_micro_are_named_and_computed_on_a_hand_example():
    res = score_predictions(hand_rows(), bootstrap=200)
    assert [res.tasks[t].metrics["accuracy"] for t in ("task57", "task58", "task122")] == [75.0, 0.0, 100.0]
    c = res.categories["mcqa"]
    assert c.average == "macro" and c.n == 8
    assert c.metrics["accuracy"] == pytest.approx(175 / 3, abs=1e-4)  # the mean of the tasks (official)
    assert c.reference["accuracy"] == pytest.approx(175 / 3, abs=1e-4)
    assert c.micro is not None and c.micro.n == 8 and c.micro.n_tasks == 3
    assert c.micro.metrics["accuracy"] == 62.5 and c.micro.reference["accuracy"] == 62.5  # 5 of 8 pooled items
    lang, src = c.slices["language"], c.slices["source"]
    assert set(lang) == {"en", "zh"} and set(src) == {"MedQA", "MedMCQA"}
    assert lang["en"].tasks == ["task57", "task122"] and lang["en"].macro.metrics["accuracy"] == 87.5
    assert lang["en"].micro.metrics["accuracy"] == pytest.approx(500 / 6, abs=1e-4)
    assert lang["zh"].macro.metrics["accuracy"] == 0.0 and lang["zh"].micro.n == 2
    assert src["MedQA"].macro.metrics["accuracy"] == 37.5 and src["MedQA"].micro.metrics["accuracy"] == 50.0
    assert src["MedMCQA"].micro.metrics["accuracy"] == 100.0
    for avg in (c, c.micro, lang["en"].macro, lang["en"].micro, src["MedQA"].micro):
        lo, hi = avg.ci["accuracy"]
        assert lo <= avg.metrics["accuracy"] <= hi
    # the macro CI resamples within tasks: task122 (always right) and task58 (always wrong) never move
    lo, hi = c.ci["accuracy"]
    assert 100 / 3 - 1e-3 <= lo and hi <= 200 / 3 + 1e-3
    data = json.loads(res.model_dump_json())
    assert set(data["categories"]["mcqa"]) >= {"average", "metrics", "micro", "slices", "ci"}


def test_a_category_without_mixed_languages_or_sources_has_no_slices_and_mixed_kinds_no_micro():
    res = score_predictions([mcqa("task57", i, i % 2 == 0) for i in range(4)], bootstrap=0)
    c = res.categories["mcqa"]
    assert c.slices == {} and c.micro is not None and c.ci == {}
    ner = [{"task_id": "task126", "id": "n1", "input": "Aspirin and cisplatin.", "output": "aspirin",
            "reference": "aspirin, cisplatin"}]
    cls = [{"task_id": "task106", "id": "h1", "input": "Tumour cells proliferate.",
            "output": "sustaining proliferative signaling", "reference": "sustaining proliferative signaling"}]
    res = score_predictions(ner + cls, bootstrap=0)
    for cat in res.categories.values():  # one task each: micro is that task
        assert cat.micro is not None or cat.micro_note


def test_tokens_and_cost_are_aggregated_on_a_hand_example():
    rows = [PredictionRow(**mcqa("task57", i, True), prompt_tokens=100 * (i + 1), output_tokens=10 * (i + 1),
                          seconds=0.5) for i in range(4)]
    failed = PredictionRow(**{**mcqa("task57", 9, True), "output": None}, error="timeout", prompt_tokens=None)
    res = score_predictions([*rows, failed], bootstrap=0, price=Price(input=2.5, output=10))
    u = res.tasks["task57"].usage
    assert (u.n_items, u.prompt_tokens, u.output_tokens, u.n_tokens_unknown) == (4, 1000, 100, 0)  # failed row left out
    assert u.item_seconds == 2.0
    assert u.cost_usd == pytest.approx((1000 * 2.5 + 100 * 10) / 1e6)  # 0.0035
    assert u.cost_per_1k_items_usd == pytest.approx(0.0035 / 4 * 1000)
    assert res.usage == u and res.price.input == 2.5
    unpriced = score_predictions(rows, bootstrap=0)
    assert unpriced.usage.prompt_tokens == 1000 and unpriced.usage.cost_usd is None and unpriced.price is None


def test_unknown_tokens_stay_unknown_never_zero():
    known = [PredictionRow(**mcqa("task57", i, True), prompt_tokens=50, output_tokens=5) for i in range(2)]
    blind = PredictionRow(**mcqa("task57", 2, True))  # a backend that reports no tokens
    u = usage_of([*known, blind], Price(input=1, output=1))
    assert (u.prompt_tokens, u.output_tokens, u.cost_usd, u.n_tokens_unknown, u.item_seconds) == (None, None, None, 1, None)
    res = score_predictions([*known, blind, mcqa("task122", 0, True, prompt_tokens=7, output_tokens=1)], bootstrap=0,
                            price=Price(input=1, output=1))
    assert res.tasks["task122"].usage.prompt_tokens == 7 and res.tasks["task122"].usage.cost_usd == pytest.approx(8e-6)
    assert res.tasks["task57"].usage.prompt_tokens is None and res.usage.prompt_tokens is None  # the run: unknown too
    from medsbench.commands.render import usage_line

    line = usage_line(res.usage.model_dump(), res.price.model_dump())
    assert "unknown" in line and "$" not in line


def test_price_table_lookup_and_errors(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("openai:gpt-4o*: {input: 2.5, output: 10}\nopenai:gpt-4o-mini*: {input: 0.15, output: 0.6}\n"
                    "gpt-4o-mini: {input: 0.2, output: 0.8}\n'*': {input: 0, output: 0}\n", encoding="utf-8")
    table = PriceTable.load(path)
    assert table.lookup("openai:gpt-4o-mini,base_url=http://h/v1", "gpt-4o-mini").input == 0.2  # exact name wins
    assert table.lookup("openai:gpt-4o-mini,base_url=http://h/v1", "other").input == 0.15  # longest pattern
    assert table.lookup("openai:gpt-4o", "x").input == 2.5
    assert table.lookup("hf:/models/x", "x").input == 0  # the catch-all
    assert "prices.yaml: gpt-4o-mini" in (table.lookup("gpt-4o-mini").source or "")
    js = tmp_path / "p.json"
    js.write_text(json.dumps({"m": {"input": 1, "output": 2}}), encoding="utf-8")
    assert PriceTable.load(js).lookup("m").output == 2
    for text, message in (("m: {input: -1, output: 2}", "m: input"), ("m: {input: 1}", "m: output"),
                          ("m: [1, 2]", "m: expected"), ("- 1", "price table must be a mapping"),
                          ("m: {input: 1, output: 2, euros: 3}", "euros")):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(MedsbenchError, match=re.escape(message)):
            PriceTable.load(path)
    with pytest.raises(MedsbenchError, match="IN/OUT"):
        Price.parse("cheap")
    with pytest.raises(MedsbenchError, match="not both"):
        resolve_price("1/2", js)
    assert Price.parse("2.5/10").cost(None, 3) is None


MCQA_SOURCES = ("medqa_usmle", "medqa_mcmle_zh", "igakuqa", "frenchmedmcqa", "rumeddanet", "headqa", "medmcqa")


@pytest.fixture(scope="module")
def real_mcqa(tmp_path_factory):
    """Test rows of the real multi-language MCQA sets (the first 40 of each), answered synthetically:
    the gold answer on two items of three, an empty answer on the rest."""
    from medsbench.sources import convert
    from medsbench.tasks import find_task_files, iter_instances

    if not RAW.is_dir():
        missing(f"{RAW} not present")
    out = tmp_path_factory.mktemp("slices") / "tasks"
    for name in MCQA_SOURCES:
        if not (RAW / name).is_dir():
            missing(f"{RAW / name} not present")
        convert(name, RAW / name, out)
    rows = []
    for tid, splits in sorted(find_task_files(out).items()):
        for i, inst in enumerate(iter_instances(splits["test"])):
            if i == 40:
                break
            rows.append({"task_id": tid, "id": inst.id, "input": inst.input, "reference": inst.target,
                         "output": inst.target if i % 3 else "", "prompt_tokens": len(inst.input), "output_tokens": 9})
    return rows


def test_real_multilanguage_mcqa_slices_with_cis(real_mcqa):
    res = score_predictions(real_mcqa, bootstrap=300, price=Price(input=1, output=4))
    c = res.categories["mcqa"]
    lang = c.slices["language"]
    assert set(lang) == {"en", "zh", "ja", "fr", "ru", "es"}
    assert set(c.slices["source"]) >= {"MedQA", "IgakuQA", "FrenchMedMCQA", "RuMedDaNet", "HEAD-QA", "MedMCQA"}
    assert lang["en"].tasks == ["task57", "task122"] and c.slices["source"]["MedQA"].tasks == ["task57", "task58"]
    for sl in [*lang.values(), *c.slices["source"].values()]:
        macro = sl.macro
        expected = sum(res.tasks[t].metrics["accuracy"] for t in sl.tasks) / len(sl.tasks)
        assert macro.metrics["accuracy"] == pytest.approx(expected, abs=1e-3)
        assert macro.n == sum(res.tasks[t].n for t in sl.tasks)
        lo, hi = macro.ci["accuracy"]
        assert lo <= macro.metrics["accuracy"] <= hi and hi - lo > 0
        if sl.micro is not None:
            assert sl.micro.n == macro.n
            lo, hi = sl.micro.ci["accuracy"]
            assert lo <= sl.micro.metrics["accuracy"] <= hi
    assert c.n == sum(res.tasks[t].n for t in c.tasks) == len(real_mcqa)
    prompt = sum(r["prompt_tokens"] for r in real_mcqa)
    assert res.usage.prompt_tokens == prompt and res.usage.output_tokens == 9 * len(real_mcqa)
    assert res.usage.cost_usd == pytest.approx((prompt * 1 + 9 * len(real_mcqa) * 4) / 1e6, abs=1e-6)


def test_score_cli_prices_tokens_and_prints_the_cost(tmp_path):
    """`medsbench score FILE --price IN/OUT` and `--prices FILE`: the cost in results.json and on the console."""
    from typer.testing import CliRunner

    from medsbench.cli import app

    rows = [PredictionRow(**mcqa("task57", i, True), prompt_tokens=100 * (i + 1), output_tokens=10 * (i + 1))
            for i in range(4)]
    pred = tmp_path / "predictions.jsonl"
    pred.write_text("".join(r.model_dump_json() + "\n" for r in rows), encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(app, ["score", str(pred), "--price", "2.5/10", "--out", str(tmp_path / "a.json"),
                              "--bootstrap", "0"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    usage = json.loads((tmp_path / "a.json").read_text())["usage"]
    assert usage["cost_usd"] == pytest.approx(0.0035) and usage["prompt_tokens"] == 1000
    assert "1,000 prompt + 100 completion tokens" in res.output and "$0.0035" in res.output
    table = tmp_path / "prices.yaml"
    table.write_text("gpt-4o: {input: 5, output: 20}\n", encoding="utf-8")
    res = runner.invoke(app, ["score", str(pred), "--prices", str(table), "--out", str(tmp_path / "b.json"),
                              "--bootstrap", "0"], env={"COLUMNS": "200"})
    # A bare predictions file names no model: the table cannot price it, and says so instead of guessing.
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b.json").read_text())["usage"]["cost_usd"] is None
    assert f"warning: no price in {table} matches the run's model: not priced" in res.output
