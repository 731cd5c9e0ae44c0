"""MedS-Ins builder units: balance, selection, indexes, config, sidecars and `ins rewrite`."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import numpy as np
import pytest

from medsbench.errors import MedsbenchError
from medsbench.ins.config import BalanceConfig, load_ins_config
from medsbench.ins.dedupe import U64Set, rolling, token_hashes, tokens
from medsbench.ins.instructions import load_sidecar, load_sidecars, rewrite
from medsbench.ins.mixer import Selector, allocate

NATURAL = {"temperature": 1.0, "cap": None, "max_repeats": 1}  # every clean instance once


def test_allocate_temperature_and_caps():
    sizes = {"a": 10_000, "b": 1_000, "c": 100}
    assert allocate(sizes, BalanceConfig(**NATURAL)) == sizes  # T=1, no cap: everything once
    flat = allocate(sizes, BalanceConfig(**{**NATURAL, "temperature": 1000.0, "max_repeats": 1000}))
    assert sum(flat.values()) == 11_100 and max(flat.values()) - min(flat.values()) <= 30  # ~uniform
    t2 = allocate(sizes, BalanceConfig(**{**NATURAL, "temperature": 2.0}))
    # p ∝ sqrt(n), c cannot exceed its 100 items; the rest is redistributed and the total kept.
    assert sum(t2.values()) == 11_100 and t2["c"] == 100 and t2["b"] == 1_000
    capped = allocate(sizes, BalanceConfig(**{**NATURAL, "cap": 500, "caps": {"c": 50}}))
    assert capped == {"a": 500, "b": 500, "c": 50}
    w = allocate(sizes, BalanceConfig(**{**NATURAL, "total": 1000, "weights": {"a": 0.0}}))
    assert w == {"a": 0, "b": 909, "c": 91}


def test_selector_exact_counts():
    for avail, target in ((1000, 137), (50, 50), (40, 130), (7, 0)):
        sel = Selector(avail, target, seed=5)
        counts = [sel.next() for _ in range(avail)]
        assert sum(counts) == target and max(counts) - min(counts) <= 1


def test_u64set_matches_python_set():
    rng = np.random.default_rng(0)
    s, ref = U64Set(), set()
    for _ in range(40):
        vals = rng.integers(0, 5000, size=300, dtype=np.uint64)
        hit = s.contains(vals)
        assert hit.tolist() == [int(v) in ref for v in vals]
        new = np.unique(vals[~hit])
        s.add(new)
        ref.update(int(v) for v in new)
    assert len(s) == len(ref) and len(s.runs) < 12


def test_rolling_ngrams_stay_inside_items_and_cjk_tokens():
    assert tokens("Aspirin 81mg, 高血圧の患者") == ["aspirin", "81mg", "高", "血", "圧", "の", "患", "者"]
    a, b = "one two three four", "five six"
    th = token_hashes(tokens(a) + tokens(b))
    h, own = rolling(th, np.array([4, 2]), 3)
    assert own.tolist() == [0, 0]  # no window crosses from item 0 into item 1
    h2, own2 = rolling(th, np.array([4, 2]), 3, short=True)
    assert own2.tolist() == [0, 0, 1]
    solo, _ = rolling(token_hashes(tokens(b)), np.array([2]), 3, short=True)
    assert solo[0] == h2[2]  # the same short text hashes the same wherever it sits


def test_config_toml_yaml_and_errors(tmp_path):
    t = tmp_path / "c.toml"
    t.write_text('seed = 4\n[instructions]\nsidecars = ["defs.json"]\n[shots.probs]\n"0" = 1\n"3" = 3\n')
    cfg = load_ins_config(t)
    assert cfg.seed == 4 and cfg.shots.probs == {0: 1.0, 3: 3.0}
    assert cfg.instructions.sidecars == [tmp_path / "defs.json"]
    y = tmp_path / "c.yaml"
    for text, msg in (
        ("balance:\n  temprature: 2\n", "balance.temprature: unknown key"),
        ("balance:\n  temperature: 0\n", "balance.temperature: Input should be greater than 0"),
        ("instructions:\n  paraphrase_prob: -0.5\n", "instructions.paraphrase_prob: Input should be greater than or equal to 0"),
        ("- a\n", "config must be a mapping"),
    ):
        y.write_text(text)
        with pytest.raises(MedsbenchError) as exc:
            load_ins_config(y)
        assert msg in str(exc.value) and "\n" not in str(exc.value)


def test_sidecar_import_and_errors(tmp_path):
    p = tmp_path / "defs.json"
    p.write_text(json.dumps({"task57": {"original_def": "Pick the answer.", "auto_rewrite_def": ["Choose the answer.", " choose  the answer. ", "Pick the answer.", ""]}}))
    v = load_sidecar(p)["task57"]
    assert v.original == "Pick the answer." and v.paraphrases == ["Choose the answer."]
    q = tmp_path / "more.json"
    q.write_text(json.dumps({"task57": {"original_def": "Other.", "auto_rewrite_def": ["Select the right option."]}}))
    merged = load_sidecars([p, q])["task57"]
    assert merged.original == "Pick the answer." and merged.paraphrases == ["Choose the answer.", "Select the right option."]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"task1": {"auto_rewrite_def": []}}))
    with pytest.raises(MedsbenchError, match="original_def"):
        load_sidecar(bad)
    with pytest.raises(MedsbenchError, match="instruction sidecar not found"):
        load_sidecar(tmp_path / "missing.json")
    # The same shape as RewriteDefinitions.json, read by the same reader as eval/convert --definitions:
    # a list-valued original_def gives its first non-empty text.
    listed = tmp_path / "listed.json"
    listed.write_text(json.dumps({"task12": {"original_def": ["", "Verify the claim."], "auto_rewrite_def": ["Check the claim."]}}))
    v = load_sidecar(listed)["task12"]
    assert v.original == "Verify the claim." and v.paraphrases == ["Check the claim."]
    bad.write_text(json.dumps({"task1": {"original_def": "x", "auto_rewrite_def": "not a list"}}))
    with pytest.raises(MedsbenchError, match=r"bad.json: task1: auto_rewrite_def: must be a list of strings"):
        load_sidecar(bad)


def test_real_sidecar_import():
    from conftest import RAW, missing

    path = RAW / "meds_ins_definitions" / "RewriteDefinitions.json"
    if not path.exists():
        missing("RewriteDefinitions.json not present")
    defs = load_sidecar(path)
    assert len(defs) == 122
    assert defs["task57"].original.startswith("Given a question and a list of options")
    total = sum(len(v.paraphrases) for v in defs.values())
    assert 17_000 < total <= 18_996  # deduplicated per task


@dataclass
class _Resp:
    id: str
    text: str
    error: str | None = None


class FakeBackend:
    """Paraphrases deterministically; some replies are empty, duplicated, over-long or errors."""

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, requests):
        out = []
        for req in requests:
            self.calls += 1
            user = req.messages[-1]["content"]
            original = user.split("\n")[1]
            r = random.Random(req.id)
            kind = r.random()
            if kind < 0.1:
                out.append(_Resp(req.id, "   "))
            elif kind < 0.2:
                out.append(_Resp(req.id, original))  # same as the original: dropped as duplicate
            elif kind < 0.25:
                out.append(_Resp(req.id, "word " * 500))
            elif kind < 0.3:
                out.append(_Resp(req.id, "", error="timeout"))
            else:
                out.append(_Resp(req.id, f'1. "Rewritten ({user.split(chr(10))[-1]}): {original}"'))
        return out


def test_rewrite_with_fake_backend(tmp_path, monkeypatch, capsys):
    variants, drops = rewrite({"task57": "Pick the answer.", "task9": "Name the disease."}, FakeBackend(), n=8, rounds=4)
    for v in variants.values():
        assert len(v.paraphrases) == 8 and len({p.casefold() for p in v.paraphrases}) == 8
        assert all(p.startswith("Rewritten (") and not p.startswith('"') for p in v.paraphrases)
    assert drops["empty"] and drops["duplicate"] and drops["too_long"] and drops["error"]

    # CLI: the backend comes from medsbench.models.load_backend (faked here).
    import medsbench.models as models
    from medsbench.cli import main
    from medsbench.sources.registry import TaskSpec, task_meta
    from medsbench.tasks.format import write_task

    monkeypatch.setattr(models, "load_backend", lambda spec: FakeBackend(), raising=False)
    tasks = tmp_path / "tasks"
    write_task(tasks / "task57_medqa_en.train.json", task_meta(TaskSpec(task_id="task57", slug="medqa_en",
               definition="Pick the answer.", source="MedQA", url="-", license="MIT"), "train", "official"), [{"id": 1, "input": "q", "output": "A"}])
    out = tmp_path / "rw.json"
    with pytest.raises(SystemExit) as exc:
        main(["ins", "rewrite", "--tasks", str(tasks), "--model", "fake", "--n", "5", "--out", str(out)])
    assert exc.value.code == 0
    side = load_sidecar(out)
    k = len(side["task57"].paraphrases)
    assert side["task57"].original == "Pick the answer." and 1 <= k <= 5
    assert f"{k} paraphrase(s) for 1 task(s)" in capsys.readouterr().out
