"""Scoring speed: a generated 30,000-row predictions file over every catalog task.

Rows are spread evenly over the 12 categories (then over each category's tasks); half
of the outputs are long (150-300 words, or 300-600 characters in zh/ja), the rest short.
Prints rows/s per category, the total seconds of ``score_predictions`` (1000 bootstrap
resamples per task), and two baselines measured on a sample and extrapolated:

* naive: our own functions, one row at a time (``score_items([row])``: no batching,
  no tokenisation shared between rows);
* official libraries: nltk ``word_tokenize`` + ``sentence_bleu`` and the ``rouge``
  package (+ jieba / janome ``Tokenizer()`` per call), the official ``cal_similarity``.

Run: python bench/score_bench.py [--rows 30000] [--sample 150]

Old vs new in one run: ``python bench/score_bench.py --baseline /path/to/other/checkout/src``
scores the same generated file with that checkout and with this one, alternating in fresh
processes (``--repeat`` times, best of each side, OMP_NUM_THREADS=1, the caller's CPU affinity),
checks that both give identical results.json content, and prints the speed-up with the load
average. Measured on the shared 2-core machine (other engineers' jobs running), pinned to one
core with ``taskset -c 0``, main (scorer code as at ab5f546) vs this branch, 30,000 rows, 1000 resamples:

* load 3.10 -> 2.59: main 21.11 s wall / 20.86 s CPU, this 12.43 s / 12.35 s: 1.70x / 1.69x
* load 2.85 -> 3.28: main 28.59 s wall / 22.06 s CPU, this 18.55 s / 14.03 s: 1.54x / 1.57x

(main took 14.0 s on an idle machine: about 8-9 s at these ratios). Where the time went
(cProfile of the whole run, main -> this): Treebank regex substitutions 5.7 s -> 1.5 s of 77 s ->
34 s profiled (single characters and literals via str.replace, whitespace runs via split/join,
substitutions skipped when no match is possible, the contraction pre-check without an (?i) scan),
Punkt 4.9 s -> 2.0 s (candidate and realignment loops without generators/timeout wrappers),
strict-mode label, prefix and answer-phrase regexes (case-sensitive over ``text.lower()`` for
ASCII text, labels pre-filtered), ROUGE-L's sentence split. What remains: ROUGE-L's LCS
backtracking in Python (~15%), janome (~20%; its lattice and FST are pure Python, and a larger
janome prefix cache was slower), jieba, pydantic row validation, the bootstrap.

Later (scorer registry branch, same way, ``taskset -c 0``, 2 resamples each, a machine at load 10-30):
the three Treebank substitutions found by ``str.find`` (exact), NLTK's tokenizer modules loaded
without ``nltk/__init__``: 10.95 -> 9.55 s CPU (1.15x) against the commit before, results identical;
against main at 15e50f2, 12.30 -> 10.28 s CPU (1.20x; results differ only by the named strict fixes:
NER trailing periods per entity, label sets and ``label_source``). CPU shares now (one run, phases
timed with ``process_time``): tokenisation 49% (NLTK Treebank + Punkt 27%, janome 16%, jieba 6%),
ROUGE-L 15%, closed-label parsing 14%, bootstrap 10%, reading rows 6%.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from medsbench.fileio import write_jsonl  # noqa: E402
from medsbench import metrics  # noqa: E402
from medsbench.metrics import score_predictions  # noqa: E402
from medsbench.metrics.score import as_rows, score_items  # noqa: E402
from medsbench.tasks.labels import HALLMARKS  # noqa: E402
from medsbench.tasks.catalog import catalog  # noqa: E402

EN = ("the patient was admitted with chest pain and shortness of breath ; ECG showed ST elevation in leads II , III "
      "and aVF . troponin was 3.4 ng/mL . he received aspirin 325 mg , heparin and clopidogrel before PCI of the RCA . "
      "no acute intracranial hemorrhage . mild chronic small vessel ischemic changes ( stable ) . Dr. Smith noted "
      "that the findings don't suggest malignancy , e.g. no mass or lymphadenopathy ; follow-up CT in 3 months is "
      "recommended . the liver , spleen and kidneys are unremarkable . impression : pneumonia of the right lower lobe .").split()
WORDS = {
    "en": EN,
    "fr": "le patient a été admis pour une douleur thoracique ; l' ECG montrait un sus-décalage . le traitement comprend l' aspirine et l' héparine .".split(),
    "es": "el paciente ingresó por dolor torácico ; el ECG mostró elevación del ST . se administró aspirina y heparina antes de la angioplastia .".split(),
    "ru": "пациент поступил с болью в груди ; на ЭКГ подъём сегмента ST . назначены аспирин и гепарин перед коронарографией .".split(),
}
ZH = "患者男性，65岁，因胸痛3小时入院。心电图提示下壁导联ST段抬高，诊断为急性下壁心肌梗死，给予阿司匹林、氯吡格雷及肝素治疗。"
JA = "患者は65歳男性で、胸痛のため入院した。心電図で下壁誘導のST上昇を認め、急性心筋梗塞と診断された。アスピリンを投与した。"
MCQ = "Question: A 45-year-old man has chest pain. Which drug?\nOptions:\nA. heparin\nB. aspirin\nC. warfarin\nD. insulin"


def text(rng: random.Random, lang: str, n: int) -> str:
    if lang in ("zh", "ja"):
        src = ZH if lang == "zh" else JA
        pieces = [src[i : i + rng.randint(2, 8)] for i in range(0, len(src), 4)]
        return "".join(rng.choice(pieces) for _ in range(max(1, n // 5)))
    words = WORDS.get(lang, EN)
    out = [rng.choice(words) for _ in range(n)]
    return " ".join(out).capitalize() + " ."


def _is_text(task_id: str) -> bool:
    if not hasattr(metrics, "scorer_for_task"):  # a --baseline checkout from before the scorer lookup
        return metrics.get_scorer(catalog()[task_id].scorer or "").is_text
    scorer = metrics.scorer_for_task(task_id)
    return scorer is not None and scorer.is_text


def make_rows(n_rows: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    cat = catalog()
    per_cat = n_rows // len(cat.categories)
    rows: list[dict] = []
    for ckey in cat.categories:
        tasks = cat.by_category(ckey)
        for k in range(per_cat):
            t = tasks[k % len(tasks)]
            long = k % 2 == 0
            lang = t.language
            if _is_text(t.id):
                ref_len = {"summarization": 45, "rationale": 120, "explanation": 40}.get(ckey, 25)
                gold = text(rng, lang, rng.randint(ref_len // 2, ref_len * 2))
                out = text(rng, lang, rng.randint(150, 300) if long else rng.randint(10, 60))
            else:
                gold, out = _closed(rng, ckey, t.id)
                if long:  # verbose model: the answer buried in a long explanation
                    out = out + " " + text(rng, "en", rng.randint(150, 300))
            rows.append({"task_id": t.id, "id": f"{t.id}:{k}", "input": MCQ if ckey == "mcqa" else text(rng, "en", 30),
                         "reference": gold, "output": out, "category": ckey, "language": lang})
    return rows


def _closed(rng: random.Random, ckey: str, task_id: str) -> tuple[str, str]:
    if ckey == "mcqa":
        if task_id == "task123":
            g, o = rng.choice(["yes", "no", "maybe"]), rng.choice(["yes", "no", "maybe"])
            return f"The right answer is {g}.", f"The right answer is {o}."
        opts = {"A": "heparin", "B": "aspirin", "C": "warfarin", "D": "insulin"}
        g, o = rng.choice("ABCD"), rng.choice("ABCD")
        return f"The right answer is {g}: {opts[g]}.", rng.choice([f"The answer is ({o}).", f"{o}. {opts[o]}", f"答案是{o}"])
    if ckey == "ner":
        ents = ["aspirin", "cisplatin", "heparin", "breast cancer", "mouse", "5-fluorouracil"]
        g = rng.sample(ents, rng.randint(0, 3))
        o = rng.sample(ents, rng.randint(0, 3))
        fmt = lambda e: ", ".join(e) + "." if e else "There is no related enetity."  # noqa: E731
        return fmt(g), fmt(o)
    if ckey == "text_classification":
        return ", ".join(rng.sample(HALLMARKS, rng.randint(1, 3))), ", ".join(rng.sample(HALLMARKS, rng.randint(1, 3)))
    labels = {
        "diagnosis": [f"The diagnosis result is {d}." for d in ("pneumonia", "bronchitis", "urti", "pulmonary embolism")],
        "treatment_planning": [f"The treatment planning is: {t}" for t in ("Radiation after surgery", "Radiation prior to surgery")],
        "clinical_outcome": ["True", "False"],
        "nli": ["entailment", "contradiction", "neutral"],
        "fact_verification": ["yes", "no"],
        "information_extraction": ["60 patients with type 2 diabetes", "aspirin 100 mg daily", "female, 54 years"],
    }[ckey]
    return rng.choice(labels), rng.choice(labels)


def official_text_scores(rows: list[dict], nltk_dir: str) -> float:
    """The official cal_similarity path (nltk + rouge + jieba/janome) over ``rows``; seconds."""
    sys.setrecursionlimit(10000)
    import jieba
    import nltk
    from janome.tokenizer import Tokenizer
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from rouge import Rouge

    nltk.data.path.insert(0, nltk_dir)
    t0 = time.perf_counter()
    for r in rows:
        hyp, ref, lang = r["output"], r["reference"], r["language"]
        if lang == "zh":
            h, g = list(jieba.cut(hyp)), list(jieba.cut(ref))
        elif lang == "ja":
            tok = Tokenizer()
            h, g = [t.surface for t in tok.tokenize(hyp)], [t.surface for t in tok.tokenize(ref)]
        else:
            h, g = nltk.word_tokenize(hyp), nltk.word_tokenize(ref)
        sentence_bleu([g], h, smoothing_function=SmoothingFunction().method1, weights=(1, 0, 0, 0))
        if lang == "zh":
            hyp, ref = " ".join(jieba.cut(hyp)), " ".join(jieba.cut(ref))
        elif lang == "ja":
            tok = Tokenizer()
            hyp, ref = " ".join(t.surface for t in tok.tokenize(hyp)), " ".join(t.surface for t in tok.tokenize(ref))
        Rouge().get_scores(hyp, ref)[0]["rouge-l"]["f"]
    return time.perf_counter() - t0


def write_punkt_tab(root: Path) -> None:
    from medsbench.metrics.tokenize import punkt_parameters

    p = punkt_parameters()
    d = root / "tokenizers" / "punkt_tab" / "english"
    d.mkdir(parents=True)
    (d / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in p.collocations), encoding="utf-8")
    (d / "sent_starters.txt").write_text("".join(f"{w}\n" for w in p.sent_starters), encoding="utf-8")
    (d / "abbrev_types.txt").write_text("".join(f"{w}\n" for w in p.abbrev_types), encoding="utf-8")
    (d / "ortho_context.tab").write_text("".join(f"{k}\t{v}\n" for k, v in p.ortho_context.items()), encoding="utf-8")


def child(predictions: str, out: str) -> None:
    """Time ``score_predictions`` on ``predictions`` in this process (whatever medsbench the path
    gives); write {wall, cpu, results} to ``out``."""
    import json

    import medsbench

    score_predictions([r for r in make_rows(1200) if r["task_id"] in ("task51", "task54", "task52")][:3], bootstrap=0)
    c0, t0 = time.process_time(), time.perf_counter()
    res = score_predictions(predictions, bootstrap=1000, seed=0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    results = res.model_dump(mode="json")
    results.pop("inputs", None)
    Path(out).write_text(json.dumps({"wall": wall, "cpu": cpu, "src": str(Path(medsbench.__file__).parent),
                                     "results": results}, sort_keys=True), encoding="utf-8")


def compare(predictions: Path, baseline_src: str, repeat: int, tmp: Path) -> None:
    """Old (``baseline_src``) vs this checkout, alternating in fresh processes on the same file."""
    import json
    import subprocess

    here = str(Path(__file__).resolve().parents[1] / "src")
    times: dict[str, list[tuple[float, float]]] = {"baseline": [], "this": []}
    results: dict[str, str] = {}
    load_before = os.getloadavg()
    for _ in range(repeat):
        for name, src in (("baseline", baseline_src), ("this", here)):
            out = tmp / f"{name}.json"
            env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
            subprocess.run([sys.executable, __file__, "--child", str(predictions), str(out)], env=env, check=True)
            got = json.loads(out.read_text(encoding="utf-8"))
            times[name].append((got["wall"], got["cpu"]))
            results[name] = json.dumps(got["results"], sort_keys=True)
    load_after = os.getloadavg()
    bw, bc = min(w for w, _ in times["baseline"]), min(c for _, c in times["baseline"])
    tw, tc = min(w for w, _ in times["this"]), min(c for _, c in times["this"])
    print(f"baseline {baseline_src}: best of {repeat} {bw:.2f} s wall, {bc:.2f} s CPU")
    print(f"this checkout {here}: best of {repeat} {tw:.2f} s wall, {tc:.2f} s CPU")
    print(f"speed-up: {bw / tw:.2f}x wall, {bc / tc:.2f}x CPU; results identical: {results['baseline'] == results['this']}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"CPU affinity {sorted(os.sched_getaffinity(0))}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=30000)
    ap.add_argument("--sample", type=int, default=150, help="rows per category for the baselines")
    ap.add_argument("--baseline", metavar="SRC", help="another checkout's src/ folder: time it against this one, "
                    "alternating in fresh processes on the same file (e.g. /path/to/main/src)")
    ap.add_argument("--repeat", type=int, default=3, help="alternations for --baseline (best of each side)")
    ap.add_argument("--child", nargs=2, metavar=("PREDICTIONS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    rows = make_rows(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.jsonl"
        write_jsonl(path, rows)
        if args.baseline:
            compare(path, args.baseline, args.repeat, Path(tmp))
            return
        # warm the lazy imports (nltk, punkt model, jieba dictionary, janome) outside the timings
        score_predictions([r for r in rows if r["task_id"] in ("task51", "task54", "task52")][:3], bootstrap=0)
        t0 = time.perf_counter()
        res = score_predictions(path, bootstrap=1000, seed=0)
        total = time.perf_counter() - t0
        t0 = time.perf_counter()
        score_predictions(path, bootstrap=0)
        no_boot = time.perf_counter() - t0
        by_cat: dict[str, list[dict]] = defaultdict(list)
        for r in as_rows(rows):
            by_cat[r.category or ""].append(r)
        nltk_dir = Path(tmp) / "nltk_data"
        write_punkt_tab(nltk_dir)
        print(f"{len(rows)} rows, {len(res.tasks)} tasks, half of the outputs long")
        print(f"{'category':24} {'rows':>6} {'batched rows/s':>15} {'naive rows/s':>13} {'official-libs rows/s':>21}")
        naive_total = 0.0
        official_total = 0.0
        for cat, cat_rows in by_cat.items():
            t0 = time.perf_counter()
            score_items(cat_rows)
            dt = time.perf_counter() - t0
            sample = random.Random(1).sample(cat_rows, min(args.sample, len(cat_rows)))
            sample = [r.model_copy(update={"id": f"naive-{i}-{r.id}"}) for i, r in enumerate(sample)]  # no cache hits
            t0 = time.perf_counter()
            for r in sample:
                score_items([r])
            naive = (time.perf_counter() - t0) / len(sample)
            naive_total += naive * len(cat_rows)
            official = ""
            is_text = [_is_text(r.task_id) for r in cat_rows]
            if any(is_text):
                text_rows = [r.model_dump() for r in sample if _is_text(r.task_id)]
                sec = official_text_scores(text_rows, str(nltk_dir)) / max(1, len(text_rows))
                frac = sum(is_text)
                official_total += sec * frac + naive * (len(cat_rows) - frac)
                official = f"{1 / sec:21.0f}"
            else:
                official_total += naive * len(cat_rows)
            print(f"{cat:24} {len(cat_rows):6d} {len(cat_rows) / dt:15.0f} {1 / naive:13.0f} {official:>21}")
        print(f"score_predictions, whole file: {total:.2f} s with 1000 bootstrap resamples per task, {no_boot:.2f} s without")
        print(f"naive one-row-at-a-time loop (extrapolated): {naive_total:.1f} s -> {naive_total / no_boot:.1f}x slower")
        print(f"official libraries (text rows extrapolated, other rows naive): {official_total:.1f} s -> "
              f"{official_total / no_boot:.1f}x slower")


if __name__ == "__main__":
    main()
