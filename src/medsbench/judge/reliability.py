"""Judge reliability: sanity probes, inter-judge agreement, correlation with ROUGE-L.

Probes (settings in ``rubrics/probes.yaml``): on a seeded sample of each task's items, the
reference itself must score at the top, an empty answer and an off-topic answer (the reference of
another item) at the bottom, and the first third of the reference below the full reference.
Agreement: Krippendorff's alpha (ordinal, package ``krippendorff``) for any number of judges and
quadratic-weighted Cohen's kappa (scikit-learn) for two. Correlation: Spearman's rho (scipy, or
numpy average ranks when scipy is absent). Usable or not: :func:`unusable_judges` (parse failures,
probe pass rates), shown by ``medsbench judge --report`` and on the leaderboard.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medsbench.errors import MedsbenchError, require
from medsbench.fileio import stable_seed
from medsbench.judge.rubric import ProbeSettings
from medsbench.records.judged import JudgedResults, ProbeSummary

log = logging.getLogger(__name__)

PROBE_KINDS = ("reference", "empty", "off_topic", "truncated")


@dataclass
class JudgeItem:
    """One answer to grade: a real prediction (``probe`` None) or a synthetic probe answer."""

    task_id: str
    id: str | None
    category: str | None
    language: str | None
    input: str | None
    output: str
    reference: str
    probe: str | None = None
    source: int | None = None  # for probes: position of the real item it was built from


def _words(text: str, language: str | None) -> list[str]:
    return list(text.strip()) if language in ("zh", "ja") else text.split()


def build_probes(items: Sequence[JudgeItem], settings: ProbeSettings, seed: int, sample: int | None = None) -> list[JudgeItem]:
    """Probe answers for a seeded sample of one task's ``items`` (all of the same task)."""
    pool = [i for i, it in enumerate(items) if it.reference.strip()]
    size = settings.sample if sample is None else sample
    if not pool or size <= 0:
        return []
    rng = np.random.default_rng(stable_seed(seed, items[0].task_id, "judge-probes"))
    chosen = sorted(rng.choice(len(pool), size=min(size, len(pool)), replace=False).tolist())
    fraction = float(settings.checks.truncated.get("fraction", 1 / 3))
    out: list[JudgeItem] = []
    for c in chosen:
        pos = pool[c]
        it = items[pos]

        def probe(kind: str, answer: str, it: JudgeItem = it, pos: int = pos) -> JudgeItem:
            return JudgeItem(it.task_id, f"{it.id}#{kind}", it.category, it.language, it.input, answer, it.reference, kind, pos)

        out.append(probe("reference", it.reference))
        out.append(probe("empty", ""))
        mine = " ".join(it.reference.lower().split())
        for step in range(1, len(pool)):
            other = items[pool[(c + step) % len(pool)]]
            if " ".join(other.reference.lower().split()) != mine:
                out.append(probe("off_topic", other.reference))
                break
        words = _words(it.reference, it.language)
        if len(words) >= 3:
            keep = max(1, math.ceil(len(words) * fraction))
            if keep < len(words):
                joiner = "" if it.language in ("zh", "ja") else " "
                out.append(probe("truncated", joiner.join(words[:keep])))
    return out


def probe_passes(kind: str, score: float | None, reference_score: float | None, settings: ProbeSettings) -> bool | None:
    """Whether one probe passed its check; None when it cannot be decided (a missing score)."""
    if score is None:
        return None
    check = getattr(settings.checks, kind)
    if kind == "reference":
        return score >= check["min"]
    if kind in ("empty", "off_topic"):
        return score <= check["max"]
    if kind == "truncated":
        return None if reference_score is None else score < reference_score
    raise MedsbenchError(f"unknown probe kind '{kind}'")


def agreement(matrix: np.ndarray, scale: tuple[int, int]) -> dict:
    """Agreement of judges (rows) over items (columns); NaN = no score from that judge."""
    matrix = np.asarray(matrix, dtype=float)
    notes: list[str] = []
    rated = (~np.isnan(matrix)).sum(axis=0) >= 2
    out: dict = {"n_items": int(rated.sum()), "krippendorff_alpha": None, "cohen_kappa": None,
                 "exact": None, "within_one": None, "notes": notes}
    if matrix.shape[0] < 2 or not rated.any():
        return out
    sub = matrix[:, rated]
    spread = np.nanmax(sub, axis=0) - np.nanmin(sub, axis=0)
    out["exact"] = round(float((spread == 0).mean()), 4)
    out["within_one"] = round(float((spread <= 1).mean()), 4)
    values = sub[~np.isnan(sub)]
    if len(np.unique(values)) < 2:
        notes.append("every judge gave the same score to every item: agreement coefficients are undefined")
        return out
    try:
        kripp = require("krippendorff", "judge", "Krippendorff's alpha")
        alpha = kripp.alpha(
            reliability_data=sub, level_of_measurement="ordinal", value_domain=list(range(scale[0], scale[1] + 1))
        )
        out["krippendorff_alpha"] = None if not np.isfinite(alpha) else round(float(alpha), 4)
    except MedsbenchError as exc:
        notes.append(str(exc))
    except ValueError as exc:  # e.g. fewer than two values in the domain actually used
        notes.append(f"Krippendorff's alpha undefined: {exc}")
    if matrix.shape[0] == 2:
        both = ~np.isnan(matrix).any(axis=0)
        if both.sum() >= 2:
            try:
                skm = require("sklearn.metrics", "judge", "Cohen's kappa")
                a, b = matrix[0, both].astype(int), matrix[1, both].astype(int)
                kappa = skm.cohen_kappa_score(a, b, weights="quadratic", labels=list(range(scale[0], scale[1] + 1)))
                out["cohen_kappa"] = None if not np.isfinite(kappa) else round(float(kappa), 4)
            except MedsbenchError as exc:
                notes.append(str(exc))
    return out


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank), as Spearman's rho needs."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def spearman(x: Sequence[float | None], y: Sequence[float | None]) -> float | None:
    """Spearman's rho over the pairs where both are present; None with < 3 pairs or a constant side."""
    pairs = [(a, b) for a, b in zip(x, y) if a is not None and b is not None]
    if len(pairs) < 3:
        return None
    xa = np.array([p[0] for p in pairs], dtype=float)
    ya = np.array([p[1] for p in pairs], dtype=float)
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return None
    try:
        from scipy.stats import spearmanr

        rho = float(spearmanr(xa, ya).statistic)
    except ImportError:
        rho = float(np.corrcoef(_ranks(xa), _ranks(ya))[0, 1])
    return round(rho, 4) if np.isfinite(rho) else None


# ------------------------------------------------------------------ usable or not

UNUSABLE_PARSE_FAILURE = 0.5  # a judge whose replies fail to parse this often is not following the prompt
MIN_PROBE_PASS = 0.5  # every probe kind must pass at least this often over all judged tasks


def unusable_judges(judged: JudgedResults) -> dict[str, str]:
    """Judges (and the jury) of ``judged`` whose scores cannot be used, with the reason in plain words.

    A judge is unusable when, over every judged task, at least :data:`UNUSABLE_PARSE_FAILURE` of its
    replies had no parseable score, when it scored no sanity probe at all (probes 0/0, or none were
    run), or when any probe kind passed less than :data:`MIN_PROBE_PASS` of the time. The jury is
    unusable when its own probes fail or any of its judges is unusable (its mean contains their scores).
    """
    names = [j.name for j in judged.judges]
    out: dict[str, str] = {}
    for name in names:
        summaries = [t.judges[name] for t in judged.tasks.values() if name in t.judges]
        answered = sum(s.n - s.errors for s in summaries)
        failures = sum(s.parse_failures for s in summaries)
        reasons = []
        if answered and failures / answered >= UNUSABLE_PARSE_FAILURE:
            reasons.append(f"{100 * failures / answered:.0f}% of its replies had no parseable score "
                           f"(unusable from {100 * UNUSABLE_PARSE_FAILURE:.0f}%)")
        elif not answered:
            reasons.append("no reply came back")
        reasons += _probe_problems(judged.probe_totals.get(name, {}))
        if reasons:
            out[name] = "; ".join(reasons)
    if len(names) > 1:
        reasons = _probe_problems(judged.probe_totals.get("jury", {}))
        bad = [n for n in names if n in out]
        if bad:
            reasons.insert(0, f"its judge(s) {', '.join(bad)} are unusable")
        if reasons:
            out["jury"] = "; ".join(reasons)
    return out


def _probe_problems(table: dict[str, ProbeSummary]) -> list[str]:
    scored = sum(p.n_scored for p in table.values())
    if not scored:
        return ["no sanity probe was scored (probes 0/0)"]
    out = []
    for kind in PROBE_KINDS:
        p = table.get(kind)
        if p is not None and p.n_scored and p.passed / p.n_scored < MIN_PROBE_PASS:
            out.append(f"{kind.replace('_', '-')} probes passed {p.passed}/{p.n_scored} "
                       f"(needs {100 * MIN_PROBE_PASS:.0f}%)")
    return out
