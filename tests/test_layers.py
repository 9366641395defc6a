"""Imports point one way: apps -> ticket/vacancy -> domain, and http imports none of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ticketsys"

# What each layer may import from ticketsys (besides itself and the http toolkit).
ALLOWED = {
    "http": set(),
    "domain": set(),
    "storage": {"domain"},
    "vacancy": {"domain"},
    "ticket": {"domain"},
    "apps": {"domain", "vacancy", "ticket", "config", "storage"},
}


def _ticketsys_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ticketsys."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("ticketsys."))
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports(layer: str) -> None:
    allowed = ALLOWED[layer] | {layer} | ({"http"} if layer != "http" else set())
    for path in (PACKAGE / layer).rglob("*.py"):
        stray = _ticketsys_imports(path) - allowed
        assert not stray, f"{path.relative_to(PACKAGE)} imports {sorted(stray)}"
