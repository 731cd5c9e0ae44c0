"""Human Disease Ontology (``doid.obo``, OBO 1.2, optionally gzipped) -> task46 and MedS-Ins tasks 45/47/48.

Only live terms count (``is_obsolete: true`` stanzas are dropped). Each term gives:

* **task46** (MedS-Bench concept explanation): the term name -> its ``def:`` text
  (terms without a definition are skipped). DO relation words keep their underscores
  (``located_in``), as in the release.
* **task45** (synonym generation): the term name -> its ``EXACT`` synonyms, joined by
  ``"; "`` (about one synonym in eight contains a comma).
* **task47** (relation classification): ``Word1: <a>\\nWord2: <b>`` -> what Word1 is to
  Word2: ``synonym`` (an EXACT synonym of the term), ``parent`` (Word1 is a direct
  ``is_a`` parent of Word2), ``child`` (Word1 is a direct ``is_a`` child of Word2) or
  ``unrelated`` (neither is an ancestor of the other). One pair per term; the relation
  is drawn uniformly (seeded by the term id) among those the term has.
* **task48** (definition -> concept): a definition plus four candidate names in a seeded
  order -> the name of the defined term. Distractors are siblings (same ``is_a`` parent)
  where the term has enough, random terms otherwise.

Split: the release has none, so every term goes to train or test 9:1 by a hash of its
DOID (``hash_split``, one salt for all four tasks), so a test term is test in every DO
task. Partners of a train pair (task47) and distractors of a train item (task48) are train
terms, so no train instance names or defines a test term; test items may use any term.
"""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import stable_seed
from medsbench.sources.converters._qa import Splits, TaskSpec, instance, no_options, write_splits
from medsbench.sources.registry import HASH_SPLIT_NOTE, hash_split, register_source

SALT = "disease_ontology"
SOURCE = "Human Disease Ontology"
URL = "https://github.com/DiseaseOntology/HumanDiseaseOntology"
LICENSE = "CC0 1.0 (public domain dedication)"
OBO_FILES = ("doid_2024-01-31.obo.gz", "doid.obo.gz", "doid.obo")
SPLIT_METHOD = (
    HASH_SPLIT_NOTE + " of the DOID, one salt for every DO task: a test term is test in all of them; "
    "train items of task47/task48 pair a term only with train terms (test items: any term)"
)
RELATIONS = ("synonym", "parent", "child", "unrelated")
N_CANDIDATES = 4

EXPLANATION = TaskSpec.bench(
    "task46",
    definition=(
        "You are given the name of a disease or medical condition. Explain what it is, as a short "
        "textbook definition (what kind of disease it is and what characterises it)."
    ),
    source=SOURCE,
    url=URL,
    license=LICENSE,
)


def _ins_task(task_id: str, slug: str, category: str, definition: str) -> TaskSpec:
    """A MedS-Ins-only DO task (no catalog entry)."""
    return TaskSpec(task_id=task_id, slug=slug, definition=definition, source=SOURCE, url=URL, license=LICENSE,
                    category=category, language="en")


SYNONYMS = _ins_task("task45", "do_synonym_generation", "Explanation", (
    "You are given the name of a disease. Write the other names that mean exactly the same disease, "
    'separated by "; ".'
))
RELATION = _ins_task("task47", "do_relation_classification", "Word Relation Classification", (
    "You are given two disease names as \"Word1: ...\" and \"Word2: ...\". Say what Word1 is to Word2 in the "
    "Disease Ontology: synonym (the same disease), parent (Word1 is a broader disease that Word2 is a kind "
    "of), child (Word1 is a kind of Word2) or unrelated. Answer with one of these four words."
))
MATCHING = _ins_task("task48", "do_definition_matching", "Text Retrieval", (
    "You are given the definition of a disease and a list of candidate disease names. Reply with the "
    "name, exactly as listed, of the disease that the definition describes."
))


@dataclass
class Term:
    id: str
    name: str = ""
    definition: str = ""
    synonyms: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    obsolete: bool = False


_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(.*)$')
_ESCAPES = {"n": "\n", "t": "\t", "W": " "}


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def _quoted(value: str, where: str) -> tuple[str, str]:
    m = _QUOTED.match(value)
    if not m:
        raise MedsbenchError(f"expected a quoted string, got '{value[:60]}'", where=where)
    return _unescape(m.group(1)), m.group(2)


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            yield from fh
    except (OSError, UnicodeDecodeError) as exc:
        raise MedsbenchError(f"cannot read the OBO file ({type(exc).__name__})", where=str(path)) from None


def read_obo_terms(path: Path) -> list[Term]:
    """The ``[Term]`` stanzas of an OBO file (obsolete ones flagged), in file order."""
    terms: list[Term] = []
    current: Term | None = None
    for lineno, raw in enumerate(_lines(path), 1):
        line = raw.rstrip("\n")
        if line.startswith("["):
            current = None
            if line.strip() == "[Term]":
                current = Term(id="")
                terms.append(current)
            continue
        if current is None or ":" not in line:
            continue
        tag, value = line.split(":", 1)
        value = value.strip()
        where = f"{path}:{lineno}"
        if tag == "id":
            current.id = value
        elif tag == "name":
            current.name = " ".join(value.split())
        elif tag == "def":
            current.definition = " ".join(_quoted(value, where)[0].split())
        elif tag == "synonym":
            text, rest = _quoted(value, where)
            if rest.split()[:1] == ["EXACT"]:
                current.synonyms.append(" ".join(text.split()))
        elif tag == "is_a":
            current.parents.append(value.split()[0])
        elif tag == "is_obsolete":
            current.obsolete = value == "true"
    missing = next((t for t in terms if not t.id or not t.name), None)
    if missing is not None:
        raise MedsbenchError(f"a [Term] without id or name ({missing.id or 'no id'})", where=str(path))
    if not terms:
        raise MedsbenchError("no [Term] stanzas: is this an OBO ontology file?", where=str(path))
    return terms


def _find_obo(raw_dir: Path) -> Path:
    for name in OBO_FILES:
        if (raw_dir / name).is_file():
            return raw_dir / name
    found = sorted(raw_dir.glob("*.obo")) + sorted(raw_dir.glob("*.obo.gz"))
    if len(found) == 1:
        return found[0]
    raise MedsbenchError(f"expected one doid .obo or .obo.gz file here (e.g. {OBO_FILES[0]})", where=str(raw_dir))


class Ontology:
    """Live terms, their sides of the split, and is_a ancestry."""

    def __init__(self, terms: list[Term]):
        self.terms = {t.id: t for t in terms if not t.obsolete}
        self.side = {tid: hash_split(tid, salt=SALT) for tid in self.terms}
        self.children: dict[str, list[str]] = {}
        for t in self.terms.values():
            t.parents = [p for p in t.parents if p in self.terms]
            for p in t.parents:
                self.children.setdefault(p, []).append(t.id)
        self._ancestors: dict[str, frozenset[str]] = {}

    def ancestors(self, tid: str) -> frozenset[str]:
        if tid not in self._ancestors:
            self._ancestors[tid] = frozenset()  # cycle guard
            out: set[str] = set()
            for p in self.terms[tid].parents:
                out.add(p)
                out |= self.ancestors(p)
            self._ancestors[tid] = frozenset(out)
        return self._ancestors[tid]

    def partners(self, tid: str, others: list[str]) -> list[str]:
        """The terms of ``others`` that an item of ``tid`` may name: train items only train terms."""
        train = self.side[tid] == "train"
        return [o for o in others if o != tid and (not train or self.side[o] == "train")]


def _relation_pair(onto: Ontology, term: Term, pool: list[str], rng: random.Random) -> tuple[str, str, str] | None:
    options: dict[str, tuple[str, str]] = {}
    syns = [s for s in term.synonyms if s.lower() != term.name.lower()]
    if syns:
        options["synonym"] = (term.name, rng.choice(syns))
    parents = onto.partners(term.id, term.parents)
    if parents:
        parent = onto.terms[rng.choice(parents)].name
        options["parent"] = (parent, term.name)
        options["child"] = (term.name, parent)
    mine = onto.ancestors(term.id)
    for _ in range(20):  # a random same-side term that is neither an ancestor nor a descendant
        other = rng.choice(pool)
        if other != term.id and other not in mine and term.id not in onto.ancestors(other):
            options["unrelated"] = (term.name, onto.terms[other].name)
            break
    if not options:
        return None
    label = rng.choice([r for r in RELATIONS if r in options])
    return (*options[label], label)


def _candidates(onto: Ontology, term: Term, pool: list[str], rng: random.Random) -> list[str]:
    siblings = sorted({c for p in term.parents for c in onto.children.get(p, ())})
    siblings = onto.partners(term.id, siblings)
    picked = rng.sample(siblings, min(len(siblings), N_CANDIDATES - 1))
    while len(picked) < N_CANDIDATES - 1:
        other = rng.choice(pool)
        if other != term.id and other not in picked:
            picked.append(other)
    names = [term.name, *(onto.terms[o].name for o in picked)]
    rng.shuffle(names)
    return names


@register_source("disease_ontology", raw_folder="disease_ontology", tasks=("task46",),
                 description="Disease Ontology terms -> task46 concept explanation + MedS-Ins task45/47/48 (hash split)")
def disease_ontology(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("disease_ontology", options)
    onto = Ontology(read_obo_terms(_find_obo(raw_dir)))
    pools = {"train": sorted(t for t, s in onto.side.items() if s == "train"), "test": sorted(onto.terms)}
    built = {spec.task_id: Splits() for spec in (EXPLANATION, SYNONYMS, RELATION, MATCHING)}
    for tid in sorted(onto.terms):
        term, side = onto.terms[tid], onto.side[tid]
        rng = random.Random(stable_seed(SALT, tid))
        pool = pools[side]
        if term.definition:
            getattr(built["task46"], side).append(instance(tid, term.name, term.definition))
            options_text = "\n".join(f"- {name}" for name in _candidates(onto, term, pool, rng))
            getattr(built["task48"], side).append(
                instance(tid, f"Definition: {term.definition}\nConcepts:\n{options_text}", term.name)
            )
        syns = [s for s in term.synonyms if s.lower() != term.name.lower()]
        if syns:
            getattr(built["task45"], side).append(instance(tid, term.name, "; ".join(syns)))
        pair = _relation_pair(onto, term, pool, rng)
        if pair is not None:
            a, b, label = pair
            getattr(built["task47"], side).append(instance(tid, f"Word1: {a}\nWord2: {b}", label))
    written: list[Path] = []
    for spec in (EXPLANATION, SYNONYMS, RELATION, MATCHING):
        extra: dict[str, Any] = {"release": _find_obo(raw_dir).name}
        if spec is not EXPLANATION:
            extra["medsins_only"] = True
        written += write_splits(out_dir, spec, built[spec.task_id], split_method=SPLIT_METHOD, extra=extra)
    return written
