"""Judged scoring end to end against a real local OpenAI-compatible judge server (a separate process).

The run folder holds real MeQSum (task114, summarization) and Human Disease Ontology (task46,
concept explanation) items from ../shared/data/raw, with model-like outputs: the reference itself,
the first words of the input (an extractive guess), half of the reference, an unrelated refusal, a
failed item, plus a multiple-choice row that must not be judged. The judge server
(tests/judge_server.py) grades by content-word overlap with the reference in the prompt.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, raw_dir

from medsbench.prices import Price
from medsbench.records import PredictionRow, write_predictions
from medsbench.records.config import EvalConfig
from medsbench.records.folder import RunFolder
from medsbench.records.manifest import ManifestTask, RunManifest

KEY_ENV = "MEDSBENCH_JUDGE_TEST_KEY"
SERVER = Path(__file__).with_name("judge_server.py")


class JudgeServer:
    def __init__(self, delay: float = 0.0):
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--delay", str(delay)], stdout=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), line
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/v1"

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as fh:
            return json.loads(fh.read())

    def spec(self, model: str) -> str:
        return f"openai:{model},base_url={self.url},api_key_env={KEY_ENV},concurrency=4,max_attempts=2,backoff_base=0.01"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-judge-test-never-logged")
    s = JudgeServer()
    yield s
    s.close()


def _meqsum(tmp_path: Path, n: int) -> list[tuple[str, str, str]]:
    from medsbench.sources import convert
    from medsbench.tasks.format import read_task

    out = tmp_path / "tasks"
    paths = convert("meqsum", raw_dir("meqsum"), out)
    task = read_task(next(p for p in paths if p.name.endswith(".test.json")))
    return [(i.id, i.input, i.output[0]) for i in task.instances[:n]]


def _disease_ontology(n: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if n <= 0:
        return rows
    path = raw_dir("disease_ontology") / "doid_2024-01-31_terms.tsv"
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["definition"] and len(row["definition"].split()) >= 8:
                rows.append((row["id"], row["name"], row["definition"]))
            if len(rows) == n:
                break
    return rows


def build_run(tmp_path: Path, n_summ: int = 12, n_expl: int = 6) -> Path:
    """WORKSPACE/runs/r1 with predictions.jsonl and a minimal manifest.json."""
    run = tmp_path / "ws" / "runs" / "r1"
    rows: list[PredictionRow] = []
    items = _meqsum(tmp_path, n_summ)
    for k, (iid, question, ref) in enumerate(items):
        kind = k % 4
        if kind == 0:
            out = ref
        elif kind == 1:
            out = " ".join(question.split()[:20])
        elif kind == 2:
            words = ref.split()
            out = " ".join(words[: max(1, len(words) // 2)])
        else:
            out = "I am sorry, but I cannot provide medical advice. Please consult your doctor."
        rows.append(PredictionRow(task_id="task114", id=iid, category="summarization", language="en",
                                  input=question, output=out, reference=ref))
    rows.append(PredictionRow(task_id="task114", id="failed-1", category="summarization", language="en",
                              input=items[0][1], output=None, reference=items[0][2], error="failed after 6 attempts: HTTP 500"))
    terms = _disease_ontology(n_expl)
    for k, (iid, name, definition) in enumerate(terms):
        out = definition if k % 3 == 0 else (f"{name} is a disease." if k % 3 == 1 else terms[(k + 1) % len(terms)][2])
        rows.append(PredictionRow(task_id="task46", id=iid, category="explanation", language="en",
                                  input=name, output=out, reference=definition))
    rows.append(PredictionRow(task_id="task57", id="q1", category="mcqa", language="en", input="Which drug? A. x B. y",
                              output="A", reference="A"))
    run.mkdir(parents=True)
    write_predictions(run / "predictions.jsonl", rows)
    tasks = {}
    for r in rows:
        t = tasks.setdefault(r.task_id, ManifestTask(category=r.category or "mcqa", language="en", definition_sha256="0" * 64,
                                                     n_total=0, n=0, files={}))
        t.n += 1
        t.n_total += 1
    RunFolder(run).save_manifest(RunManifest(config=EvalConfig.from_flags(model="hf:/models/tuned"),
                                             backend={"backend": "hf"}, tasks=tasks, prompt_template_sha256="0" * 64))
    return run


def _cli(args: list[str], env_extra: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-m", "medsbench.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_jury_end_to_end_probes_agreement_and_resume(tmp_path, server):
    from medsbench.judge import judge_run

    run = build_run(tmp_path)
    specs = [server.spec("overlap"), server.spec("recall")]
    res = judge_run(run, specs, bootstrap=200)
    assert res == RunFolder(run).judged()  # one writer, one reader, same record
    assert set(res.tasks) == {"task114", "task46"}  # the multiple-choice row is not judged
    t = res.tasks["task114"]
    assert t.n == 12 and t.n_failed_predictions == 1 and t.rubric == "summarization@1"
    assert res.tasks["task46"].rubric == "explanation@1" and res.tasks["task46"].n == 6
    names = [j.name for j in res.judges]
    assert names == ["overlap", "recall"]

    lines = [json.loads(x) for x in (run / "judgements.jsonl").read_text().splitlines()]
    real = {(r["judge"], r["id"]): r for r in lines if r["task_id"] == "task114" and r["probe"] is None}
    assert len(real) == 24 and all(r["status"] == "ok" for r in real.values())
    # Reference copies score 5, refusals 1 (kind 0 and kind 3 of build_run), for both judges.
    ids = [r.id for r in __import__("medsbench.records", fromlist=["read_predictions"]).read_predictions(run / "predictions.jsonl")
           if r.task_id == "task114" and not r.error]
    for k, iid in enumerate(ids):
        for judge in names:
            if k % 4 == 0:
                assert real[(judge, iid)]["score"] == 5
            if k % 4 == 3:
                assert real[(judge, iid)]["score"] == 1
            assert real[(judge, iid)]["reply"].strip().endswith(f"SCORE: {real[(judge, iid)]['score']}")
    # Means agree with the per-item scores, CIs bracket them, no parse failures.
    for name in names:
        s = t.judges[name]
        scores = [real[(name, i)]["score"] for i in ids]
        assert s.n_scored == 12 and s.mean == pytest.approx(sum(scores) / 12, abs=1e-4)
        assert s.ci95[0] <= s.mean <= s.ci95[1] and s.parse_failures == 0 and s.parse_failure_rate == 0
    jury = [(real[("overlap", i)]["score"] + real[("recall", i)]["score"]) / 2 for i in ids]
    assert t.jury.mean == pytest.approx(sum(jury) / 12, abs=1e-4)
    assert res.categories["summarization"].means["jury"] == t.jury.mean and res.categories["explanation"].tasks == ["task46"]
    # Agreement: two differently calibrated judges agree strongly but not perfectly.
    assert t.agreement.n_items == 12 and t.agreement.cohen_kappa is not None and t.agreement.krippendorff_alpha is not None
    assert 0.5 < t.agreement.krippendorff_alpha <= 1 and 0 < t.agreement.within_one <= 1
    # Overlap judges track ROUGE-L.
    assert t.rouge_l_spearman["overlap"] > 0.5 and t.rouge_l_spearman["jury"] > 0.5
    # Sanity probes: the word-overlap judge puts the reference on top and empty/off-topic answers at the bottom.
    for name in (*names, "jury"):
        probes = res.probe_totals[name]
        assert probes["reference"].pass_rate == 1.0 and probes["empty"].pass_rate == 1.0
        assert probes["truncated"].pass_rate == 1.0 and probes["truncated"].n_scored >= 8
        assert probes["off_topic"].n_scored == 10 and probes["off_topic"].pass_rate >= 0.5
    # Off-topic probes expose the overlap judge where two Disease Ontology definitions share their
    # wording ("A ... carcinoma that is located_in ..."): the pass rate counts exactly those scored 1.
    for name in names:
        off = [r for r in lines if r["probe"] == "off_topic" and r["judge"] == name]
        assert res.probe_totals[name]["off_topic"].passed == sum(r["score"] == 1 for r in off)
    # Tokens come from the server's usage; a price turns them into a cost.
    info = res.judges[0]
    assert info.prompt_tokens > 1000 and info.output_tokens > 100 and info.requests == len(lines) // 2
    assert info.cached == 0 and info.cost_usd is None

    # Resume: a second run asks nothing (every judgement cached in WORKSPACE/cache.sqlite).
    assert res.cache == str(tmp_path / "ws" / "cache.sqlite")
    before = server.stats()["requests"]
    again = judge_run(run, specs, bootstrap=200, price=Price(input=2.5, output=10.0))
    assert server.stats()["requests"] == before
    assert again.judges[0].requests == 0 and again.judges[0].cached == info.requests
    assert again.tasks == res.tasks
    assert again.judges[0].cost_usd == pytest.approx((info.prompt_tokens * 2.5 + info.output_tokens * 10) / 1e6, abs=1e-6)
    # A new rubric version would be a new key: the judge identity and rubric are part of it.
    from medsbench.judge.reliability import JudgeItem
    from medsbench.judge.rubric import load_rubrics
    from medsbench.judge.run import judgement_key

    rubrics, template, _ = load_rubrics()
    item = JudgeItem("task114", "1", "summarization", "en", "q", "out", "ref")
    msgs = template.messages(rubrics["summarization"], input="q", reference="ref", answer="out")
    k1 = judgement_key({"model": "a"}, rubrics["summarization"], template, item, msgs, 1, 300)
    bumped = rubrics["summarization"].model_copy(update={"version": 2})
    assert k1 != judgement_key({"model": "b"}, rubrics["summarization"], template, item, msgs, 1, 300)
    assert k1 != judgement_key({"model": "a"}, bumped, template, item, msgs, 1, 300)


def test_parse_failures_are_missing_and_retried_once(tmp_path, server):
    from medsbench.judge import judge_run

    run = build_run(tmp_path, n_summ=12, n_expl=3)
    res = judge_run(run, [server.spec("sloppy")], probes=False, bootstrap=0)
    lines = [json.loads(x) for x in (run / "judgements.jsonl").read_text().splitlines()]
    failed = [r for r in lines if r["status"] == "parse_failure"]
    fixed = [r for r in lines if r["status"] == "ok" and r["retried"]]
    assert failed and fixed  # both server behaviours occur on these items
    assert all(r["score"] is None and r["retried"] for r in failed)  # missing, never a 1
    s = [res.tasks[t].judges["sloppy"] for t in res.tasks]
    assert sum(x.parse_failures for x in s) == len(failed)
    assert sum(x.retried for x in s) == len(failed) + len(fixed)
    t = res.tasks["task114"].judges["sloppy"]
    assert t.n_scored == 12 - t.parse_failures and t.parse_failure_rate == pytest.approx(t.parse_failures / 12, abs=1e-4)
    scored = [r["score"] for r in lines if r["task_id"] == "task114" and r["score"] is not None]
    assert t.mean == pytest.approx(sum(scored) / len(scored), abs=1e-4)
    # One first request per item plus one retry per unparseable first reply; nothing more.
    assert server.stats()["requests"] == len(lines) + len(failed) + len(fixed)
    assert res.tasks["task114"].agreement is None  # a single judge has no agreement


def test_cli_killed_midway_resumes_without_asking_again(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-judge-test-never-logged")
    slow = JudgeServer(delay=0.15)
    try:
        run = build_run(tmp_path)
        args = ["judge", str(run), "--judge", f"{slow.spec('overlap')};{slow.spec('recall')}", "--bootstrap", "50"]
        proc = _cli(args, start_new_session=True)
        deadline = time.monotonic() + 120
        while slow.stats()["requests"] < 30 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        asked_before_kill = slow.stats()["requests"]
        assert not (run / "judged.json").exists()
        done = _cli(args)
        out, err = done.communicate(timeout=300)
        assert done.returncode == 0, err
        total = slow.stats()["requests"]
        judged = RunFolder(run).judged()
        n_judgements = sum(1 for _ in (run / "judgements.jsonl").read_text().splitlines())
        # Replies committed before the kill were not asked again (at most one in-flight chunk was lost).
        sent_after = sum(j.requests for j in judged.judges)
        assert total - asked_before_kill == sent_after
        assert sent_after <= n_judgements - asked_before_kill + 4 * 4 * 2
        assert sum(j.cached for j in judged.judges) >= asked_before_kill - 4 * 4 * 2
        assert "Judged scores" in out and "sk-judge-test" not in out + err
        # A third run makes zero requests; --report asks no judge at all.
        third = _cli(args)
        third.communicate(timeout=300)
        assert third.returncode == 0 and slow.stats()["requests"] == total
        report = _cli(["judge", str(run), "--report"])
        rep_out, _ = report.communicate(timeout=120)
        assert report.returncode == 0 and "Reliability" in rep_out and slow.stats()["requests"] == total
    finally:
        slow.close()


def test_cli_errors_are_one_line(tmp_path, server):
    run = build_run(tmp_path, n_summ=4, n_expl=0)
    for args, needle in [
        (["judge", str(run)], "at least one --judge"),
        (["judge", str(tmp_path / "nope"), "--judge", "default"], "no predictions in the run folder"),
        (["judge", str(run), "--judge", "gpt4"], "unknown model spec"),
        (["judge", str(run), "--judge", server.spec("overlap"), "--price", "cheap"], "--price must be"),
        (["judge", str(run), "--report"], "judged.json"),
    ]:
        p = _cli(args)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 1, (args, err)
        assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_rubrics_are_versioned_data_and_parsing_is_strict():
    from medsbench.judge.rubric import load_rubrics, rubric_for

    rubrics, template, probes = load_rubrics()
    assert {"summarization", "explanation", "rationale", "ebms_justification", "nli_generation", "treatment", "generic"} <= set(rubrics)
    assert all(r.version >= 1 and sorted(r.scale) == [1, 2, 3, 4, 5] for r in rubrics.values())
    assert {c.name for c in rubrics["summarization"].criteria} == {
        "factual consistency", "omissions", "hallucinated content", "clinical safety"}
    assert rubric_for("task100", "fact_verification", rubrics).id == "ebms_justification"
    assert rubric_for("task42", "nli", rubrics).id == "nli_generation"
    assert rubric_for("task52", "rationale", rubrics).id == "rationale"
    assert rubric_for("task999", "dialogue", rubrics).id == "generic"
    assert template.parse("Good summary.\nSCORE: 4") == 4
    assert template.parse("Fine.\n**SCORE: 5**\n\n") == 5
    for bad in ["", "SCORE: 4 because", "Score: 6", "SCORE: 0", "SCORE: four", "SCORE: 4\nThanks!", "I give it 4/5"]:
        assert template.parse(bad) is None, bad
    msgs = template.messages(rubrics["summarization"], input="x" * 5000, reference="ref {braces}", answer="")
    user = msgs[1]["content"]
    assert "<reference>\nref {braces}\n</reference>" in user and "<answer>\n(empty answer)\n</answer>" in user
    assert "x" * 3000 + " [...]" in user and "x" * 3001 not in user
    assert probes.version >= 1 and probes.sample > 0


def test_agreement_and_spearman_units():
    import numpy as np

    from medsbench.judge.reliability import agreement, spearman

    same = agreement(np.array([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]], dtype=float), (1, 5))
    assert same["krippendorff_alpha"] == 1.0 and same["cohen_kappa"] == 1.0 and same["exact"] == 1.0
    off = agreement(np.array([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]], dtype=float), (1, 5))
    assert off["krippendorff_alpha"] < 0 and off["cohen_kappa"] < 0 and off["exact"] == 0.2
    missing = agreement(np.array([[1, np.nan, 3, 5], [1, 2, np.nan, 4], [2, 2, 3, np.nan]]), (1, 5))
    assert missing["n_items"] == 4 and missing["cohen_kappa"] is None and missing["krippendorff_alpha"] > 0.5
    assert agreement(np.array([[3, 3], [3, 3]], dtype=float), (1, 5))["krippendorff_alpha"] is None
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, None, 4], [4, 3, 2, 1]) == -1.0
    assert spearman([1, 1, 1], [1, 2, 3]) is None and spearman([1, 2], [1, 2]) is None


@pytest.mark.slow
def test_default_model_as_judge(tmp_path):
    """SmolLM2 as a judge on 1 item: its score may be poor, but it is parsed or counted as a failure.

    (Measured: SmolLM2-135M-Instruct restates the rubric instead of ending with a score line, so
    its replies are parse failures even after the format reminder; the path still runs end to end.)
    """
    from medsbench.judge import judge_run

    run = build_run(tmp_path, n_summ=1, n_expl=0)
    res = judge_run(run, ["default"], probes=False, bootstrap=0, max_tokens=48)
    t = res.tasks["task114"].judges["SmolLM2-135M-Instruct"]
    lines = [json.loads(x) for x in (run / "judgements.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and t.n == 1 and t.errors == 0
    assert t.n_scored + t.parse_failures == 1
    for r in lines:
        assert r["reply"] and (r["score"] in {1, 2, 3, 4, 5} if r["status"] == "ok" else r["score"] is None)
    assert res.judges[0].identity["backend"] == "hf" and res.judges[0].requests == 1 + sum(r["retried"] for r in lines)


def test_unreachable_judge_is_missing_not_zero_and_asked_again(tmp_path, server, monkeypatch):
    """Failed requests are errors (missing from the means, never cached); the next run asks again."""
    import socket

    from medsbench.judge import judge_run

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    run = build_run(tmp_path, n_summ=4, n_expl=0)
    spec = f"openai:overlap,base_url=http://127.0.0.1:{dead}/v1,api_key_env={KEY_ENV},max_attempts=1,timeout=2"
    res = judge_run(run, [spec], probes=False, bootstrap=0)
    t = res.tasks["task114"].judges["overlap"]
    assert t.n == 4 and t.n_scored == 0 and t.errors == 4 and t.mean is None and t.parse_failure_rate is None
    assert res.judges[0].errors == 4
    again = judge_run(run, [spec], probes=False, bootstrap=0)
    assert again.judges[0].requests == 4 and again.judges[0].cached == 0
