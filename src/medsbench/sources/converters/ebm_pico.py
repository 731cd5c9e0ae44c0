"""EBM-NLP PICO phrase extraction: participants (task1), interventions (task2), outcomes (task3).

One instance per sentence that mentions the element; gold is the element's phrases
in text order joined by ", " (the official IE scorer checks that the gold string
occurs in the answer).

Test comes from the expert-annotated gold set: PMIDs and labels from ``test.json``,
sentence breaks from ``test.txt`` (same documents, same order, same tokens).
``test.json`` has one column per element, but its columns are cumulative (every P
token is also marked I and O, every I token also O: 3,991 P tokens, none P-only),
so the collapsed label -- the first non-N of (P, I, O), which is exactly
``test.txt``'s tag -- is used for all three tasks. The train split comes from
``dev.txt`` (crowd-annotated, collapsed tags, no PMIDs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._ner import detokenize
from medsbench.sources.converters._qa import (
    Splits,
    TaskSpec,
    instance,
    load_json,
    no_options,
    read_text,
    write_splits,
)
from medsbench.sources.registry import register_source, require_file

ELEMENTS = {  # tag -> (task id, what it is, definition focus)
    "P": ("task1", "participants", "who was studied: the condition, age, sex, setting or number of the participants"),
    "I": ("task2", "interventions", "the treatments, drugs or procedures tested, including the control or comparison"),
    "O": ("task3", "outcomes", "the outcomes measured to judge whether the intervention works"),
}
_PUNCT = frozenset(".,;:!?()[]{}\"'-")


def definition(element: str) -> str:
    _, name, focus = ELEMENTS[element]
    return (
        f"You are given one sentence from the report of a clinical trial. List the phrases of the sentence that "
        f"describe the {name} of the study ({focus}). Copy each phrase exactly as it appears, in the order of the "
        "sentence, separated by commas."
    )


@dataclass
class Sentence:
    id: str
    tokens: list[str]
    tags: list[str]  # collapsed P/I/O/N per token


def phrases(sent: Sentence, tag: str) -> list[str]:
    """Maximal runs of ``tag``, trimmed of edge punctuation tokens, de-duplicated case-insensitively."""
    runs: list[list[str]] = []
    prev = None
    for tok, t in zip(sent.tokens, sent.tags):
        if t == tag:
            if prev != tag:
                runs.append([])
            runs[-1].append(tok)
        prev = t
    out: list[str] = []
    seen: set[str] = set()
    for run in runs:
        while run and all(c in _PUNCT for c in run[0]):
            run = run[1:]
        while run and all(c in _PUNCT for c in run[-1]):
            run = run[:-1]
        text = detokenize(run).strip(" ,;:.")
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return out


def read_conll(path: Path) -> list[list[tuple[list[str], list[str]]]]:
    """Documents -> sentences -> (tokens, tags) from the ``token POS TAG`` file."""
    docs: list[list[tuple[list[str], list[str]]]] = []
    toks: list[str] = []
    tags: list[str] = []

    def close_sentence() -> None:
        if toks:
            if not docs:
                docs.append([])
            docs[-1].append((toks.copy(), tags.copy()))
            toks.clear()
            tags.clear()

    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if line.startswith("-DOCSTART-"):
            close_sentence()
            docs.append([])
            continue
        if not line.strip():
            close_sentence()
            continue
        parts = line.rsplit(" ", 2)
        if len(parts) != 3 or parts[2] not in ("P", "I", "O", "N"):
            raise MedsbenchError("expected 'token POS TAG' with TAG in P/I/O/N", where=f"{path}:{lineno}")
        toks.append(parts[0])
        tags.append(parts[2])
    close_sentence()
    return [d for d in docs if d]


def test_sentences(raw_dir: Path) -> list[Sentence]:
    json_path, txt_path = require_file(raw_dir, "test.json"), require_file(raw_dir, "test.txt")
    gold = load_json(json_path)
    if not isinstance(gold, dict):
        raise MedsbenchError("expected {PMID: [[token, POS, P, I, O], ...]}", where=str(json_path))
    docs = read_conll(txt_path)
    if len(docs) != len(gold):
        raise MedsbenchError(f"{len(docs)} documents in test.txt but {len(gold)} in test.json", where=str(txt_path))
    out: list[Sentence] = []
    for (pmid, rows), doc in zip(gold.items(), docs):
        n_tokens = sum(len(t) for t, _ in doc)
        if not isinstance(rows, list) or len(rows) != n_tokens:
            raise MedsbenchError(f"PMID {pmid}: token count differs from test.txt ({n_tokens})", where=str(json_path))
        pos = 0
        for s, (tokens, _) in enumerate(doc):
            labels = []
            for row in rows[pos : pos + len(tokens)]:
                if not isinstance(row, list) or len(row) != 5:
                    raise MedsbenchError(f"PMID {pmid}: expected [token, POS, P, I, O] rows", where=str(json_path))
                labels.append(next((t for t in row[2:] if t != "N"), "N"))
            pos += len(tokens)
            out.append(Sentence(f"{pmid}-{s}", tokens, labels))
    return out


def train_sentences(raw_dir: Path) -> list[Sentence]:
    path = require_file(raw_dir, "dev.txt")
    return [
        Sentence(f"dev{d}-{s}", toks, tags)
        for d, doc in enumerate(read_conll(path))
        for s, (toks, tags) in enumerate(doc)
    ]


@register_source(
    "ebm_nlp_pico",
    description="EBM-NLP PICO phrases: participants, interventions, outcomes (gold test; dev -> train)",
    raw_folder="ebm_nlp_pico",
    tasks=("task1", "task2", "task3"),
)
def ebm_nlp_pico(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("ebm_nlp_pico", options)
    test, train = test_sentences(raw_dir), train_sentences(raw_dir)
    written: list[Path] = []
    for tag, (task_id, _, _) in ELEMENTS.items():
        splits = Splits()
        for split, sents in (("test", test), ("train", train)):
            for sent in sents:
                found = phrases(sent, tag)
                if found:
                    getattr(splits, split).append(instance(sent.id, detokenize(sent.tokens), ", ".join(found)))
        spec = TaskSpec.bench(
            task_id,
            definition=definition(tag),
            source="EBM-NLP",
            url="https://github.com/bepnye/EBM-NLP",
            license="not stated by the authors (public research corpus)",
        )
        written += write_splits(
            out_dir,
            spec,
            splits,
            split_method="official: expert-annotated gold test set (test.json/test.txt) -> test; dev.txt (crowd labels) -> train",
            extra={
                "unit": "one sentence that mentions the element (sentences without it are left out)",
                "labels": "collapsed token label = first non-N of test.json's cumulative P, I, O columns (= test.txt tag)",
            },
        )
    return written
