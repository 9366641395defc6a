"""Imports point one way: apps -> ticket/vacancy -> domain, and http imports none of them.

Inside http, the server and the framework are siblings: each imports only itself and the
vocabulary both speak (``models``, ``errors``), never the other."""

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


# The parts of http (by the name under ticketsys/http/) and the parts each may import. The
# client is its own part, left out here: it imports nothing of the toolkit's other parts.
SHARED = {"models", "errors"}
HTTP_ALLOWED = {
    "shared": {"shared"},
    "server": {"server", "shared"},
    "framework": {"framework", "shared"},
}


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ticketsys."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ticketsys."))
    return found


def _ticketsys_imports(path: Path) -> set[str]:
    return {module.split(".")[1] for module in _imported_modules(path)}


def _http_part(name: str) -> str:
    """The part of http that ``ticketsys.http.<name>...`` belongs to."""
    if name in SHARED:
        return "shared"
    return name if name in ("server", "client") else "framework"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports(layer: str) -> None:
    allowed = ALLOWED[layer] | {layer} | ({"http"} if layer != "http" else set())
    for path in (PACKAGE / layer).rglob("*.py"):
        stray = _ticketsys_imports(path) - allowed
        assert not stray, f"{path.relative_to(PACKAGE)} imports {sorted(stray)}"


@pytest.mark.parametrize("part", sorted(HTTP_ALLOWED))
def test_http_part_imports(part: str) -> None:
    checked = 0
    for path in (PACKAGE / "http").rglob("*.py"):
        top = path.relative_to(PACKAGE / "http").parts[0].removesuffix(".py")
        if top == "__init__" or _http_part(top) != part:
            continue
        checked += 1
        inside = {m.split(".")[2] for m in _imported_modules(path) if m.startswith("ticketsys.http.")}
        stray = {name for name in inside if _http_part(name) not in HTTP_ALLOWED[part]}
        assert not stray, f"{path.relative_to(PACKAGE)} ({part}) imports http.{sorted(stray)}"
    assert checked, f"no module of http's {part} part found"
