"""Per-category stop strings of the evaluation protocols (medsbench.prompts.protocols).

``--protocol medsbench`` ends generation at a new demo block for every category and, where a
category's answer is a single line, also at a blank line; ``official`` and ``paper`` send no stop
string. Checked here: the data (``stops_for``, ``to_json``, the named deviation), that the stops
reach the backend requests and the manifest, that they key the cache (changing them regenerates),
and that the hf backend cuts a real generation of a tiny model at a category stop.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_runs import CountingBackend, make_workspace

from medsbench.prompts.protocols import MEDSBENCH, PROTOCOLS, get_protocol
from medsbench.tasks.catalog import catalog
from medsbench.tasks.format import Instance, write_task

BLANK_LINE = "\n\n"


class Recording(CountingBackend):
    """The deterministic fake model of the run tests, recording each request's stop strings by task."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.stops: dict[str, set[tuple[str, ...]]] = {}

    def generate(self, requests):
        for r in requests:
            task = "task57" if "select the correct answer" in r.prompt else "task126"
            if "hallmarks" in r.prompt:
                task = "task106"
            self.stops.setdefault(task, set()).add(tuple(r.stop))
        return super().generate(requests)


def _add_hoc(ws: Path, n: int = 4) -> None:
    """A text-classification task file shaped like HoC (synthetic items; labels as the converter writes them)."""
    meta = {"Definition": ["Name the hallmarks of cancer the abstract supports."], "Categories": ["Text Classification"]}
    labels = ["sustaining proliferative signaling", "resisting cell death", "activating invasion and metastasis"]
    write_task(ws / "tasks" / "task106_hoc.test.json", meta,
               [Instance(f"h{i}", f"Abstract {i} about tumour growth.", [labels[i % 3]]) for i in range(n)])
    write_task(ws / "tasks" / "task106_hoc.train.json", meta,
               [Instance(f"ht{i}", f"Training abstract {i}.", [labels[(i + 1) % 3]]) for i in range(6)])


def test_stops_for_joins_the_protocol_stop_and_the_category_stop():
    table = dict(MEDSBENCH.category_stop)
    assert table, "the medsbench protocol adopts per-category stops"
    assert set(table) <= set(catalog().categories)  # keys are catalog categories
    for category in catalog().categories:
        stops = MEDSBENCH.stops_for(category)
        assert stops[: len(MEDSBENCH.stop)] == MEDSBENCH.stop == ("\nInput:",)  # a new demo block always ends it
        assert stops[len(MEDSBENCH.stop):] == tuple(s for s in table.get(category, ()) if s not in MEDSBENCH.stop)
        assert len(set(stops)) == len(stops)
    # Long-form answers may hold blank lines (paragraphs): no extra stop there.
    for category in ("summarization", "explanation", "rationale", "mcqa"):
        assert MEDSBENCH.stops_for(category) == ("\nInput:",)
    for name in ("official", "paper"):
        p = get_protocol(name)
        assert p.stop == () and p.category_stop == ()
        assert all(p.stops_for(c) == () for c in catalog().categories)
    variant = dataclasses.replace(MEDSBENCH, category_stop=(("ner", ("\n\n", "\nInput:")),))
    assert variant.stops_for("ner") == ("\nInput:", "\n\n")  # no repeats, protocol stops first


def test_category_stops_are_recorded_in_to_json_and_named_as_a_deviation():
    record = MEDSBENCH.to_json()
    assert record["stop"] == ["\nInput:"]
    assert record["category_stop"] == {c: list(s) for c, s in MEDSBENCH.category_stop}
    json.dumps(record)  # the manifest/results record stays plain JSON
    named = [d for d in MEDSBENCH.deviations if "per-category stop strings" in d]
    assert len(named) == 1
    for category in dict(MEDSBENCH.category_stop):  # every category with a stop is named in the deviation
        assert category in named[0]
    for p in PROTOCOLS.values():
        assert p.to_json()["category_stop"] == {c: list(s) for c, s in p.category_stop}
    assert PROTOCOLS["official"].to_json()["stop"] == [] and PROTOCOLS["official"].to_json()["category_stop"] == {}


def test_category_stops_reach_the_backend_the_manifest_and_the_results(tmp_path):
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder

    ws = make_workspace(tmp_path / "ws", n_mcqa=3, n_ner=3)
    _add_hoc(ws)
    ours = Recording()
    res = evaluate(ours, "task57,task106,task126", workspace=ws, out=tmp_path / "a", progress=False)
    expected = {"task57": MEDSBENCH.stops_for("mcqa"), "task106": MEDSBENCH.stops_for("text_classification"),
                "task126": MEDSBENCH.stops_for("ner")}
    assert ours.stops == {t: {s} for t, s in expected.items()}
    assert expected["task106"] != expected["task57"]  # the category stop is really there
    manifest = RunFolder(tmp_path / "a").manifest()
    assert manifest.generation["stop"] == {t: list(s) for t, s in expected.items()}
    assert manifest.deviations == list(MEDSBENCH.deviations)
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert any("per-category stop strings" in d for d in results["protocol_deviations"])
    assert res.n_items == 10
    for name in ("official", "paper"):
        theirs = Recording()
        evaluate(theirs, "task57,task106,task126", workspace=ws, out=tmp_path / name, progress=False, protocol=name,
                 cache=tmp_path / f"{name}.sqlite")  # paper shares official prompts outside MCQA: no cache hits
        assert theirs.stops == {t: {()} for t in expected}  # the official behaviour: no stop string at all
        assert RunFolder(tmp_path / name).manifest().generation["stop"] == {}


def test_changing_a_category_stop_regenerates_instead_of_reusing_the_cache(tmp_path, monkeypatch):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws", n_mcqa=3, n_ner=3)
    _add_hoc(ws)
    first = Recording()
    evaluate(first, "task57,task106,task126", workspace=ws, out=tmp_path / "a", progress=False)
    assert len(first.prompts) == 10
    again = Recording()
    evaluate(again, "task57,task106,task126", workspace=ws, out=tmp_path / "b", progress=False)
    assert again.prompts == []  # same stops: every item from the cache
    changed = dataclasses.replace(MEDSBENCH, category_stop=(("text_classification", ("###",)),))
    monkeypatch.setitem(PROTOCOLS, "medsbench", changed)
    third = Recording()
    evaluate(third, "task57,task106,task126", workspace=ws, out=tmp_path / "c", progress=False)
    # Exactly the tasks whose stop strings changed are generated again; the others come from the cache.
    regenerated = set(third.stops)
    assert "task106" in regenerated and third.stops["task106"] == {("\nInput:", "###")}
    assert "task57" not in regenerated
    ner_changed = MEDSBENCH.stops_for("ner") != changed.stops_for("ner")
    assert ("task126" in regenerated) == ner_changed
    assert len(third.prompts) == 4 + (3 if ner_changed else 0)


# -- a real cut in the hf backend -------------------------------------------------------------------------------


def _chain_model(tiny_model_dir: Path, out: Path, word: str) -> Path:
    """The tiny test model rewired to answer ``word`` then a blank line, over and over.

    The blocks' output projections are zeroed (the last hidden state is the current token's embedding)
    and an untied output layer maps: newline -> ``word``, ``word`` -> a blank-line token, blank line ->
    ``word``. Greedy output after a prompt ending in a newline: ``word\\n\\nword\\n\\n...``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.add_tokens([BLANK_LINE])
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    (nl,) = tok.encode("\n", add_special_tokens=False)
    (blank,) = tok.encode(BLANK_LINE, add_special_tokens=False)
    (w,) = tok.encode(word, add_special_tokens=False)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight
        unit = emb / emb.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()  # what the final RMSNorm yields
        head = torch.zeros_like(emb)
        head[w] = unit[nl] + unit[blank]
        head[blank] = unit[w]
        model.config.tie_word_embeddings = False
        model.lm_head = torch.nn.Linear(emb.shape[1], emb.shape[0], bias=False)
        model.lm_head.weight = torch.nn.Parameter(head * 4)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_hf_backend_cuts_a_real_generation_at_the_category_stop(tiny_model_dir, tmp_path):
    """End to end with the hf backend: the medsbench protocol's stop for a single-line category ends the
    generation at the blank line (the output is the answer before it); the official protocol runs to the cap."""
    pytest.importorskip("transformers")
    from medsbench.models.hf import HFBackend
    from medsbench.pipeline import evaluate

    category = next(c for c, stops in MEDSBENCH.category_stop if BLANK_LINE in stops)
    entry = next(e for e in catalog().tasks.values() if e.category == category and e.availability == "public-here")
    model_dir = _chain_model(tiny_model_dir, tmp_path / "chain", "yes")
    ws = make_workspace(tmp_path / "ws", n_mcqa=1, n_ner=2)
    if entry.id != "task126":
        meta = {"Definition": ["Answer in one line."], "Categories": [category]}
        write_task(ws / "tasks" / f"{entry.id}_{entry.slug}.test.json", meta,
                   [Instance(f"x{i}", f"Sentence {i} with aspirin.", ["aspirin"]) for i in range(2)])
    backend = HFBackend(str(model_dir), batch_size=2, prune_every=4, threads=1)
    evaluate(backend, entry.id, workspace=ws, out=tmp_path / "ours", progress=False, max_new_tokens=24)
    evaluate(backend, entry.id, workspace=ws, out=tmp_path / "official", progress=False, max_new_tokens=24,
             protocol="official")
    ours = [json.loads(line) for line in (tmp_path / "ours" / "predictions.jsonl").read_text().splitlines()]
    official = [json.loads(line) for line in (tmp_path / "official" / "predictions.jsonl").read_text().splitlines()]
    assert len(ours) == len(official) == 2
    for row in official:  # no stop string: the model repeats its answer to the token cap
        assert row["output"].startswith("yes\n\nyes") and row["output_tokens"] == 24 and row["hit_cap"]
    for row in ours:  # the category stop cut it: the answer alone, generation ended early
        assert row["output"] == "yes"
        assert row["output_tokens"] < 24 and not row["hit_cap"]
    scores = json.loads((tmp_path / "ours" / "results.json").read_text())["tasks"][entry.id]
    assert scores["hit_cap_rate"] == 0.0


def test_resuming_a_run_whose_stop_strings_changed_is_refused(tmp_path, monkeypatch):
    """Rows journaled with the old stops must not be mixed with rows generated under new ones."""
    from medsbench.errors import MedsbenchError
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder

    ws = make_workspace(tmp_path / "ws", n_mcqa=3, n_ner=3)
    _add_hoc(ws)
    evaluate(Recording(), "task57,task106", workspace=ws, out=tmp_path / "r", progress=False)
    manifest = RunFolder(tmp_path / "r").manifest()
    manifest.status = "interrupted"
    RunFolder(tmp_path / "r").save_manifest(manifest)
    changed = dataclasses.replace(MEDSBENCH, category_stop=(("text_classification", ("###",)),))
    monkeypatch.setitem(PROTOCOLS, "medsbench", changed)
    with pytest.raises(MedsbenchError, match=r"generation settings \(stop\) of task106 changed since the run started"):
        evaluate(Recording(), None, workspace=ws, out=tmp_path / "r", resume=True, progress=False)
