"""The shared builders live outside the entry points, so no module imports ``hieros_pl.train``."""

from __future__ import annotations

import ast
from pathlib import Path

import hieros_pl

PACKAGE = Path(hieros_pl.__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_module_imports_the_train_entry_point() -> None:
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "hieros_pl.train" in _imported_modules(path)
    )
    # The whole-run benchmark times hieros-train's own run(); train imports nothing from bench,
    # so this is no cycle.
    assert importers == ["bench/run.py"]
