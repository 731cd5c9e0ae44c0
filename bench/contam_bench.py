"""Contamination of the real test splits: every test item of the converted tasks that have a train split,
checked against those train splits and against MedS-Ins mixtures (``medsbench contam``).

A synthetic model answers every test item (MCQA: an option letter chosen by a hash of the prompt, so its
answers do not depend on contamination; other tasks: a fixed text), which makes a run folder of the
full test sets in seconds; ``check_run`` then flags its items against each corpus. Prints per task the
items, the contaminated items per corpus, and the seconds and records of each check; with ``--run``,
checks an existing run folder (e.g. a real model's) instead and prints its clean vs contaminated scores.

    medsbench data convert --all --raw ../shared/data/raw --out /tmp/x/tasks
    medsbench ins build --out /tmp/x/mix --tasks /tmp/x/tasks -w /tmp/x
    python bench/contam_bench.py --tasks /tmp/x/tasks --mixture /tmp/x/mix [--run RUN]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from medsbench.contam import ContamOptions, check_run
from medsbench.models.base import BaseBackend, Rendered, Request, Response
from medsbench.pipeline import evaluate
from medsbench.prompts import Prompt
from medsbench.tasks import find_task_files
from medsbench.tasks.catalog import catalog


class HashAnswers(BaseBackend):
    """Answers by a hash of the prompt: MCQA an option letter A-D, other tasks a fixed text."""

    name = "hash-answers"

    def identity(self):
        return {"backend": "hash-answers", "version": 1}

    def render(self, prompt: Prompt) -> Rendered:
        text = prompt.plain()
        return Rendered(text, prompt=text)

    def count_tokens(self, prompt: Prompt) -> int:
        return len(prompt.plain().split())

    @property
    def context_length(self):
        return None

    def generate(self, requests: list[Request]) -> list[Response]:
        out = []
        for r in requests:
            letter = "ABCD"[hashlib.sha256(r.prompt.encode()).digest()[0] % 4]
            text = f"The right answer is {letter}." if "Options:" in r.prompt else "no answer"
            out.append(Response(r.id, text, None, None, 0.0, None))  # tokens unknown: never made up
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=Path, required=True, help="converted task folder (test and train splits)")
    ap.add_argument("--mixture", type=Path, action="append", default=[], help="ins build output (repeatable)")
    ap.add_argument("--run", type=Path, help="check this run folder instead of a synthetic run of every test split")
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    files = find_task_files(args.tasks)
    paired = sorted(t for t, s in files.items() if "train" in s and "test" in s and t in catalog())
    run = args.run
    if run is None:
        work = Path(tempfile.mkdtemp(prefix="contam-bench-"))
        (work / "tasks").mkdir()
        for tid in paired:
            os.symlink(files[tid]["test"].resolve(), work / "tasks" / files[tid]["test"].name)
        t0 = time.perf_counter()
        evaluate(HashAnswers(), ",".join(paired), workspace=work, out=work / "run", progress=False)
        print(f"synthetic run of {len(paired)} task(s) in {time.perf_counter() - t0:.1f} s: {work / 'run'}")
        run = work / "run"
    train = [files[t]["train"] for t in paired]
    reports = {}
    for name, corpora in (("train splits", train), *((f"mixture {m.name}", [m]) for m in args.mixture)):
        report = check_run(run, corpora, ContamOptions(bootstrap=args.bootstrap))
        records = sum(f.records for c in report.corpora for f in c.files)
        print(f"{name}: {report.n_contaminated} of {report.n_items} items contaminated; {records} records checked in "
              f"{report.seconds:.1f} s")
        reports[name] = report
    names = list(reports)
    print("\ntask | items | " + " | ".join(f"contaminated vs {n}" for n in names))
    first = reports[names[0]]
    for tid, t in first.tasks.items():
        cells = [f"{reports[n].tasks[tid].n_contaminated} ({100 * reports[n].tasks[tid].n_contaminated / t.n_items:.1f}%)"
                 for n in names]
        print(f"{tid} | {t.n_items} | " + " | ".join(cells))
    print("\nclean vs contaminated (strict primary metric, against the train splits; diff = clean - contaminated)")
    for tid, t in first.tasks.items():
        if t.difference is not None:
            m = t.metric
            ci = t.difference.ci.get(m)
            print(f"{tid} {m}: clean {t.clean.metrics[m]:.2f} (n={t.clean.n}), contaminated {t.contaminated.metrics[m]:.2f} "
                  f"(n={t.contaminated.n}), diff {t.difference.metrics[m]:+.2f}"
                  + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""))


if __name__ == "__main__":
    main()
