"""Imports point one way, and every part of the package is placed in the order:

    cli -> apps -> vacancy, ticket -> api -> domain
                 -> config, storage ---------^
                 -> observe (metrics, logging) -> http
    http (the toolkit) imports none of the rest; all but domain and storage may use it.

``vacancy`` and ``ticket`` are siblings: neither imports the other (the monolith joins them in
``apps``). Inside http, the server and the framework are siblings too: each imports only itself
and the vocabulary both speak (``models``, ``errors``), never the other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ticketsys"

# Each part of ticketsys (a subpackage, or a module at the top) and the parts it may import
# besides itself. A part missing here fails test_every_part_is_placed.
ALLOWED: dict[str, set[str]] = {
    "http": set(),
    "domain": set(),
    "storage": {"domain"},
    "api": {"domain", "http"},
    "vacancy": {"api", "domain", "http"},
    "ticket": {"api", "domain", "http"},
    "config": {"domain", "http", "storage"},
    "observe": {"http"},
    "apps": {"api", "config", "domain", "http", "observe", "storage", "ticket", "vacancy"},
    "cli": {"apps", "config", "domain", "http", "observe", "storage"},
    "__init__": set(),
    "__main__": {"cli"},
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


def _part(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _http_part(name: str) -> str:
    """The part of http that ``ticketsys.http.<name>...`` belongs to."""
    if name in SHARED:
        return "shared"
    return name if name in ("server", "client") else "framework"


def test_every_part_is_placed() -> None:
    parts = {_part(path) for path in PACKAGE.rglob("*.py")}
    assert parts == set(ALLOWED), "place each new part of ticketsys in ALLOWED (or remove a gone one)"


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_part_imports(part: str) -> None:
    allowed = ALLOWED[part] | {part}
    for path in PACKAGE.rglob("*.py"):
        if _part(path) != part:
            continue
        stray = {module.split(".")[1] for module in _imported_modules(path)} - allowed
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
