"""The install is the lock: pyproject.toml, uv.lock and requirements/ agree, and the runtime
dependencies are what the runtime imports.

``bin/ticketsys`` installs with ``uv sync --frozen`` where uv is on PATH and with pip from
``requirements/*.txt`` elsewhere; ``--frozen`` reads the lock as it is, so a lock older than
pyproject.toml, or requirements older than the lock, would go unnoticed but for these tests.
uv comes from the test extra, at the version the Dockerfile uses.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parent.parent
UV = find_uv_bin()
# uv runs on this Python, never one it would download.
UV_ENV = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": sys.executable}


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _lock() -> dict[str, Any]:
    return tomllib.loads((ROOT / "uv.lock").read_text())


def _locked_versions() -> dict[str, set[Version]]:
    """Each package's versions: some have one per range of Python versions (numpy)."""
    versions: dict[str, set[Version]] = {}
    for package in _lock()["package"]:
        versions.setdefault(canonicalize_name(package["name"]), set()).add(Version(package["version"]))
    return versions


def _declared(project: dict[str, Any]) -> Iterator[tuple[str | None, Requirement]]:
    """Each requirement of pyproject.toml's [project], with the extra that asks for it."""
    for line in project["dependencies"]:
        yield None, Requirement(line)
    for extra, lines in project.get("optional-dependencies", {}).items():
        for line in lines:
            yield extra, Requirement(line)


# (name, versions, its extras, marker): one requirement, as pyproject.toml or uv.lock has it
Entry = tuple[str, SpecifierSet, frozenset[str], str]


def _entry(name: str, specifier: str, extras: Iterable[str], markers: Iterable[str]) -> Entry:
    marker = " and ".join(f"({m})" for m in markers)
    return (
        canonicalize_name(name),
        SpecifierSet(specifier),
        frozenset(extras),
        str(Marker(marker)) if marker else "",
    )


def lock_disagreements(pyproject: dict[str, Any], lock: dict[str, Any]) -> set[Entry]:
    """What pyproject.toml declares and uv.lock did not record, and the other way round."""
    project = next(p for p in lock["package"] if p["name"] == pyproject["project"]["name"])
    metadata = project["metadata"]
    locked = {
        _entry(d["name"], d.get("specifier", ""), d.get("extras", []), [d["marker"]] if "marker" in d else [])
        for d in metadata["requires-dist"]
    }
    declared = {  # the lock writes the extra that asks for a requirement as a marker
        _entry(
            r.name,
            str(r.specifier),
            r.extras,
            [str(m) for m in (r.marker, extra and f"extra == '{extra}'") if m],
        )
        for extra, r in _declared(pyproject["project"])
    }
    extras = sorted(pyproject["project"].get("optional-dependencies", {}))
    if sorted(metadata.get("provides-extras", [])) != extras:
        declared.add(_entry("provides-extras", "", extras, []))
    return locked ^ declared


def _uv(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([UV, *args], cwd=cwd, env=UV_ENV, capture_output=True, text=True, timeout=120)


# --- pyproject.toml and uv.lock ---------------------------------------------------------------


def test_uv_lock_records_what_pyproject_declares() -> None:
    assert lock_disagreements(_pyproject(), _lock()) == set(), (
        "uv.lock is out of date: run bin/ticketsys lock"
    )


def test_a_requirement_changed_without_relocking_is_seen() -> None:
    pyproject = _pyproject()
    pyproject["project"]["dependencies"] = [
        re.sub(r"^orjson\b.*", "orjson>=3.10,<4", line) for line in pyproject["project"]["dependencies"]
    ]
    pyproject["project"]["optional-dependencies"]["newextra"] = ["rich"]
    found = lock_disagreements(pyproject, _lock())
    assert _entry("orjson", ">=3.10,<4", [], []) in found
    assert _entry("orjson", ">=3.9,<4", [], []) in found
    assert _entry("rich", "", [], ["extra == 'newextra'"]) in found
    assert _entry("provides-extras", "", [*pyproject["project"]["optional-dependencies"]], []) in found


def test_uv_finds_the_lock_current() -> None:
    """uv's own check, the one that counts: it resolves pyproject.toml and compares."""
    done = _uv("lock", "--check", "--offline")
    assert done.returncode == 0, f"run bin/ticketsys lock:\n{done.stderr}"


def test_uv_refuses_a_lock_that_pyproject_has_moved_away_from(tmp_path: Path) -> None:
    shutil.copy(ROOT / "uv.lock", tmp_path)
    text = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace('"orjson>=3.9,<4"', '"orjson>=3.9,<3.10"'))
    assert '"orjson>=3.9,<3.10"' in (tmp_path / "pyproject.toml").read_text()
    done = _uv("lock", "--check", "--offline", cwd=tmp_path)
    assert done.returncode != 0


def test_every_locked_version_is_in_its_declared_range() -> None:
    versions = _locked_versions()
    for _, requirement in _declared(_pyproject()["project"]):
        name = canonicalize_name(requirement.name)
        if name == "ticketsys":  # an extra naming other extras
            continue
        for needed in [name, *map(canonicalize_name, requirement.extras)]:
            assert needed in versions, f"uv.lock lacks {needed}: run bin/ticketsys lock"
        assert all(v in requirement.specifier for v in versions[name]), f"uv.lock has {name} {versions[name]}"


def test_uv_lock_points_at_public_pypi() -> None:
    text = (ROOT / "uv.lock").read_text()
    assert "file://" not in text
    for package in _lock()["package"]:
        registry = package["source"].get("registry")
        assert registry in {None, "https://pypi.org/simple"}, f"{package['name']}: {registry}"


def test_the_tests_uv_is_the_dockerfiles() -> None:
    """One uv reads the lock everywhere: its export format and lock revision are its own."""
    pinned = next(
        r.specifier for _, r in _declared(_pyproject()["project"]) if canonicalize_name(r.name) == "uv"
    )
    image = re.search(r"ghcr\.io/astral-sh/uv:(\S+)", (ROOT / "Dockerfile").read_text())
    assert image and str(pinned) == f"=={image[1]}"
    assert _uv("--version").stdout.split()[1] == image[1]


# --- uv.lock and requirements/ ----------------------------------------------------------------


def test_requirements_are_the_lock_exported(tmp_path: Path) -> None:
    """``bin/ticketsys lock`` in a copy of the project writes requirements/ as committed."""
    for name in ("pyproject.toml", "uv.lock", "bin/ticketsys"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    env = {**UV_ENV, "PATH": f"{Path(UV).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [tmp_path / "bin" / "ticketsys", "lock", "--check", "--offline"],
        env={**env, "TICKETSYS_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    fresh, committed = tmp_path / "requirements", ROOT / "requirements"
    names = {p.name for p in [*fresh.iterdir(), *committed.iterdir()]}
    stale = sorted(n for n in names if _read(fresh / n) != _read(committed / n))
    assert not stale, f"requirements/ differs from uv.lock in {stale}: run bin/ticketsys lock"


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def test_there_is_one_requirements_file_per_extra_and_one_for_the_runtime() -> None:
    extras = set(_pyproject()["project"]["optional-dependencies"])
    assert {p.stem for p in (ROOT / "requirements").glob("*.txt")} == {"runtime", *extras}


def test_requirements_pin_every_package_with_its_hashes() -> None:
    versions = _locked_versions()
    for path in (ROOT / "requirements").glob("*.txt"):
        for entry in re.split(r"\n(?=\S)", path.read_text()):
            if entry.startswith("#"):
                continue
            match = re.match(r"([\w.-]+)==(\S+)", entry)
            assert match, f"{path.name}: not pinned: {entry[:60]}"
            assert Version(match[2]) in versions[canonicalize_name(match[1])], f"{path.name}: {match[0]}"
            assert "--hash=sha256:" in entry, f"{path.name}: {match[1]} has no hash"


# --- what the runtime imports -----------------------------------------------------------------


def _imports(tree: ast.AST, lazy: bool = False) -> Iterator[tuple[str, bool]]:
    """``(top-level module, lazy)`` of each import; lazy: inside a function or TYPE_CHECKING."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name.split(".")[0], lazy) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], lazy
        else:
            inner = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or (
                isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            )
            yield from _imports(node, lazy or inner)


def _third_party_imports() -> dict[str, bool]:
    """Each module from outside the project and the standard library that ticketsys imports,
    and whether every import of it is lazy."""
    found: dict[str, bool] = {}
    for path in (ROOT / "ticketsys").rglob("*.py"):
        for module, lazy in _imports(ast.parse(path.read_text())):
            if module not in sys.stdlib_module_names and module not in ("ticketsys", "__future__"):
                found[module] = found.get(module, True) and lazy
    return found


def test_runtime_dependencies_are_what_the_runtime_imports() -> None:
    from importlib.metadata import packages_distributions

    project = _pyproject()["project"]
    runtime = {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}
    extras = {canonicalize_name(r.name) for extra, r in _declared(project) if extra} - {"ticketsys"}
    owners = packages_distributions()
    imported: dict[str, bool] = {}
    for module, lazy in _third_party_imports().items():
        assert module in owners, f"ticketsys imports {module}, which no installed distribution provides"
        for dist in map(canonicalize_name, owners[module]):
            imported[dist] = imported.get(dist, True) and lazy
    eager = {dist for dist, lazy in imported.items() if not lazy}
    assert eager <= runtime, f"imported at start-up but not a runtime dependency: {eager - runtime}"
    assert set(imported) <= runtime | extras, (
        f"imported but declared nowhere: {set(imported) - runtime - extras}"
    )
    assert runtime <= set(imported), (
        f"runtime dependencies ticketsys never imports: {runtime - set(imported)}"
    )


@pytest.fixture(scope="module")
def runtime_only_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with requirements/runtime.txt and nothing else; ticketsys from the source."""
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    done = _uv("venv", "--quiet", str(venv))
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    requirements = ROOT / "requirements" / "runtime.txt"
    done = _uv(
        "pip", "install", "--quiet", "--python", str(python), "--require-hashes", "-r", str(requirements)
    )
    assert done.returncode == 0, done.stderr
    return python


def _run_without_extras(python: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # in the venv's directory: no .env there
        [python, *args],
        cwd=python.parent,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_every_module_imports_with_only_the_runtime_dependencies(runtime_only_python: Path) -> None:
    script = (
        "import importlib, pkgutil, ticketsys\n"
        "for m in pkgutil.walk_packages(ticketsys.__path__, 'ticketsys.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
    )
    done = _run_without_extras(runtime_only_python, "-c", script)
    assert done.returncode == 0, done.stderr
    for absent in ("httpx", "hypercorn", "uvicorn", "h11"):  # the venv really lacks the extras
        done = _run_without_extras(runtime_only_python, "-c", f"import {absent}")
        assert "ModuleNotFoundError" in done.stderr


@pytest.mark.slow
def test_vacancy_client_httpx_without_httpx_refuses_to_start_in_one_line(runtime_only_python: Path) -> None:
    done = _run_without_extras(runtime_only_python, "-m", "ticketsys", "ticket", VACANCY_CLIENT="httpx")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "VACANCY_CLIENT='httpx'" in done.stderr and "[httpx] extra" in done.stderr
