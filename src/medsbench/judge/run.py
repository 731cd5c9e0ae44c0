"""``judge_run``: grade a run's free-text predictions with one judge model or a jury.

For each prediction of a task whose scorer scores free text (summarization, explanation,
rationale, task100, task42, ...), each judge is asked, with the task's rubric, for a short
justification and a final ``SCORE: n`` line. A reply that does not parse is retried once with a
format reminder, then counted as a parse failure (missing, never a score). Failed predictions
(``error`` set) are not judged.

Every judge reply is stored in the run's SQLite result cache (:class:`medsbench.runs.cache.ResultCache`)
under a key of (judge identity, rubric id@version, template id@version, task id, item id, output,
reference, attempt, max tokens), committed as each backend chunk returns: a killed judge run
resumes without asking again. Results go to ``RUN/judged.json`` (:class:`JudgedResults`) and the
replies to ``RUN/judgements.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsbench.errors import MedsbenchError
from medsbench.ids import slug
from medsbench.judge.reliability import (
    PROBE_KINDS,
    JudgeItem,
    agreement,
    build_probes,
    probe_passes,
    spearman,
)
from medsbench.judge.rubric import PromptTemplate, Rubric, load_rubrics, rubric_for
from medsbench.models.base import Backend, Request, Response
from medsbench.prices import Price
from medsbench.records.folder import RunFolder
from medsbench.records.predictions import PredictionRow
from medsbench.records.judged import (
    JudgementRow,
    Agreement,
    CategoryJudged,
    JudgedResults,
    JudgeInfo,
    ProbeSummary,
    ScoreSummary,
    TaskJudged,
)
from medsbench.records.manifest import now
from medsbench.runs.cache import ResultCache, cache_key
from medsbench.runs.progress import HEARTBEAT_SECONDS, Heartbeat, RunProgress
from medsbench.workspace import Workspace
from medsbench.metrics import bootstrap_ci
from medsbench.metrics import scorer_for_task
from medsbench.tasks.catalog import catalog
from medsbench.metrics.score import TextScorer
from medsbench.models import check_spec, load_backend

log = logging.getLogger(__name__)

PROGRESS_SECONDS = HEARTBEAT_SECONDS / 3  # the longest silence of a judge run (10 s)
JURY = "jury"
NOTES = [
    (
        "Judged scores are model-graded (1-5 rubric scale) and form their own scoring mode; they are not comparable "
        "with, and never mixed into, the reference or strict metrics of results.json."
    ),
    (
        "A judgement whose reply did not end with a parseable score line (after one retry), or whose request failed, "
        "is missing from the means."
    ),
    "The jury score of an item is the mean of the scores of the judges that scored it.",
]


@dataclass
class Verdict:
    score: int | None
    status: str  # ok | parse_failure | error
    reply: str = ""
    retried: bool = False
    error: str | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None


@dataclass
class _Judge:
    name: str
    spec: str
    backend: Backend
    identity: dict[str, Any]
    requests: int = 0
    cached: int = 0
    errors: int = 0
    new_prompt_tokens: int | None = None
    new_output_tokens: int | None = None
    verdicts: list[Verdict] = field(default_factory=list)


def _add(total: int | None, value: int | None) -> int | None:
    if value is None:
        return total
    return (total or 0) + value


def resolve_cache(run_dir: Path, manifest: Any | None) -> Path:
    """The run's result cache: the manifest's, else WORKSPACE/cache.sqlite, else RUN/cache.sqlite."""
    if manifest is not None and getattr(manifest, "cache", None):
        return Path(manifest.cache)
    if manifest is not None and getattr(manifest, "workspace", None):
        return Workspace(Path(manifest.workspace)).cache
    if run_dir.parent == Workspace(run_dir.parent.parent).runs:  # WORKSPACE/runs/<run>: the cache `medsbench eval` used
        return Workspace(run_dir.parent.parent).cache
    return Workspace(run_dir).cache


def judgement_key(
    identity: dict[str, Any], rubric: Rubric, template: PromptTemplate, item: JudgeItem,
    messages: list[dict[str, str]], attempt: int, max_tokens: int,
) -> str:
    """Cache key of one judge request: judge identity, rubric and template versions, the item, the prompt."""
    text = json.dumps(
        {"task_id": item.task_id, "id": item.id, "output": item.output, "reference": item.reference, "messages": messages},
        sort_keys=True, ensure_ascii=False,
    )
    who = {"judge": identity, "rubric": rubric.ref, "template": template.ref}
    return cache_key(who, text, {"max_new_tokens": max_tokens, "greedy": True, "attempt": attempt})


def _ask(judge: _Judge, store: ResultCache, asks: dict[str, list[dict[str, str]]], max_tokens: int,
         progress: Callable[[str], None]) -> dict[str, tuple[Response, bool]]:
    """Key -> (response, fresh): cache hits first, then the backend; each reply committed as it returns."""
    keys = list(asks)
    found = store.get_many(keys)
    out: dict[str, tuple[Response, bool]] = {k: (r, False) for k, r in found.items()}
    missing = [k for k in keys if k not in found]
    judge.cached += len(found)
    if not missing:
        return out
    progress(f"{judge.name}: {len(missing)} request(s) to send, {len(found)} cached")
    requests = [Request(id=k, messages=asks[k], max_new_tokens=max_tokens) for k in missing]
    lines = [0]  # progress lines emitted so far

    def emit(line: str) -> None:
        lines[0] += 1
        progress(line)

    # eval's progress: a line with the rate and ETA at least every PROGRESS_SECONDS (a heartbeat thread
    # speaks while a slow request is out), and always after the first and the last request.
    tracker = RunProgress(len(missing), len(missing), interval=PROGRESS_SECONDS, emit=emit,
                          label=f"judge {judge.name}", unit="requests")
    tracker.generating()
    with Heartbeat(tracker):
        for done, resp in enumerate(judge.backend.iter_generate(requests), start=1):
            store.put_many([(resp.id, resp)])  # durable at once; errors are not cached, so retried next run
            judge.requests += 1
            if resp.error is not None:
                judge.errors += 1
            judge.new_prompt_tokens = _add(judge.new_prompt_tokens, resp.prompt_tokens)
            judge.new_output_tokens = _add(judge.new_output_tokens, resp.output_tokens)
            out[resp.id] = (resp, True)
            before = lines[0]
            tracker.advance(generated=True, failed=resp.error is not None)
            if done in (1, len(missing)) and lines[0] == before:
                tracker.say(tracker.line())
    return out


def judge_items(judge: _Judge, items: Sequence[JudgeItem], rubrics: Sequence[Rubric], template: PromptTemplate,
                store: ResultCache, max_tokens: int, progress: Callable[[str], None]) -> list[Verdict]:
    """One verdict per item from one judge: first attempt, then one format-reminder retry where unparseable."""
    first = [template.messages(r, input=it.input, reference=it.reference, answer=it.output) for it, r in zip(items, rubrics)]
    keys = [judgement_key(judge.identity, r, template, it, m, 1, max_tokens) for it, r, m in zip(items, rubrics, first)]
    got = _ask(judge, store, dict(zip(keys, first)), max_tokens, progress)
    verdicts: list[Verdict] = []
    retry: dict[int, tuple[str, list[dict[str, str]]]] = {}
    for i, key in enumerate(keys):
        resp, _ = got[key]
        v = Verdict(None, "error", resp.text, error=resp.error, prompt_tokens=resp.prompt_tokens, output_tokens=resp.output_tokens)
        if resp.error is None:
            v.score = template.parse(resp.text)
            v.status = "ok" if v.score is not None else "parse_failure"
            if v.score is None:
                msgs = template.retry_messages(first[i], resp.text)
                retry[i] = (judgement_key(judge.identity, rubrics[i], template, items[i], msgs, 2, max_tokens), msgs)
        verdicts.append(v)
    if retry:
        again = _ask(judge, store, {k: m for k, m in retry.values()}, max_tokens, progress)
        for i, (key, _) in retry.items():
            resp, _ = again[key]
            v = verdicts[i]
            v.retried = True
            v.prompt_tokens = _add(v.prompt_tokens, resp.prompt_tokens)
            v.output_tokens = _add(v.output_tokens, resp.output_tokens)
            if resp.error is not None:
                v.status, v.error = "error", resp.error  # the retry could not be asked: missing, asked again next run
                continue
            v.reply = f"{v.reply}\n--- retry ---\n{resp.text}"
            v.score = template.parse(resp.text)
            v.status = "ok" if v.score is not None else "parse_failure"
    return verdicts


def _summary(verdicts: Sequence[Verdict], scores: Sequence[float | None], seed: str, bootstrap: int) -> ScoreSummary:

    n = len(scores)
    vals = [s for s in scores if s is not None]
    errors = sum(v.status == "error" for v in verdicts)
    failures = sum(v.status == "parse_failure" for v in verdicts)
    answered = len(verdicts) - errors
    ci = None
    if vals and bootstrap > 0:
        k = len(vals)
        ci = bootstrap_ci(np.array(vals, dtype=float)[:, None], lambda s: {"mean": s[:, 0] / k}, resamples=bootstrap, seed=seed).get("mean")
    dist: dict[str, int] = {}
    for s in vals:
        key = f"{s:g}"
        dist[key] = dist.get(key, 0) + 1
    return ScoreSummary(
        n=n, n_scored=len(vals),
        mean=round(float(np.mean(vals)), 4) if vals else None,
        ci95=[round(c, 4) for c in ci] if ci else None,
        parse_failures=failures,
        parse_failure_rate=round(failures / answered, 4) if answered else None,
        errors=errors,
        retried=sum(v.retried for v in verdicts),
        distribution=dict(sorted(dist.items())),
    )


def _jury_scores(per_judge: Sequence[Sequence[int | None]]) -> list[float | None]:
    out: list[float | None] = []
    for col in zip(*per_judge):
        got = [s for s in col if s is not None]
        out.append(float(np.mean(got)) if got else None)
    return out


def _probe_table(probes: Sequence[JudgeItem], scores: Sequence[float | None], settings: Any) -> dict[str, ProbeSummary]:
    ref_score: dict[int | None, float | None] = {p.source: s for p, s in zip(probes, scores) if p.probe == "reference"}
    table: dict[str, ProbeSummary] = {}
    for kind in PROBE_KINDS:
        rows = [(p, s) for p, s in zip(probes, scores) if p.probe == kind]
        if not rows:
            continue
        checks = [probe_passes(kind, s, ref_score.get(p.source), settings) for p, s in rows]
        decided = [c for c in checks if c is not None]
        vals = [s for _, s in rows if s is not None]
        table[kind] = ProbeSummary(
            n=len(rows), n_scored=len(decided), passed=sum(decided),
            pass_rate=round(sum(decided) / len(decided), 4) if decided else None,
            mean_score=round(float(np.mean(vals)), 4) if vals else None,
        )
    return table


def _merge_probe_tables(tables: Sequence[dict[str, ProbeSummary]]) -> dict[str, ProbeSummary]:
    out: dict[str, ProbeSummary] = {}
    for kind in PROBE_KINDS:
        rows = [t[kind] for t in tables if kind in t]
        if not rows:
            continue
        n_scored = sum(r.n_scored for r in rows)
        passed = sum(r.passed for r in rows)
        out[kind] = ProbeSummary(
            n=sum(r.n for r in rows), n_scored=n_scored, passed=passed,
            pass_rate=round(passed / n_scored, 4) if n_scored else None,
        )
    return out


def select_items(rows: list[PredictionRow], tasks: str | None = None, limit: int | None = None) -> tuple[dict[str, list[JudgeItem]], dict[str, int]]:
    """Free-text items per task (their scorer's ``is_text``) and the failed-prediction count per task."""

    cat = catalog()
    wanted = {e.id for e in cat.select(tasks)} if tasks else None
    items: dict[str, list[JudgeItem]] = {}
    failed: dict[str, int] = {}
    skipped_ref = 0
    for row in rows:
        entry = cat.get(row.task_id)
        category = entry.category if entry else row.category
        scorer = scorer_for_task(entry or row.task_id, category)
        if scorer is None or not scorer.is_text or (wanted is not None and row.task_id not in wanted):
            continue
        if row.failed:
            failed[row.task_id] = failed.get(row.task_id, 0) + 1
            items.setdefault(row.task_id, [])
            continue
        if not (row.reference or "").strip():
            skipped_ref += 1
            continue
        bucket = items.setdefault(row.task_id, [])
        if limit is not None and len(bucket) >= limit:
            continue
        bucket.append(JudgeItem(
            row.task_id, row.id, category, row.language or (entry.language if entry else None),
            row.input, row.output or "", row.reference or "",
        ))
    if skipped_ref:
        log.warning("%d free-text prediction(s) without a reference were not judged", skipped_ref)
    return {t: v for t, v in items.items() if v or failed.get(t)}, failed


def _rouge_l(items: Sequence[JudgeItem]) -> list[float]:
    """Per-item ROUGE-L F as results.json computes it (the scorer's per-language tokenisation)."""

    scorer = TextScorer()
    keys = [scorer.add(it.output, it.reference, it.language or "en") for it in items]
    done = scorer.run()
    return [done[k][1] for k in keys]


def load_judges(specs: Sequence[str | Backend]) -> list[_Judge]:
    """Backends for the judge specs (``openai:MODEL,base_url=..``, ``hf:PATH``, ``vllm:PATH``, ``default``)."""

    judges: list[_Judge] = []
    names: set[str] = set()
    for spec in specs:
        if isinstance(spec, str):
            parsed = check_spec(spec)  # parsed once; the backend loads from the parsed spec
            backend = load_backend(parsed)
            name, shown = slug(parsed.display_name, "judge"), parsed.redacted()
        else:
            backend = spec
            name = slug(f"{getattr(spec, 'name', 'backend')}", "judge")
            shown = f"{getattr(spec, 'name', 'backend')}"
        base, k = name, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.add(name)
        judges.append(_Judge(name, shown, backend, backend.identity()))
    return judges


@dataclass(frozen=True)
class JudgeConfig:
    """How a run is judged (``medsbench judge`` options)."""

    tasks: str | None = None  # a task selection (default: every free-text task of the run)
    limit: int | None = None  # items per task
    cache: str | Path | None = None  # default: the run's result cache
    max_tokens: int = 300  # token limit of each judge reply
    probes: bool = True
    probe_sample: int | None = None  # probe items per task (default: rubrics/probes.yaml)
    seed: int = 0  # probe sample and bootstrap
    bootstrap: int = 1000
    price: Price | None = None  # USD per million prompt and output tokens (medsbench.prices), where the judge reports usage
    rubrics_dir: str | Path | None = None


@dataclass
class _Judging:
    """What one judge run asks: the items per task, their probes, rubrics, and the judges' verdicts."""

    by_task: dict[str, list[JudgeItem]]
    failed: dict[str, int]
    probe_items: dict[str, list[JudgeItem]]
    rubric_of: dict[str, Rubric]
    flat: list[JudgeItem]
    template: PromptTemplate
    settings: Any  # the probe settings of the rubric set
    judges: list[Any] = field(default_factory=list)

    @property
    def index(self) -> dict[int, int]:
        return {id(it): i for i, it in enumerate(self.flat)}


def judge_run(run_dir: str | Path, judges: Sequence[str | Backend], config: JudgeConfig | None = None, *,
              progress: Callable[[str], None] | None = None, **options: Any) -> JudgedResults:
    """Judge ``run_dir``'s free-text predictions; writes ``judged.json`` and ``judgements.jsonl`` there.

    ``options`` are :class:`JudgeConfig` fields (``judge_run(run, specs, bootstrap=200)``).
    """
    cfg = dataclasses.replace(config or JudgeConfig(), **options)
    folder = RunFolder(run_dir)
    say = progress or log.info
    if not judges:
        raise MedsbenchError("no judge given (--judge SPEC, e.g. openai:gpt-4o or default)")
    if not folder.has_predictions():
        raise MedsbenchError("no predictions in the run folder", where=str(folder.path))
    manifest = folder.manifest() if folder.is_run() else None
    work = _select(folder, manifest is not None, cfg)
    cache_path = Path(cfg.cache) if cfg.cache is not None else resolve_cache(folder.path, manifest)
    work.judges = load_judges(judges)
    _ask_all(work, ResultCache(cache_path), cfg, say)
    tasks_out, probe_tables = _judged_tasks(work, cfg)
    result = JudgedResults(
        run=str(folder.path),
        model=manifest.model if manifest else None,
        predictions_sha256=folder.predictions_sha256(),
        created=now(),
        template=work.template.ref,
        rubrics={r.id: r.ref for r in {id(r): r for r in work.rubric_of.values()}.values()},
        probes_version=work.settings.version if cfg.probes else None,
        scale=[work.template.scale_min, work.template.scale_max],
        judges=_judge_infos(work.judges, cfg.price),
        tasks=tasks_out,
        categories=_categories(tasks_out, [j.name for j in work.judges]),
        probe_totals={name: _merge_probe_tables(tables) for name, tables in probe_tables.items()},
        cache=str(cache_path),
        notes=list(NOTES),
    )
    folder.save_judged(result)
    folder.save_judgements([
        JudgementRow(task_id=it.task_id, id=it.id, probe=it.probe, judge=j.name, rubric=work.rubric_of[it.task_id].ref,
                     score=v.score, status=v.status, retried=v.retried, error=v.error, reply=v.reply,
                     prompt_tokens=v.prompt_tokens, output_tokens=v.output_tokens)
        for j in work.judges for it, v in zip(work.flat, j.verdicts)
    ])
    return result


def _select(folder: RunFolder, planned: bool, cfg: JudgeConfig) -> _Judging:
    """The run's free-text items per task, their rubrics and probes (checked against the run's plan)."""
    rubric_set, template, settings = load_rubrics(cfg.rubrics_dir)
    by_task, failed = select_items(folder.predictions(plan=planned), cfg.tasks, cfg.limit)
    if not by_task:
        raise MedsbenchError(
            "no free-text predictions to judge (only tasks scored with BLEU/ROUGE are judged: summarization, "
            "explanation, rationale, task100, task42)", where=str(folder.predictions_path),
        )
    rubric_of = {t: rubric_for(t, v[0].category if v else None, rubric_set) for t, v in by_task.items()}
    probe_items = {t: (build_probes(v, settings, cfg.seed, cfg.probe_sample) if cfg.probes and v else [])
                   for t, v in by_task.items()}
    # One flat list per judge: real items, then probes, so each backend sees one long request stream.
    flat = [it for t in by_task for it in by_task[t]] + [p for t in by_task for p in probe_items[t]]
    return _Judging(by_task, failed, probe_items, rubric_of, flat, template, settings)


def _ask_all(work: _Judging, store: ResultCache, cfg: JudgeConfig, say: Callable[[str], None]) -> None:
    flat_rubrics = [work.rubric_of[it.task_id] for it in work.flat]
    n_items = sum(len(v) for v in work.by_task.values())
    try:
        for judge in work.judges:
            say(f"judge {judge.name}: {len(work.flat)} judgement(s) ({n_items} items, {len(work.flat) - n_items} probes)")
            judge.verdicts = judge_items(judge, work.flat, flat_rubrics, work.template, store, cfg.max_tokens, say)
    finally:
        store.close()
        for judge in work.judges:
            judge.backend.close()


def _judged_tasks(work: _Judging, cfg: JudgeConfig) -> tuple[dict[str, TaskJudged], dict[str, list[dict[str, ProbeSummary]]]]:
    """Per task: each judge's and the jury's summary, agreement, correlation with ROUGE-L, probe tables."""
    index = work.index
    tasks_out: dict[str, TaskJudged] = {}
    all_probe_tables: dict[str, list[dict[str, ProbeSummary]]] = {}
    for tid, items in work.by_task.items():
        pos = [index[id(it)] for it in items]
        per_judge = {j.name: [j.verdicts[p].score for p in pos] for j in work.judges}
        first = items[0] if items else None
        probe_tables = _probe_tables(work, tid)
        for name, table in probe_tables.items():
            all_probe_tables.setdefault(name, []).append(table)
        tasks_out[tid] = TaskJudged(
            category=first.category if first else None,
            language=first.language if first else None,
            rubric=work.rubric_of[tid].ref,
            n=len(items),
            n_failed_predictions=work.failed.get(tid, 0),
            judges={j.name: _summary([j.verdicts[p] for p in pos], per_judge[j.name], f"judge:{tid}:{j.name}", cfg.bootstrap)
                    for j in work.judges},
            jury=_summary([j.verdicts[p] for j in work.judges for p in pos], _jury_scores(list(per_judge.values())),
                          f"judge:{tid}:{JURY}", cfg.bootstrap),
            agreement=_agreement(per_judge, (work.template.scale_min, work.template.scale_max)) if items else None,
            rouge_l_spearman=_rouge_correlations(items, per_judge) if items else {},
            probes=probe_tables,
        )
    return tasks_out, all_probe_tables


def _agreement(per_judge: dict[str, list[int | None]], scale: tuple[int, int]) -> Agreement | None:
    if len(per_judge) < 2:
        return None
    matrix = np.array([[np.nan if s is None else s for s in scores] for scores in per_judge.values()], dtype=float)
    return Agreement(**agreement(matrix, scale))


def _rouge_correlations(items: list[JudgeItem], per_judge: dict[str, list[int | None]]) -> dict[str, float | None]:
    rouge = _rouge_l(items)
    rho = {name: spearman(scores, rouge) for name, scores in per_judge.items()}
    rho[JURY] = spearman(_jury_scores(list(per_judge.values())), rouge)
    return rho


def _probe_tables(work: _Judging, tid: str) -> dict[str, dict[str, ProbeSummary]]:
    plist = work.probe_items[tid]
    if not plist:
        return {}
    index = work.index
    ppos = [index[id(p)] for p in plist]
    pj = {j.name: [j.verdicts[p].score for p in ppos] for j in work.judges}
    tables = {name: _probe_table(plist, scores, work.settings) for name, scores in pj.items()}
    if len(work.judges) > 1:
        tables[JURY] = _probe_table(plist, _jury_scores(list(pj.values())), work.settings)
    return tables


def _judge_infos(judges: list[Any], price: Price | None) -> list[JudgeInfo]:
    infos: list[JudgeInfo] = []
    for j in judges:
        pt = ot = None
        for v in j.verdicts:
            pt, ot = _add(pt, v.prompt_tokens), _add(ot, v.output_tokens)
        cost = price.cost(pt, ot) if price is not None else None
        infos.append(JudgeInfo(
            name=j.name, spec=j.spec, identity=j.identity, requests=j.requests, cached=j.cached, errors=j.errors,
            prompt_tokens=pt, output_tokens=ot, new_prompt_tokens=j.new_prompt_tokens,
            new_output_tokens=j.new_output_tokens, cost_usd=cost,
        ))
    return infos


def _categories(tasks_out: dict[str, TaskJudged], judge_names: list[str]) -> dict[str, CategoryJudged]:
    """Macro averages per category (as results.json averages categories)."""
    categories: dict[str, CategoryJudged] = {}
    for cat in dict.fromkeys(t.category or "other" for t in tasks_out.values()):
        members = {tid: t for tid, t in tasks_out.items() if (t.category or "other") == cat}
        means: dict[str, float | None] = {}
        for name in judge_names + ([JURY] if len(judge_names) > 1 else []):
            task_means = [(t.jury if name == JURY else t.judges[name]).mean for t in members.values()]
            vals = [v for v in task_means if v is not None]
            means[name] = round(float(np.mean(vals)), 4) if vals else None
        categories[cat] = CategoryJudged(tasks=list(members), n=sum(t.n for t in members.values()), means=means)
    return categories
