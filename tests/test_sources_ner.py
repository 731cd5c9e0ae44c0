"""NER converters: generic IOB and brat on never-seen synthetic corpora, real corpora vs SOURCE.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import raw_dir

from medsbench.errors import MedsbenchError
from medsbench.sources import convert
from medsbench.sources.converters._ner import NO_ENTITY, detokenize, ner_gold
from medsbench.sources.converters.brat import read_brat_folder, read_split_lists, split_sentences
from medsbench.sources.converters.iob import read_iob
from medsbench.tasks.format import read_task
from medsbench.tasks.validate import validate_file


def official_entities(text: str) -> set[str]:
    """The official MedS-Bench NER parsing (reference mode), quirks included."""
    text = text.replace(".", "").strip().lower()
    if text == "there is no related enetity":
        return set()
    return set(text[:-1].split(", "))


def official_f1(golds: list[str], preds: list[str]) -> float:
    tp = fp = fn = 0
    for g, p in zip(golds, preds):
        gs, ps = official_entities(g), official_entities(p)
        tp, fp, fn = tp + len(gs & ps), fp + len(ps - gs), fn + len(gs - ps)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return 100 * 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def errors_of(path: Path) -> list[str]:
    return [str(p) for p in validate_file(path) if p.level == "error"]


def check_task_pair(test_path: Path, train_path: Path) -> tuple[list, list]:
    test, train = read_task(test_path), read_task(train_path)
    assert errors_of(test_path) == [] and errors_of(train_path) == []
    test_inputs = {i.input for i in test.instances}
    assert not test_inputs & {i.input for i in train.instances}, "a test input leaks into train"
    assert len({i.input for i in train.instances}) == len(train.instances)
    for inst in test.instances + train.instances:
        gold = inst.target
        assert gold == NO_ENTITY or (gold.endswith(".") and gold != "."), gold
    golds = [i.target for i in test.instances]
    assert official_f1(golds, golds) == pytest.approx(100.0)
    return test.instances, train.instances


# ---------------------------------------------------------------- gold format


def test_gold_format_and_official_scorer():
    assert ner_gold(["aspirin", "Ibuprofen", "aspirin", "ibuprofen"]) == "aspirin, Ibuprofen."
    assert ner_gold([]) == NO_ENTITY == "There is no related enetity."
    # The misspelt sentinel is the official empty set; the correct spelling would not be.
    assert official_entities(NO_ENTITY) == set()
    assert official_entities("There is no related entity.") != set()
    # Gold as prediction is 100 and an empty answer on an entity sentence costs recall.
    golds = [ner_gold(["cisplatin", "5 - FU"]), NO_ENTITY, ner_gold(["Ca2 +"])]
    assert official_f1(golds, golds) == pytest.approx(100.0)
    assert official_f1(golds, [NO_ENTITY] * 3) == 0.0


def test_detokenize_keeps_entities_substrings():
    tokens = ["Effects", "of", "cisplatin", "(", "CDDP", ")", ",", "5", "-", "FU", "and", "Ca2", "+", "."]
    sent = detokenize(tokens)
    assert sent == "Effects of cisplatin (CDDP), 5 - FU and Ca2 +."
    for a in range(len(tokens)):
        for b in range(a + 1, len(tokens) + 1):
            assert detokenize(tokens[a:b]) in sent


# ---------------------------------------------------------------- generic IOB on a never-seen corpus

SYN_TRAIN = """The\tO
vet\tO
gave\tO
Feline\tB-Drug
interferon\tI-Drug
to\tO
the\tO
cat\tB-Animal
.\tO

Dogs\tI-Animal
and\tO
cats\tI-Animal
tolerate\tO
it\tO
.\tO
"""
SYN_DEVEL = """-DOCSTART-\tO

Meloxicam\tB-Drug
(\tO
Metacam\tB-Drug
)\tO
helps\tO
.\tO
"""
SYN_TEST = """No\tO
drug\tO
here\tO
.\tO

The\tO
cat\tB-Animal
got\tO
meloxicam\tB-Drug
,\tO
then\tO
Meloxicam\tB-Drug
again\tO
.\tO

Dogs\tI-Animal
and\tO
cats\tI-Animal
tolerate\tO
it\tO
.\tO
"""


def write_corpus(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_generic_iob_never_seen_corpus(tmp_path):
    corpus = write_corpus(tmp_path / "VetNER-IOB", {"train.tsv": SYN_TRAIN, "devel.tsv": SYN_DEVEL, "test.tsv": SYN_TEST})
    sents = read_iob(corpus / "train.tsv")
    assert [e for s in sents for e in s.entities] == [
        ("Drug", "Feline interferon"), ("Animal", "cat"), ("Animal", "Dogs"), ("Animal", "cats")]  # IOB1 starts
    out = tmp_path / "out"
    paths = convert("iob_ner", corpus, out, task_id="vet_drug_ner", slug="vet drugs", entity="drug")
    assert sorted(p.name for p in paths) == ["vet_drug_ner.test.json", "vet_drug_ner.train.json"]
    test, train = check_task_pair(out / "vet_drug_ner.test.json", out / "vet_drug_ner.train.json")
    assert [(i.input, i.target) for i in test] == [
        ("No drug here.", NO_ENTITY),
        ("The cat got meloxicam, then Meloxicam again.", "meloxicam."),  # case-insensitive dedupe
        ("Dogs and cats tolerate it.", NO_ENTITY),
    ]
    # the duplicate sentence of train is dropped there, the devel file joins train
    assert [(i.input, i.target) for i in train] == [
        ("The vet gave Feline interferon to the cat.", "Feline interferon."),
        ("Meloxicam (Metacam) helps.", "Meloxicam, Metacam."),
    ]
    meta = read_task(out / "vet_drug_ner.test.json").meta
    assert meta["medsbench"]["slug"] == "vet_drugs" and meta["medsbench"]["entity_types"] == ["Drug"]
    assert "drug" in meta["Definition"][0] and NO_ENTITY in meta["Definition"][0]
    # all types by default: both entity kinds, in order of appearance
    convert("iob_ner", corpus, tmp_path / "all", task_id="vet_ner")
    test_all = read_task(tmp_path / "all" / "vet_ner.test.json").instances
    assert test_all[1].target == "cat, meloxicam."


def test_generic_iob_cli_and_hash_split_without_test_file(tmp_path, capsys):
    from medsbench.cli import main

    sentences = [f"Patient{i}\tO\ngot\tO\ndrug{i}\tB-Drug\n" for i in range(60)]
    corpus = write_corpus(tmp_path / "nosplit", {"all.tsv": "\n".join(sentences)})
    with pytest.raises(SystemExit) as exc:
        main(["data", "convert", "iob_ner", "--raw", str(corpus), "--out", str(tmp_path / "o"),
              "--task-id", "nosplit_ner", "--entity", "Drug"])
    assert exc.value.code in (0, None)
    test, train = check_task_pair(tmp_path / "o" / "nosplit_ner.test.json", tmp_path / "o" / "nosplit_ner.train.json")
    assert len(test) + len(train) == 60 and 0 < len(test) < 20
    assert "hash" in read_task(tmp_path / "o" / "nosplit_ner.test.json").meta["medsbench"]["split_method"]


def test_iob_bad_inputs(tmp_path, capsys):
    from medsbench.cli import main

    with pytest.raises(MedsbenchError, match="no IOB files"):
        convert("iob_ner", write_corpus(tmp_path / "empty", {"notes.md": "hello"}), tmp_path / "o")
    bad = write_corpus(tmp_path / "bad", {"train.tsv": "a\tO\nb\tX-Drug\n"})
    with pytest.raises(MedsbenchError, match=r"train\.tsv:2: tag 'X-Drug'"):
        convert("iob_ner", bad, tmp_path / "o")
    csvish = write_corpus(tmp_path / "csv", {"test.tsv": "token,tag\naspirin,B-Drug\n"})
    with pytest.raises(MedsbenchError, match=r"test\.tsv:1: expected 'token<TAB>tag'"):
        convert("iob_ner", csvish, tmp_path / "o")
    good = write_corpus(tmp_path / "good", {"test.tsv": SYN_TEST})
    with pytest.raises(MedsbenchError, match="entity type Gene not in this corpus.*Animal, Drug"):
        convert("iob_ner", good, tmp_path / "o", entity="Gene")
    # through the CLI: one line, exit 1, no traceback; a wrong dataset folder for a named converter
    with pytest.raises(SystemExit) as exc:
        main(["data", "convert", "bc5cdr_chem", "--raw", str(good), "--out", str(tmp_path / "o")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "BC5CDR-chem-IOB" in err and "Traceback" not in err


# ---------------------------------------------------------------- real IOB corpora


@pytest.mark.parametrize(
    "folder, sub, counts",
    [
        ("bc5cdr", "BC5CDR-chem-IOB", {"train": (4560, 5203), "devel": (4581, 5347), "test": (4797, 5385)}),
        ("bc5cdr", "BC5CDR-disease-IOB", {"train": (4560, 4182), "devel": (4581, 4246), "test": (4797, 4424)}),
        ("ncbi_disease", "NCBI-disease-IOB", {"train": (5424, 5134), "devel": (923, 787), "test": (940, 960)}),
        ("bc2gm", "BC2GM-IOB", {"train": (12574, 15197), "devel": (2519, 3061), "test": (5038, 6325)}),
    ],
)
def test_real_iob_counts_match_source_md(folder, sub, counts):
    base = raw_dir(folder) / sub
    for split, (n_sent, n_ent) in counts.items():
        sents = read_iob(base / f"{split}.tsv")
        assert (len(sents), sum(len(s.entities) for s in sents)) == (n_sent, n_ent)


def test_bionlp13cg_type_counts_match_source_md():
    sents = read_iob(raw_dir("bionlp13cg") / "BioNLP13CG-IOB" / "test.tsv")
    types = [t for s in sents for t, _ in s.entities]
    assert len(sents) == 1906
    assert (types.count("Cell"), types.count("Organism_substance"), types.count("Cancer")) == (1013, 102, 924)


@pytest.fixture(scope="module")
def bc5cdr_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("bc5cdr")
    convert("bc5cdr_chem", raw_dir("bc5cdr"), out)
    convert("bc5cdr_disease", raw_dir("bc5cdr"), out)
    return out


@pytest.mark.parametrize("task", ["task126_bc5cdr_chem", "task127_bc5cdr_disease"])
def test_bc5cdr_tasks(bc5cdr_out, task):
    test, train = check_task_pair(bc5cdr_out / f"{task}.test.json", bc5cdr_out / f"{task}.train.json")
    # every official test sentence, de-duplicated (4797 sentences, 4788 distinct)
    assert len(test) == 4788
    assert 9000 < len(train) < 4560 + 4581
    with_ents = [i for i in test if i.target != NO_ENTITY]
    assert len(with_ents) > 2000
    for inst in with_ents:  # entities are substrings of the input
        assert all(e in inst.input for e in inst.target[:-1].split(", ") if ", " not in e)
    meta = read_task(bc5cdr_out / f"{task}.test.json").meta
    assert meta["medsbench"]["task_id"] == task.split("_")[0] and meta["Categories"] == ["Named Entity Recognition"]


def test_bc5cdr_sample_is_seeded(tmp_path):
    a = convert("bc5cdr_chem", raw_dir("bc5cdr"), tmp_path / "a", sample=1500)
    b = convert("bc5cdr_chem", raw_dir("bc5cdr"), tmp_path / "b", sample=1500)
    ids_a = [i.id for i in read_task(a[0]).instances]
    assert len(ids_a) == 1500 and ids_a == [i.id for i in read_task(b[0]).instances]
    assert read_task(a[0]).meta["medsbench"]["test_sample"] == 1500


@pytest.mark.parametrize(
    "source, files",
    [
        ("ncbi_disease", ["ncbi_disease_ner"]),
        ("bc2gm", ["bc2gm_ner"]),
        ("bionlp13cg", ["bionlp13cg_cell_ner", "bionlp13cg_organism_substance_ner"]),
    ],
)
def test_ins_ner_tasks(tmp_path, source, files):
    paths = convert(source, raw_dir(source), tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{f}.{s}.json" for f in files for s in ("test", "train"))
    for name in files:
        test, _ = check_task_pair(tmp_path / f"{name}.test.json", tmp_path / f"{name}.train.json")
        meta = read_task(tmp_path / f"{name}.test.json").meta
        assert meta["medsbench"]["task_id"] == name and meta["medsbench"]["bench_category"] is None
        assert any(i.target != NO_ENTITY for i in test)


# ---------------------------------------------------------------- brat


def test_sentence_splitting_rule():
    text = "E. coli and S. aureus grew. Smith et al. Reported it.\nNew line here! 3 samples (n=3). Fig. 2 shows it."
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "E. coli and S. aureus grew.", "Smith et al. Reported it.", "New line here!", "3 samples (n=3).",
        "Fig. 2 shows it."]
    # never inside an entity
    protected = [(text.index("grew. Smith"), text.index("grew. Smith") + 11)]
    assert len(split_sentences(text, protected)) == 4


def test_generic_brat_tiny_folder(tmp_path):
    docs = tmp_path / "zoo" / "standoff"
    docs.mkdir(parents=True)
    texts = {
        "d1": "Mice (Mus musculus) were infected. Humans were not.\n",
        "d2": "No organism is named here. Nothing at all.",
        "d3": "The E. coli strain and the mouse. Another E. coli.",
    }

    def ann(text: str, spans: list[tuple[str, str, int]]) -> str:
        lines = []
        for n, (etype, mention, nth) in enumerate(spans, 1):
            start = -1
            for _ in range(nth + 1):
                start = text.index(mention, start + 1)
            lines.append(f"T{n}\t{etype} {start} {start + len(mention)}\t{mention}\nN{n}\tReference T{n} Taxonomy:1")
        return "\n".join(lines) + "\n"

    anns = {
        "d1": ann(texts["d1"], [("Species", "Mus musculus", 0), ("Species", "Humans", 0), ("Protein", "Mice", 0)]),
        "d2": "",
        "d3": ann(texts["d3"], [("Species", "E. coli", 0), ("Species", "mouse", 0), ("Species", "E. coli", 1)]),
    }
    for doc, text in texts.items():
        (docs / f"{doc}.txt").write_text(text, encoding="utf-8")
        (docs / f"{doc}.ann").write_text(anns[doc], encoding="utf-8")
    split = tmp_path / "zoo" / "split"
    split.mkdir()
    (split / "train.txt").write_text("d1\nd2\n")
    (split / "test.txt").write_text("d3\n")
    paths = convert("brat_ner", tmp_path / "zoo", tmp_path / "out", task_id="zoo_species_ner", entity="species")
    assert sorted(p.name for p in paths) == ["zoo_species_ner.test.json", "zoo_species_ner.train.json"]
    test, train = check_task_pair(*sorted(paths))
    assert [(i.input, i.target) for i in test] == [
        ("The E. coli strain and the mouse.", "E. coli, mouse."), ("Another E. coli.", "E. coli.")]
    assert [(i.input, i.target) for i in train] == [
        ("Mice (Mus musculus) were infected.", "Mus musculus."), ("Humans were not.", "Humans."),
        ("No organism is named here.", NO_ENTITY), ("Nothing at all.", NO_ENTITY)]
    # offsets that do not match the text name the file and line
    (docs / "d2.ann").write_text("T1\tSpecies 0 2\tXY\n", encoding="utf-8")
    with pytest.raises(MedsbenchError, match=r"d2\.ann:1: annotation text 'XY' differs"):
        convert("brat_ner", tmp_path / "zoo", tmp_path / "out")
    with pytest.raises(MedsbenchError, match="no brat standoff files"):
        convert("brat_ner", split, tmp_path / "out")


def test_species800_matches_source_md(tmp_path):
    raw = raw_dir("species800")
    docs, roles = read_brat_folder(raw), read_split_lists(raw)
    per = {"train": [0, 0], "test": [0, 0]}
    for doc in docs:
        per[roles[doc.id]][0] += 1
        per[roles[doc.id]][1] += sum(e.type == "Species" for e in doc.entities)
    assert per == {"train": [560 + 80, 2557 + 384], "test": [160, 767]}
    paths = convert("species800", raw, tmp_path)
    test, train = check_task_pair(tmp_path / "task128_species800.test.json", tmp_path / "task128_species800.train.json")
    assert sorted(p.name for p in paths) == ["task128_species800.test.json", "task128_species800.train.json"]
    assert 1300 < len(test) < 1700 and len(train) > 5000  # the paper samples 1,500 test sentences
    for inst in test + train:
        if inst.target != NO_ENTITY:
            assert all(e in inst.input for e in inst.target[:-1].split(", "))
    with pytest.raises(MedsbenchError, match="split/test.txt"):
        convert("species800", raw_dir("bc5cdr"), tmp_path)


def test_ddi_drug_ner(tmp_path):
    paths = convert("ddi_corpus", raw_dir("ddi_corpus"), tmp_path)
    assert sorted(p.name for p in paths) == ["ddi_drug_ner.test.json", "ddi_drug_ner.train.json"]
    test, train = check_task_pair(tmp_path / "ddi_drug_ner.test.json", tmp_path / "ddi_drug_ner.train.json")
    assert 600 < len(test) < 700 and 6000 < len(train) < 7000
    assert json.loads((tmp_path / "ddi_drug_ner.test.json").read_text())["medsbench"]["license"].startswith("CC BY-NC")
    with pytest.raises(MedsbenchError, match="DDICorpus-2013.zip"):
        convert("ddi_corpus", raw_dir("species800"), tmp_path)
