"""Extending medsbench with a model backend without editing its source: one module that registers a
:class:`BackendKind`, found through the ``medsbench.backends`` entry-point group of an installed
package (here a synthetic distribution on ``sys.path``: a ``.dist-info`` folder and the module), then
used by its spec string in code and on the command line like a built-in kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medsbench.errors import MedsbenchError
from medsbench.models import spec as spec_module
from test_runs import make_workspace

TOY_BACKEND = '''
"""A toy backend plugin (synthetic): answers every prompt with its ``answer`` option."""
from medsbench.models.base import BaseBackend, Rendered, Response
from medsbench.models.spec import BackendKind, BackendOptions


class ToyOptions(BackendOptions):
    answer: str = "A"


class ToyBackend(BaseBackend):
    name = "toy"

    def __init__(self, target, options):
        self.target, self.answer = target, options.answer

    def identity(self):
        return {"backend": "toy", "model": self.target, "answer": self.answer}

    def render(self, prompt):
        text = prompt.plain()
        return Rendered(text, prompt=text)

    def count_tokens(self, prompt):
        return len(prompt.plain().split())

    def generate(self, requests):
        return [Response(r.id, self.answer, len(r.prompt.split()), 1, 0.0) for r in requests]


KIND = BackendKind("toy", ToyOptions, lambda spec, options: ToyBackend(spec.target, options))
'''


def install_plugin(root: Path, value: str = "toy_backend:KIND") -> Path:
    """A synthetic installed distribution: its module and a dist-info with the entry point."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "toy_backend.py").write_text(TOY_BACKEND, encoding="utf-8")
    info = root / "medsbench_toy-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: medsbench-toy\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[medsbench.backends]\ntoy = {value}\n", encoding="utf-8")
    return root


@pytest.fixture()
def plugin_path(tmp_path, monkeypatch):
    root = install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(root))
    saved = dict(spec_module._BACKENDS)
    monkeypatch.setattr(spec_module, "_plugins_loaded", False)  # as in a fresh process
    monkeypatch.delitem(sys.modules, "toy_backend", raising=False)
    yield root
    spec_module._BACKENDS.clear()
    spec_module._BACKENDS.update(saved)


def test_a_backend_plugin_is_one_module_and_an_entry_point(plugin_path, tmp_path):
    from medsbench.models import load_backend
    from medsbench.models.spec import ModelSpec, kinds
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder

    assert "toy" in kinds()
    spec = ModelSpec.parse("toy:echo,answer=B")
    assert spec.kind == "toy" and spec.settings().answer == "B"
    with pytest.raises(MedsbenchError, match="answer"):  # its options are typed and listed like a built-in's
        ModelSpec.parse("toy:echo,temperature=1", strict=True)
    assert load_backend("toy:echo,answer=B").identity() == {"backend": "toy", "model": "echo", "answer": "B"}

    ws = make_workspace(tmp_path / "ws")
    res = evaluate("toy:echo,answer=B", "task57", workspace=ws, out=tmp_path / "run", progress=False)
    folder = RunFolder(tmp_path / "run")
    rows = folder.predictions()
    assert len(rows) == 8 and {r.output for r in rows} == {"B"}
    assert folder.manifest().config.model.kind == "toy"
    assert res.results is not None and res.results.tasks["task57"].metrics["accuracy"] == 0.0  # gold is A


def test_the_cli_runs_a_plugin_backend_by_its_spec(tmp_path):
    root = install_plugin(tmp_path / "site")
    ws = make_workspace(tmp_path / "ws")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "medsbench.cli", "eval", "--model", "toy:echo", "--tasks", "task57",
                           "-w", str(ws), "--out", str(tmp_path / "run"), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["tasks"]["task57"]["metrics"]["accuracy"] == 100.0  # the toy answers A, the gold
    # Without the plugin on the path the kind is unknown: one line, the known kinds listed.
    bare = {**os.environ}
    proc = subprocess.run([sys.executable, "-m", "medsbench.cli", "eval", "--model", "toy:echo", "--tasks", "task57",
                           "-w", str(ws), "--out", str(tmp_path / "run2")], capture_output=True, text=True, env=bare,
                          timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "unknown model spec 'toy:echo'" in proc.stderr and "hf" in proc.stderr


def test_a_broken_plugin_is_named_in_one_line(tmp_path, monkeypatch):
    root = install_plugin(tmp_path / "site", value="toy_backend:MISSING")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(spec_module, "_plugins_loaded", False)
    monkeypatch.delitem(sys.modules, "toy_backend", raising=False)
    from medsbench.models.spec import ModelSpec

    with pytest.raises(MedsbenchError, match=r"entry point toy = toy_backend:MISSING .*could not load the backend plugin"):
        ModelSpec.parse("toy:echo")
