"""Likelihood scoring (``--scoring loglik``) and calibration: options from the task's scorer, the hf
backend against plain transformers forward passes (tiny model and the real SmolLM2) on real MedQA,
PubMedQA and fact-verification items, the shared-cache path against the no-reuse path, calibration
numbers against hand-computed and synthetic cases, refusals, and a run end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import need_module, raw_dir
from medsbench.errors import MedsbenchError
from medsbench.metrics.calibration import (
    bin_index,
    brier_score,
    calibration_from_sums,
    calibration_stats,
    expected_calibration_error,
    option_probabilities,
    reliability_curve,
)
from medsbench.tasks.format import Instance, iter_instances, read_meta, write_task
from test_runs import CountingBackend, make_workspace

# --------------------------------------------------------------------------- real task files


@pytest.fixture(scope="module")
def real_tasks(tmp_path_factory) -> Path:
    """MedQA (task57), PubMedQA yes/no (task123) and PubMedQA fact verification (task12), converted
    from the raw releases in ../shared."""
    from medsbench.sources import convert

    tasks = tmp_path_factory.mktemp("loglik-real") / "tasks"
    convert("medqa_usmle", raw_dir("medqa_usmle"), tasks)
    convert("pubmedqa", raw_dir("pubmedqa"), tasks)
    convert("pubmedqa_verification", raw_dir("pubmedqa"), tasks)
    return tasks


def shortest_items(src: Path, dst: Path, n: int) -> Path:
    """A task file of the ``n`` real items of ``src`` with the shortest inputs (the tiny model's
    context is 512 tokens); the full file's golds stay the label source through the catalog."""
    items = sorted(iter_instances(src), key=lambda i: len(i.input))[:n]
    meta = read_meta(src)
    write_task(dst / src.name, {k: v for k, v in meta.items() if k != "Instances"}, items)
    return dst / src.name


def plain_loglik(model, tokenizer, context: str, continuation: str, add_special: bool) -> float:
    """log p(continuation | context) from one plain forward pass of the whole sequence (lm-eval's split:
    trailing white space of the context moves to the continuation)."""
    import torch

    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    enc = lambda s: tokenizer(s, add_special_tokens=add_special)["input_ids"]  # noqa: E731
    ctx, whole = enc(context), enc(context + continuation)
    cont = whole[len(ctx):]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ctx + cont])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


def check_rows_against_plain(run: Path, model_dir: Path) -> int:
    """Every loglik row's log-likelihoods and chosen option equal plain transformers forward passes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from medsbench.prompts import has_chat_template

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32").eval()
    add_special = not has_chat_template(tok)
    checked = 0
    for line in (run / "predictions.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["error"] is not None:
            continue
        scores = row["loglik"]
        context = row["prompt"] + scores["lead"]
        for name, v in scores["variants"].items():
            mine = [plain_loglik(model, tok, context, scores["delimiter"] + c, add_special) for c in v["continuations"]]
            assert np.allclose(mine, v["logprobs"], atol=2e-4, rtol=1e-5), (row["id"], name)
            assert int(np.argmax(mine)) == int(np.argmax(v["logprobs"])), (row["id"], name)
        best = int(np.argmax(scores["variants"][scores["primary"]]["logprobs"]))
        assert row["output"].endswith(scores["variants"]["text"]["continuations"][best])
        checked += 1
    return checked


def test_hf_loglik_on_real_items_equals_plain_forward_passes_tiny(tiny_model_dir, real_tasks, tmp_path):
    from medsbench.pipeline import evaluate

    ws = tmp_path / "ws"
    shortest_items(real_tasks / "task57_medqa_en.test.json", ws / "tasks", 6)  # the tiny model's context: 512
    res = evaluate(f"hf:{tiny_model_dir}", "task57", scoring="loglik", max_new_tokens=16, workspace=ws,
                   out=tmp_path / "run", progress=False)
    assert res.n_failed == 0, res.failures
    assert check_rows_against_plain(tmp_path / "run", tiny_model_dir) == 6
    rows = [json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert all(r["loglik"]["options"] == ["A", "B", "C", "D"] and r["loglik"]["lead"] == "The right answer is"
               and set(r["loglik"]["variants"]) == {"letter", "text"} for r in rows)


@pytest.mark.slow
def test_hf_loglik_equals_plain_forward_passes_smollm2(real_tasks, tmp_path):
    """The real SmolLM2-135M-Instruct on real MedQA, PubMedQA (yes/no/maybe) and fact-verification items."""
    need_module("gguf")
    from medsbench.models.default import default_model_dir
    from medsbench.pipeline import evaluate

    ws = tmp_path / "ws"
    (ws / "tasks").mkdir(parents=True)
    for name in ("task57_medqa_en.test.json", "task123_pubmedqa.test.json", "task12_pubmedqa_verification.test.json"):
        (ws / "tasks" / name).write_bytes((real_tasks / name).read_bytes())
    res = evaluate("default", "task57,task123,task12", scoring="loglik", limit=2, shots=0, workspace=ws,
                   out=tmp_path / "run", progress=False)
    assert res.n_failed == 0, res.failures
    assert check_rows_against_plain(tmp_path / "run", default_model_dir()) == 6
    rows = [json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert {tuple(r["loglik"]["options"]) for r in rows if r["task_id"] == "task123"} == {("yes", "no", "maybe")}
    assert {tuple(r["loglik"]["options"]) for r in rows if r["task_id"] == "task12"} == {("yes", "no")}


def test_shared_cache_path_equals_no_reuse_path(tiny_model_dir, real_tasks):
    from medsbench.metrics.choices import task_choices
    from medsbench.models.hf import HFBackend
    from medsbench.models.loglik import TransformersLoglik
    from medsbench.runs.loglik import loglik_request

    backend = HFBackend(str(tiny_model_dir))
    fn = task_choices("task57", "mcqa", real_tasks / "task57_medqa_en.test.json")
    items = sorted(iter_instances(real_tasks / "task57_medqa_en.test.json"), key=lambda i: len(i.input))[:5]
    requests = []
    for inst in items:
        choices = fn(inst.input)
        assert not isinstance(choices, str)
        text = backend.tokenizer.apply_chat_template([{"role": "user", "content": inst.input}], tokenize=False,
                                                     add_generation_prompt=True)
        requests.append(loglik_request(inst.id, text, choices))
    shared = list(backend.loglikelihood(requests))
    fresh = list(TransformersLoglik(backend.model, backend._encode, reuse_cache=False,
                                    cache_kwarg=backend._cache_kwarg)(requests))
    for a, b in zip(shared, fresh):
        assert a.error is None and b.error is None and a.tokens == b.tokens
        assert np.allclose(a.logprobs, b.logprobs, atol=1e-4, rtol=1e-5)
        assert int(np.argmax(a.logprobs)) == int(np.argmax(b.logprobs))
        assert len(a.logprobs) == 8 and a.tokens[:4] != a.tokens[4:]  # letters and full option texts


# --------------------------------------------------------------------------- calibration


def test_calibration_hand_computed_example():
    probs = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.25, 0.25, 0.5]]
    gold = [0, 1, 1, 0]
    # confidences .9 (right), .8 (wrong), .7 (right), .5 (wrong): four different bins of 15
    assert list(bin_index(np.array([0.9, 0.8, 0.7, 0.5]))) == [13, 11, 10, 7]
    assert expected_calibration_error(gold, probs) == pytest.approx((0.1 + 0.8 + 0.3 + 0.5) / 4)
    # one bin: |accuracy - mean confidence| = |0.5 - 0.725|
    assert expected_calibration_error(gold, probs, n_bins=1) == pytest.approx(0.225)
    assert brier_score(gold, probs) == pytest.approx((0.02 + 1.28 + 0.18 + 0.875) / 4)
    curve = reliability_curve(gold, probs)
    assert curve.counts[13] == 1 and curve.accuracy[11] == 0.0 and curve.confidence[10] == pytest.approx(0.7)
    assert sum(curve.counts) == 4 and curve.accuracy[0] is None
    # bins are (i/B, (i+1)/B]: an edge belongs to the bin below it
    assert list(bin_index(np.array([0.0, 2 / 15, 2 / 15 + 1e-9, 1.0]))) == [0, 1, 2, 14]
    # softmax of log-likelihoods
    p = option_probabilities([[math.log(0.2), math.log(0.6), math.log(0.2)]])[0]
    assert np.allclose(p, [0.2, 0.6, 0.2])


def test_perfectly_calibrated_and_maximally_overconfident_cases():
    calibrated = [[0.8, 0.2]] * 100
    gold = [0] * 80 + [1] * 20  # 80% right at 80% confidence
    assert expected_calibration_error(gold, calibrated) == pytest.approx(0.0, abs=1e-12)
    assert brier_score(gold, calibrated) == pytest.approx(0.8 * 0.08 + 0.2 * 1.28)
    overconfident = [[1.0, 0.0, 0.0, 0.0]] * 10
    assert expected_calibration_error([1] * 10, overconfident) == pytest.approx(1.0)  # always sure, always wrong
    assert brier_score([1] * 10, overconfident) == pytest.approx(2.0)  # the worst multi-class Brier
    half = expected_calibration_error([0] * 5 + [2] * 5, overconfident)
    assert half == pytest.approx(0.5)
    # the bootstrap form: metrics from column sums equal the direct functions, for resampled shapes too
    stats = calibration_stats(gold, calibrated)
    direct = calibration_from_sums(stats.sum(axis=0))
    assert float(direct["ece"]) == pytest.approx(0.0, abs=1e-9) and float(direct["accuracy"]) == pytest.approx(80.0)
    stacked = calibration_from_sums(np.stack([stats.sum(axis=0), stats[:50].sum(axis=0)]))
    assert stacked["brier"].shape == (2,)


def test_calibration_refuses_malformed_input():
    with pytest.raises(ValueError, match="sum to 1"):
        brier_score([0], [[0.5, 0.4]])
    with pytest.raises(ValueError, match="outside"):
        expected_calibration_error([2], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="gold indices"):
        brier_score([0, 1], [[1.0, 0.0]])


# --------------------------------------------------------------------------- options and refusals


def test_options_come_from_the_scorer_and_read_back(real_tasks):
    from medsbench.metrics.choices import answer_lead, task_choices
    from medsbench.metrics.registry import get_scorer

    fn = task_choices("task57", "mcqa", real_tasks / "task57_medqa_en.test.json")
    inst = next(iter(iter_instances(real_tasks / "task57_medqa_en.test.json")))
    c = fn(inst.input)
    assert not isinstance(c, str)
    assert c.lead == "The right answer is" and c.delimiter == " " and c.primary == "letter"
    assert c.variants["letter"] == ("A", "B", "C", "D") and c.variants["text"][0].startswith("A: ")
    assert fn("Question: no options here") == "no lettered options (A. ..., B. ...) in the item's input"
    yes_no = task_choices("task123", "mcqa", real_tasks / "task123_pubmedqa.test.json")("x")
    assert not isinstance(yes_no, str) and yes_no.options == ("yes", "no", "maybe")
    assert yes_no.answers == ("The right answer is yes", "The right answer is no", "The right answer is maybe")
    fact = task_choices("task12", "fact_verification", real_tasks / "task12_pubmedqa_verification.test.json")(None)
    assert not isinstance(fact, str) and fact.lead == "" and fact.variants == {"text": ("yes", "no")}
    mcqa = get_scorer("mcqa")
    assert answer_lead(["The right answer is B: x.", "The right answer is C: y."], mcqa) == "The right answer is"
    assert answer_lead(["adverse drug event", "adverse drug event"], get_scorer("fact")) == ""


def test_loglik_refuses_free_text_tasks_and_backends_without_it(tmp_path):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    with pytest.raises(MedsbenchError) as err:
        evaluate(CountingBackend(), "task126", scoring="loglik", workspace=ws, out=tmp_path / "r1", progress=False)
    assert "task126" in str(err.value) and "--scoring generate" in str(err.value) and "\n" not in str(err.value)
    meta = {"Definition": ["Summarize the question."], "Categories": ["Summarization"]}
    write_task(ws / "tasks" / "task114_meqsum.test.json", meta, [Instance("s1", "What is metformin?", ["metformin"])])
    with pytest.raises(MedsbenchError, match=r"task114 \(summarization\) is free text") as err:
        evaluate(CountingBackend(), "task114", scoring="loglik", workspace=ws, out=tmp_path / "r2", progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(MedsbenchError, match="the fake backend cannot score log-likelihoods") as err:
        evaluate(CountingBackend(), "task57", scoring="loglik", workspace=ws, out=tmp_path / "r3", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "r3" / "predictions.jsonl").exists()


def test_cli_refuses_loglik_for_a_free_text_task_in_one_line(tmp_path):
    import subprocess
    import sys

    ws = make_workspace(tmp_path / "ws")
    proc = subprocess.run([sys.executable, "-m", "medsbench.cli", "eval", "--model", "default", "--tasks", "task126",
                           "--scoring", "loglik", "-w", str(ws), "--no-progress"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: --scoring loglik: task126 (ner"), proc.stderr


# --------------------------------------------------------------------------- a run


class FakeLoglik(CountingBackend):
    """A deterministic loglik backend: an option's log-likelihood falls with its continuation's length."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.scored = 0

    def loglikelihood(self, requests):
        from medsbench.models.base import LoglikResponse

        for r in requests:
            self.scored += 1
            yield LoglikResponse(r.id, [-1.0 - 0.1 * len(c) for c in r.continuations], [1] * len(r.continuations))


def test_loglik_run_records_scores_uses_its_own_cache_keys_and_scores_calibration(tmp_path):
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder

    ws = make_workspace(tmp_path / "ws")
    gen = evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "gen", progress=False)
    backend = FakeLoglik()
    res = evaluate(backend, "task57", scoring="loglik", workspace=ws, out=tmp_path / "ll", progress=False)
    assert gen.n_generated == 8 and res.n_generated == 8 and backend.scored == 8  # no generation taken for a score
    again = FakeLoglik()
    evaluate(again, "task57", scoring="loglik", workspace=ws, out=tmp_path / "ll2", progress=False)
    assert again.scored == 0  # a second loglik run of the same prompts is answered from the cache
    folder = RunFolder(tmp_path / "ll")
    manifest = folder.manifest()
    assert manifest.config.scoring == "loglik" and manifest.generation["scoring"] == "loglik"
    assert RunFolder(tmp_path / "gen").manifest().config.scoring == "generate"
    rows = folder.predictions()
    assert all(r.loglik is not None and r.output == "A: yes" for r in rows)  # a tie: the first option, like argmax
    results = folder.results()
    assert results.scoring == "loglik" and "15 equal-width bins" in (results.calibration_binning or "")
    block = results.tasks["task57"].loglik
    assert block is not None and set(block.variants) == {"letter", "text"} and block.primary == "letter"
    letter = block.variants["letter"]
    assert letter.n == 8 and letter.metrics["accuracy"] == results.tasks["task57"].metrics["accuracy"] == 100.0
    assert letter.metrics["confidence"] == pytest.approx(50.0)  # equal letters' log-likelihoods: 1/2 each
    assert letter.metrics["ece"] == pytest.approx(50.0) and letter.metrics["brier"] == pytest.approx(0.5)
    assert "ece" in letter.ci and results.categories["mcqa"].loglik["primary"]["ece"] == pytest.approx(50.0)
    gen_results = RunFolder(tmp_path / "gen").results()
    assert gen_results.scoring == "generate" and gen_results.tasks["task57"].loglik is None
    assert "loglik" not in (tmp_path / "gen" / "predictions.jsonl").read_text()  # generative rows keep their shape


def test_eval_cli_then_board_keeps_loglik_rows_apart(tiny_model_dir, real_tasks, tmp_path):
    """`medsbench eval --scoring loglik` end to end, then `board add` + `board build`: the loglik run is
    protocol medsbench+loglik, outside the generative ranking, with ECE/Brier and reliability diagrams."""
    import re
    import subprocess
    import sys

    from medsbench.board.store import Store

    ws = tmp_path / "ws"
    shortest_items(real_tasks / "task57_medqa_en.test.json", ws / "tasks", 6)
    base = [sys.executable, "-m", "medsbench.cli"]
    runs = {}
    for name, model, extra in (("ll", f"hf:{tiny_model_dir}", ["--scoring", "loglik"]),
                               ("gen", "hf:" + str(tiny_model_dir), [])):
        proc = subprocess.run([*base, "eval", "--model", model, "--tasks", "task57", "--max-new-tokens", "8",
                               "-w", str(ws), "--out", str(ws / "runs" / name), "--no-progress", *extra],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = ws / "runs" / name
    manifest = json.loads((runs["ll"] / "manifest.json").read_text())
    results = json.loads((runs["ll"] / "results.json").read_text())
    assert manifest["config"]["scoring"] == "loglik" and results["scoring"] == "loglik"
    assert "scoring" not in json.loads((runs["gen"] / "manifest.json").read_text())["config"] or \
        json.loads((runs["gen"] / "manifest.json").read_text())["config"]["scoring"] == "generate"
    letter = results["tasks"]["task57"]["loglik"]["variants"]["letter"]
    assert set(letter["metrics"]) >= {"accuracy", "acc_norm", "ece", "brier"} and "ece" in letter["ci"]
    assert sum(letter["reliability"]["counts"]) == 6
    for name in ("ll", "gen"):
        proc = subprocess.run([*base, "board", "add", str(runs[name]), "--model-name", f"tiny-{name}", "-w", str(ws)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    proc = subprocess.run([*base, "board", "build", "-w", str(ws)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Store(ws / "board.sqlite") as store:
        protocols = {r.name: r.protocol for r in store.runs()}
        assert protocols["ll"] == "medsbench+loglik" and protocols["gen"] == "medsbench"
        assert {c["variant"] for c in store.calibration("ll")} == {"letter", "text"} and store.calibration("gen") == []
    site = ws / "site"
    index = (site / "index.html").read_text()
    ranking = index[index.index('id="table-reference"'):index.index("</table>", index.index('id="table-reference"'))]
    assert "tiny-gen" in ranking and "tiny-ll" not in ranking  # never in a column with generated answers
    loglik = index[index.index('id="table-loglik"'):]
    assert "tiny-ll" in loglik[: loglik.index("</table>")] and "medsbench+loglik" in loglik
    task = (site / "tasks" / "task57.html").read_text()
    main = task[task.index('id="task-table"'):task.index("</table>", task.index('id="task-table"'))]
    assert "tiny-gen" in main and "tiny-ll" not in main
    assert 'id="task-loglik"' in task and task.count('class="reliability"') == 2
    run_page = next(p for p in (site / "runs").glob("ll-*.html"))
    page = run_page.read_text()
    assert "Likelihood scoring and calibration" in page and re.search(r"ECE \d+\.\d", page)


def test_reliability_diagram_escapes_its_text():
    from medsbench.board.charts import reliability_diagram

    svg = reliability_diagram('<script>alert("x")</script>', {"confidence": [0.5, 0.9], "accuracy": [0.4, 1.0],
                                                              "counts": [3, 7]}, ece=12.5)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "ECE 12.5" in svg and svg.count("<circle") == 2


def test_a_schema_4_store_gains_the_calibration_table_and_keeps_its_runs(tmp_path):
    import sqlite3

    from medsbench.board.store import Store

    path = tmp_path / "board.sqlite"
    with Store(path) as store:
        before = sorted(r.name for r in store.runs())
    assert before  # the seeded published rows
    con = sqlite3.connect(path)
    con.execute("DROP TABLE calibration")
    con.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with Store(path) as store:
        assert store.get_meta("schema_version") == "5"
        assert sorted(r.name for r in store.runs()) == before  # 4 -> 5 only adds the table
        assert store.calibration(before[0]) == []


def test_acc_norm_and_acc_bytes_follow_their_own_argmax_on_a_hand_example():
    """Three argmaxes that disagree by construction: raw log-likelihood, per character (acc_norm) and per
    UTF-8 byte (acc_bytes), as lm-evaluation-harness 0.4 computes them on the choice strings."""
    from medsbench.metrics.loglik import METRICS, metrics_from_sums, variant_stats
    from medsbench.records import PredictionRow
    from medsbench.records.loglik import OptionScores, VariantScores

    def row(continuations, logprobs):
        scores = OptionScores(options=["A", "B"], primary="text",
                              variants={"text": VariantScores(continuations=continuations, logprobs=logprobs)})
        return PredictionRow(task_id="task57", id="x", reference="A", output="A", loglik=scores)

    rows = [row(["ab", "abcdef"], [-2.0, -3.0]),  # raw: A (wrong); per char -1.0 vs -0.5: B (right); bytes the same
            row(["éé", "abc"], [-2.0, -2.7])]     # raw: A (right); per char -1.0 vs -0.9: B (wrong); per byte -0.5 vs -0.9: A
    golds = [1, 0]
    values = metrics_from_sums(variant_stats(rows, golds, "text").sum(axis=0))
    assert set(METRICS) <= set(values)
    assert (float(values["accuracy"]), float(values["acc_norm"]), float(values["acc_bytes"])) == (50.0, 50.0, 100.0)
