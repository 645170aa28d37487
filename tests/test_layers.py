"""Imports go one way, cli → search → latency → arch (docs/architecture.md): checked on the
source, so a wrong-way import fails here before it tangles the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "hwnas"
# Each layer, and the hwnas packages its modules may not import.
FORBIDDEN = {
    "arch": ("hwnas.latency", "hwnas.search", "hwnas.cli", "hwnas.api"),
    "latency": ("hwnas.search", "hwnas.cli", "hwnas.api"),
    "search": ("hwnas.cli",),
}


def hwnas_imports(path: Path) -> set[str]:
    """Every absolute `hwnas...` module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("hwnas")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("hwnas"):
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files
    wrong = {f"{path.relative_to(PACKAGE.parent)} imports {name}"
             for path in files for name in hwnas_imports(path)
             if name.startswith(FORBIDDEN[layer])}
    assert not wrong, sorted(wrong)


def test_the_check_sees_a_wrong_way_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from hwnas.search.config import SearchConfig\n")
    assert "hwnas.search.config" in hwnas_imports(module)
