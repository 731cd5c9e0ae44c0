"""The shape of the source, checked so it stays: no import circle between medsbench modules, small
functions, one place that names each run-folder file and the workspace folder, and no function-level
import of a light medsbench module outside the lazily loaded commands (read with ``ast``, no import)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "medsbench"
MAX_LINES, MAX_PARAMS = 100, 8


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return out


def _module_imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """medsbench modules imported at module level (``if TYPE_CHECKING:`` blocks left out)."""
    found: set[str] = set()
    package = name if (PACKAGE / Path(*name.split(".")[1:]) / "__init__.py").exists() else name.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names}
            elif isinstance(sub, ast.ImportFrom):
                base = sub.module or ""
                if sub.level:
                    parts = package.split(".")[: len(package.split(".")) - (sub.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                found.add(base)
                found |= {f"{base}.{a.name}" for a in sub.names}
    return {m for m in found if m in known and m != name}


def test_no_import_circle_between_medsbench_modules():
    trees = modules()
    graph = {name: _module_imports(name, tree, set(trees)) for name, tree in trees.items()}
    # A module's package __init__ runs first; an import of a.b.c imports a and a.b too.
    for name in list(graph):
        parts = name.split(".")
        graph[name] |= {".".join(parts[:k]) for k in range(2, len(parts)) if ".".join(parts[:k]) in graph}
        graph[name].discard(name)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    # A package __init__ that imports its own submodules is one unit with them, not a circle between stages.
    circles = [c for c in circles if not all(m.startswith(min(c, key=len) + ".") or m == min(c, key=len) for m in c)]
    assert circles == []


def test_functions_are_small_and_take_few_parameters():
    big, wide = [], []
    for name, tree in modules().items():
        for f in ast.walk(tree):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if f.end_lineno - f.lineno + 1 > MAX_LINES:
                    big.append(f"{name}.{f.name}")
                n = len(f.args.args) + len(f.args.kwonlyargs) + len(f.args.posonlyargs) - (f.args.args[:1] != [] and f.args.args[0].arg in ("self", "cls"))
                if n > MAX_PARAMS and not name.startswith("medsbench.commands."):  # typer commands: one parameter per flag
                    wide.append(f"{name}.{f.name} ({n})")
    assert big == [] and wide == []


def _string_constants(tree: ast.Module) -> list[str]:
    """String constants that are not docstrings."""
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def test_each_run_folder_file_and_the_workspace_folder_are_named_once():
    names = ("predictions.jsonl", "predictions.csv", "manifest.json", "results.json", "judged.json",
             "judgements.jsonl", "contamination.json", "medsbench-work")
    where: dict[str, list[str]] = {n: [] for n in names}
    for name, tree in modules().items():
        if name.startswith("medsbench.ins."):  # a MedS-Ins mixture folder (its own contamination.json), not a run
            continue
        for value in _string_constants(tree):
            if value in where:
                where[value].append(name)
    assert {n: len(w) for n, w in where.items()} == {n: 1 for n in names}, where
    assert set(where["predictions.jsonl"]) == {"medsbench.records.folder"}
    assert set(where["medsbench-work"]) == {"medsbench.workspace"}


def test_light_medsbench_modules_are_imported_at_module_level():
    """Function-level imports of medsbench modules only where they load something heavy (a backend,
    torch) or in the lazily loaded commands and the CLI entry points."""
    heavy = {"medsbench.models.hf", "medsbench.models.vllm_backend", "medsbench.models.openai_backend",
             "medsbench.models.default", "medsbench.models.loglik", "medsbench.tune.train", "medsbench.tune.merge",
             "medsbench.export.lm_eval", "medsbench.export.inspect_tasks", "medsbench.export.hf"}
    found = []
    for name, tree in modules().items():
        if name.startswith("medsbench.commands") or name in ("medsbench.cli", "medsbench.__main__"):
            continue
        for f in ast.walk(tree):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(f):
                    if isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith("medsbench") \
                            and sub.module not in heavy:
                        found.append(f"{name}.{f.name}: {sub.module}")
    assert found == []
