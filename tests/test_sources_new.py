"""Disease Ontology, ADE corpus, AnEM and MedQuAD converters on the real raw data (counts from each SOURCE.md),
and ``data convert --definitions`` with the real RewriteDefinitions.json (read from ../shared, never copied)."""

from __future__ import annotations

import collections
import csv
import gzip
import json
import shutil

import pytest
from conftest import RAW, raw_dir
from typer.testing import CliRunner

from medsbench.cli import app
from medsbench.errors import MedsbenchError
from medsbench.sources import convert, convert_all, sources
from medsbench.sources.converters.ade import read_negatives, read_relations
from medsbench.sources.converters.disease_ontology import read_obo_terms
from medsbench.sources.converters.medquad import read_pairs
from medsbench.sources.definitions import load_official_definitions
from medsbench.tasks.catalog import catalog
from medsbench.tasks.format import read_task
from medsbench.tasks.validate import validate_file

SOURCES = {"disease_ontology": "disease_ontology", "ade_corpus_v2": "ade_corpus_v2", "anem": "anem", "medquad": "medquad"}
NEW_TASKS = {"task45", "task46", "task47", "task48", "task26", "task29", "task37", "task35", "task36", "task103"}
DEFINITIONS = RAW / "meds_ins_definitions" / "RewriteDefinitions.json"
runner = CliRunner()


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, dict]:
    """Each new converter run once: {task_id: {split: Task}}."""
    out = tmp_path_factory.mktemp("new_tasks")
    tasks: dict[str, dict] = collections.defaultdict(dict)
    for name, folder in SOURCES.items():
        for path in convert(name, raw_dir(folder), out):
            task = read_task(path)
            tasks[task.task_id][task.split] = task
    return tasks


def inputs(task) -> set[str]:
    return {i.input for i in task.instances}


def by_id(task) -> dict:
    return {i.id: i for i in task.instances}


def both(converted, task_id: str) -> list:
    return converted[task_id]["test"].instances + converted[task_id]["train"].instances


def test_every_task_has_both_splits_and_validates(converted):
    assert set(converted) == NEW_TASKS
    for task_id, splits in converted.items():
        assert set(splits) == {"test", "train"}, task_id
        for task in splits.values():
            assert [str(p) for p in validate_file(task.path) if p.level == "error"] == []
            assert len(inputs(task)) == len(task.instances), f"{task_id}: an input twice in one file"
        assert not inputs(splits["test"]) & inputs(splits["train"]), f"{task_id}: test input in train"
    result = runner.invoke(app, ["data", "validate", str(converted["task46"]["test"].path.parent)])
    assert result.exit_code == 0, result.output


def test_catalog_entries_point_at_their_converters():
    specs = sources()
    for task_id, name in (("task29", "ade_corpus_v2"), ("task46", "disease_ontology")):
        entry = catalog()[task_id]
        assert entry.availability == "public-here" and entry.source == name
        assert task_id in specs[name].tasks
    for name, folder in SOURCES.items():
        assert specs[name].raw_folder == folder
    assert not {"task45", "task47", "task48", "task26", "task37", "task35", "task36", "task103"} & set(catalog().tasks)


# ---------------------------------------------------------------- Disease Ontology


def test_obo_reader_counts_and_agrees_with_the_derived_tsv():
    folder = raw_dir("disease_ontology")
    terms = read_obo_terms(folder / "doid_2024-01-31.obo.gz")
    live = [t for t in terms if not t.obsolete]
    assert (len(terms), len(live)) == (13982, 11501)
    assert sum(bool(t.definition) for t in live) == 9146
    assert sum(bool(t.synonyms) for t in live) == 7934
    with open(folder / "doid_2024-01-31_terms.tsv", encoding="utf-8") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert set(rows) == {t.id for t in live}
    # The derived TSV keeps double spaces; it also turned the OBO escape "\n" into a bare "n" ("that nhas_...").
    escaped = set()
    with gzip.open(folder / "doid_2024-01-31.obo.gz", "rt", encoding="utf-8") as fh:
        term_id = None
        for line in fh:
            if line.startswith("id: "):
                term_id = line[4:].strip()
            elif line.startswith("def: ") and "\\n" in line:
                escaped.add(term_id)
    differ = set()
    for t in live:
        row = rows[t.id]
        assert " ".join(row["name"].split()) == t.name
        assert [" ".join(s.split()) for s in row["exact_synonyms"].split(" | ") if s] == t.synonyms
        assert row["is_a"].split(" | ") == t.parents or (not row["is_a"] and not t.parents)
        if " ".join(row["definition"].split()) != t.definition:
            differ.add(t.id)
            assert "\\n" not in t.definition and "\n" not in t.definition
    assert differ == escaped & {t.id for t in live if t.definition}
    assert 0 < len(differ) < 20


def test_do_counts_and_spot_checks(converted):
    explain = both(converted, "task46")
    assert len(explain) == 9146
    assert 800 < len(converted["task46"]["test"].instances) < 1000  # 9:1 by DOID hash
    assert len(both(converted, "task45")) == 7934
    assert len(both(converted, "task48")) == 9146
    assert 11000 < len(both(converted, "task47")) <= 11501
    pterygium = {i.id: i for i in explain}["DOID:0002116"]
    assert pterygium.input == "pterygium"
    assert pterygium.target.startswith("A corneal disease that is characterized by a triangular tissue growth located_in")
    syn = {i.id: i for i in both(converted, "task45")}["DOID:0002116"]
    assert syn.input == "pterygium" and "surfer's eye" in syn.target.split("; ")
    match = {i.id: i for i in both(converted, "task48")}["DOID:0002116"]
    assert match.target == "pterygium" and match.input.startswith("Definition: A corneal disease")
    names = [line[2:] for line in match.input.split("\nConcepts:\n")[1].split("\n")]
    assert len(names) == 4 and "pterygium" in names and len(set(names)) == 4
    labels = collections.Counter(i.target for i in both(converted, "task47"))
    assert set(labels) == {"synonym", "parent", "child", "unrelated"} and min(labels.values()) > 1000
    test_labels = collections.Counter(i.target for i in converted["task47"]["test"].instances)
    assert min(test_labels.values()) > 100  # test pairs may name train terms, so every relation appears


def test_do_training_never_names_or_defines_a_test_term(converted):
    do_tasks = ("task45", "task46", "task47", "task48")
    test_ids = {i.id for tid in do_tasks for i in converted[tid]["test"].instances}
    for tid in do_tasks:  # one split of the DOIDs for the four tasks
        assert not {i.id for i in converted[tid]["train"].instances} & test_ids, tid
    terms = {t.id: t for t in read_obo_terms(raw_dir("disease_ontology") / "doid_2024-01-31.obo.gz") if not t.obsolete}
    side = {i.id: s for tid in do_tasks for s in ("test", "train")
            for i in converted[tid][s].instances}
    test_names = {terms[i].name for i, s in side.items() if s == "test"}
    test_defs = {terms[i].definition for i, s in side.items() if s == "test" and terms[i].definition}
    for inst in converted["task47"]["train"].instances:
        words = [line.split(": ", 1)[1] for line in inst.input.split("\n")]
        assert not set(words) & test_names, inst.input
    for inst in converted["task48"]["train"].instances:
        definition, listed = inst.input.split("\nConcepts:\n")
        assert definition[len("Definition: "):] not in test_defs
        assert not {line[2:] for line in listed.split("\n")} & test_names, inst.id
    for inst in converted["task46"]["train"].instances + converted["task45"]["train"].instances:
        assert inst.input not in test_names


# ---------------------------------------------------------------- ADE corpus


def test_ade_counts_match_source(converted):
    folder = raw_dir("ade_corpus_v2")
    doses = list(read_relations(folder / "DRUG-DOSE.rel"))
    effects = list(read_relations(folder / "DRUG-AE.rel"))
    negatives = list(read_negatives(folder / "ADE-NEG.txt"))
    assert (len(doses), len(effects), len(negatives)) == (279, 6821, 16695)
    assert len({(r.sentence, r.drug) for r in doses}) == 250 == len(both(converted, "task29"))
    assert 15 <= len(converted["task29"]["test"].instances) <= 35  # the paper kept 23 of its SNI split
    assert len(both(converted, "task26")) == 4271
    labels = collections.Counter(i.target for i in both(converted, "task37"))
    assert labels == {"adverse drug event": 4271, "non-adverse drug event": 16625}


def test_ade_spot_checks(converted):
    dose = {i.input: i for i in both(converted, "task29")}
    mtx = dose[
        "Sentence: An episode of subacute encephalopathy after the infusion of a moderate dose of methotrexate "
        "(1500 mg/m2) (MTX) is reported in a young adult with metastastic gastric cancer.\nDrug: methotrexate"
    ]
    assert mtx.output == ["1500 mg/m2"]
    several = [i for i in dose.values() if len(i.output) > 1]
    assert len(several) == 17 and all(len(set(i.output)) == len(i.output) for i in several)
    sentence = "Intravenous azithromycin-induced ototoxicity."
    assert {i.input: i for i in both(converted, "task26")}[sentence].target == "azithromycin."
    classes = {i.input: i.target for i in both(converted, "task37")}
    assert classes[sentence] == "adverse drug event"
    neg = ("Clioquinol intoxication occurring in the treatment of acrodermatitis enteropathica with reference to "
           "SMON outside of Japan.")
    assert classes[neg] == "non-adverse drug event"


def test_ade_sentences_keep_one_side_across_tasks(converted):
    test_sentences = {i.input.split("\nDrug: ")[0][len("Sentence: "):] for i in converted["task29"]["test"].instances}
    test_sentences |= inputs(converted["task26"]["test"])
    assert test_sentences <= inputs(converted["task37"]["test"])
    for tid in ("task26", "task37"):
        assert not test_sentences & inputs(converted[tid]["train"]), tid
    train_doses = {i.input.split("\nDrug: ")[0][len("Sentence: "):] for i in converted["task29"]["train"].instances}
    assert not train_doses & inputs(converted["task37"]["test"])


# ---------------------------------------------------------------- AnEM


def test_anem_counts_and_licence(converted):
    # Sentences mentioning the type, train / test (SOURCE.md table).
    assert [len(converted["task35"][s].instances) for s in ("train", "test")] == [259, 213]
    assert [len(converted["task36"][s].instances) for s in ("train", "test")] == [137, 100]
    for tid in ("task35", "task36"):
        for task in converted[tid].values():
            ours = task.meta["medsbench"]
            assert ours["license"].startswith("CC BY-SA 3.0")
            assert "nactem.ac.uk/anatomy" in ours["attribution"] and ours["medsins_only"] is True
            assert task.categories == ["Named Entity Recognition"]
            for inst in task.instances:
                assert inst.target.endswith(".") and inst.target != "There is no related enetity."
                assert all(e in inst.input for e in inst.target[:-1].split(", ")), inst.id
    cells = [i for i in converted["task35"]["test"].instances if i.id.startswith("task35:AnEM.test:")]
    assert len(cells) == 213
    mentions = sum(len(i.target[:-1].split(", ")) for i in converted["task35"]["train"].instances)
    assert 400 < mentions <= 472  # 472 Cell mentions, repeats within a sentence listed once


def test_licences_of_the_other_sources(converted):
    assert converted["task46"]["test"].meta["medsbench"]["license"].startswith("CC0")
    assert converted["task103"]["test"].meta["medsbench"]["license"].startswith("CC BY 4.0")
    assert "research use only" in converted["task29"]["test"].meta["medsbench"]["license"]


# ---------------------------------------------------------------- MedQuAD


def test_medquad_counts_and_spot_check(converted):
    pairs = list(read_pairs(raw_dir("medquad")))
    assert len(pairs) == 16407
    per_subset = collections.Counter(item_id.split("/")[0] for item_id, _, _ in pairs)
    assert per_subset["2_GARD_QA"] == 5389 and per_subset["3_GHR_QA"] == 5430 and per_subset["9_CDC_QA"] == 270
    assert len({item_id for item_id, _, _ in pairs}) == 16407
    task = both(converted, "task103")
    assert len(task) == len({q for _, q, _ in pairs})
    assert sum(len(i.output) for i in task) == len({(q, a) for _, q, a in pairs})
    assert 0.08 < len(converted["task103"]["test"].instances) / len(task) < 0.12
    first = {i.id: i for i in task}["1_CancerGov_QA/0000001_1#0000001_1-1"]
    assert first.input == "What is (are) Adult Acute Lymphoblastic Leukemia ?"
    assert first.target.startswith("Key Points - Adult acute lymphoblastic leukemia (ALL) is a type of cancer")
    assert "\n" not in first.target and "  " not in first.target


# ---------------------------------------------------------------- official definitions


def official_texts() -> dict[str, str]:
    if not DEFINITIONS.is_file():
        pytest.skip(f"{DEFINITIONS} not present")
    data = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    return {k: v["original_def"] for k, v in data.items()}


def test_load_official_definitions_real_file():
    texts = official_texts()
    defs = load_official_definitions(DEFINITIONS)
    assert len(defs) == len(texts) > 0 and defs.texts == texts  # every task of the file, word for word
    assert "task4" not in defs and "task126" in defs


def test_definitions_cli_single_converter(tmp_path):
    texts = official_texts()
    result = runner.invoke(app, ["data", "convert", "ade_corpus_v2", "--raw", str(raw_dir("ade_corpus_v2")),
                                 "--out", str(tmp_path), "--definitions", str(DEFINITIONS)])
    assert result.exit_code == 0, result.output
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 6
    for path in files:
        task = read_task(path)
        ours = task.meta["medsbench"]
        assert task.meta["Definition"] == [texts[task.task_id]]
        assert ours["definition_source"] == "official original_def from RewriteDefinitions.json"
        assert len(ours["definition_file_sha256"]) == 64
        assert ours["medsbench_definition"] and ours["medsbench_definition"] != texts[task.task_id]


def test_definitions_keep_ours_where_the_file_has_no_entry(tmp_path):
    sidecar = tmp_path / "defs.json"
    sidecar.write_text(json.dumps({"task35": {"original_def": ["", "Cells, please."], "auto_rewrite_def": []},
                                   "task999": {"original_def": "unused"}}), encoding="utf-8")
    out = tmp_path / "out"
    plain = tmp_path / "plain"
    convert("anem", raw_dir("anem"), plain)
    defs = load_official_definitions(sidecar)
    written = convert("anem", raw_dir("anem"), out, definitions=defs)
    for path in written:
        task, before = read_task(path), read_task(plain / path.name)
        ours = task.meta["medsbench"]
        if task.task_id == "task35":
            assert task.meta["Definition"] == ["Cells, please."]
            assert ours["medsbench_definition"] == before.meta["Definition"][0]
        else:
            assert task.meta["Definition"] == before.meta["Definition"]
            assert ours["definition_source"] == "medsbench" and "defs.json" in ours["definition_note"]
        assert [i.to_json() for i in task.instances] == [i.to_json() for i in before.instances]
    assert read_task(plain / written[0].name).meta["medsbench"]["definition_source"] == "medsbench"


def test_definitions_with_convert_all(tmp_path):
    texts = official_texts()
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("anem", "ade_corpus_v2"):
        (raw / name).symlink_to(raw_dir(name), target_is_directory=True)
    out = tmp_path / "tasks"
    result = runner.invoke(app, ["data", "convert", "--all", "--raw", str(raw), "--out", str(out),
                                 "--definitions", str(DEFINITIONS)])
    assert result.exit_code == 0, result.output
    found = {read_task(p).task_id: read_task(p) for p in out.glob("*.test.json")}
    assert set(found) == {"task26", "task29", "task37", "task35", "task36"}
    for task_id, task in found.items():
        assert task.meta["Definition"] == [texts[task_id]]
    report = convert_all(raw, tmp_path / "again")  # without the option: our own definitions
    for path in report.files:
        task = read_task(path)
        assert task.meta["medsbench"]["definition_source"] == "medsbench"
        assert task.meta["Definition"] != [texts[task.task_id]]


BAD_DEFINITIONS = {  # file content -> the error it must give
    "[1, 2]": "must be one JSON object", '{"task1": {"auto_rewrite_def": []}}': "task1: original_def missing",
    '{"task1": {"original_def": 3}}': "task1: original_def missing", "{}": "no task entries",
    '{"task1": ': "invalid JSON",
}


@pytest.mark.parametrize(("content", "message"), BAD_DEFINITIONS.items())
def test_bad_definitions_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "defs.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MedsbenchError, match=message) as exc:
        load_official_definitions(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    result = runner.invoke(app, ["data", "convert", "anem", "--raw", str(raw_dir("anem")), "--out",
                                 str(tmp_path / "o"), "--definitions", str(path)])
    assert result.exit_code != 0 and not (tmp_path / "o").exists()


def test_wrong_folders_name_the_path(tmp_path):
    for name, wrong in (("disease_ontology", "anem"), ("ade_corpus_v2", "medquad"), ("anem", "medquad"),
                        ("medquad", "anem")):
        folder = raw_dir(wrong)
        with pytest.raises(MedsbenchError) as exc:
            convert(name, folder, tmp_path)
        assert str(folder) in str(exc.value), name
    assert not list(tmp_path.iterdir())


def test_anem_layout_with_split_suffix_files_in_a_copy(tmp_path):
    """The IOB reader takes ``<corpus>.train``/``<corpus>.test`` names; other files in the folder are ignored."""
    folder = tmp_path / "anem"
    folder.mkdir()
    for name in ("AnEM.train", "AnEM.test", "LICENSE", "README.rst", "entity-list.txt"):
        shutil.copy(raw_dir("anem") / name, folder / name)
    written = convert("anem", folder, tmp_path / "out")
    assert sorted(p.name for p in written) == ["task35.test.json", "task35.train.json", "task36.test.json",
                                               "task36.train.json"]
    (folder / "AnEM.test").unlink()
    with pytest.raises(MedsbenchError, match="AnEM.test"):
        convert("anem", folder, tmp_path / "out2")
