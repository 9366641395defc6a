"""``bin/ticketsys`` as a newcomer runs it: help, the start line, configuration sources and
their errors, one owner per store, restocking, and a clean exit on signals."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.support import services

EXIT_CONFIG = 2


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(services.BIN), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


def _available(service: services.Service) -> int:
    count: int = orjson.loads(services.get(service.url, "/api/v1/available")[1])["available"]
    return count


@pytest.mark.parametrize("command", ["monolith", "vacancy", "ticket"])
def test_help(command: str, tmp_path: Path) -> None:
    result = _run(command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "--host" in result.stdout and "--port" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "variable"),
    [
        pytest.param(["monolith"], {"INITIAL_STOCK": "abc"}, "INITIAL_STOCK", id="stock-not-a-number"),
        pytest.param(["monolith"], {"INITIAL_STOCK": "-1"}, "INITIAL_STOCK", id="negative-stock"),
        pytest.param(["monolith", "--port", "99999"], {}, "PORT", id="port-out-of-range"),
        pytest.param(["ticket"], {"VACANCY_URL": "ftp://x"}, "VACANCY_URL", id="url-scheme"),
        pytest.param(["monolith"], {"MAX_QTY": "0"}, "MAX_QTY", id="max-qty"),
        pytest.param(["monolith"], {"STOCK_STORE": "sqlite"}, "STOCK_STORE", id="store"),
        pytest.param(["vacancy"], {"SERVICE_TOKEN": "short"}, "SERVICE_TOKEN", id="weak-token"),
        pytest.param(["monolith"], {"VACANCY_TIMEOUT": "soon"}, "VACANCY_TIMEOUT", id="timeout"),
    ],
)
def test_a_bad_value_stops_start_up_with_one_line(
    args: list[str], env: dict[str, str], variable: str, tmp_path: Path
) -> None:
    result = _run(*args, cwd=tmp_path, env=env)
    assert result.returncode == EXIT_CONFIG
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_dotenv_then_environment_then_flags(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("INITIAL_STOCK=7\nMAX_QTY=3\n# a comment\n")
    from_file = services.start("monolith", tmp_path / "a", env={"INITIAL_STOCK": None}, cwd=tmp_path)
    with services.running(from_file):
        assert _available(from_file) == 7
        assert from_file.stop() == 0
    # the environment beats .env
    overridden = services.start("monolith", tmp_path / "b", env={"INITIAL_STOCK": "9"}, cwd=tmp_path)
    with services.running(overridden):
        assert _available(overridden) == 9
        assert overridden.stop() == 0


def test_start_line_names_mode_url_and_stock(tmp_path: Path) -> None:
    monolith = services.start("monolith", tmp_path, env={"LOG_LEVEL": "info", "INITIAL_STOCK": "42"})
    with services.running(monolith):
        assert monolith.stop() == 0
    log = monolith.log()
    assert f"monolith listening on http://127.0.0.1:{monolith.port} (mode monolith, stock 42)" in log


def test_sigint_exits_cleanly(tmp_path: Path) -> None:
    monolith = services.start("monolith", tmp_path)
    with services.running(monolith):
        monolith.process.send_signal(signal.SIGINT)
        assert monolith.process.wait(timeout=15) == 0


def test_one_owner_per_store(tmp_path: Path) -> None:
    first = services.start("monolith", tmp_path)
    with services.running(first):
        second = services.start("monolith", tmp_path, wait=False)
        assert second.process.wait(timeout=30) != 0
        assert "is held by another process" in second.log()
        restock = _run("restock", "5", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
        assert restock.returncode != 0 and "is held by another process" in restock.stderr
        assert _available(first) == 1000  # still the only seller, with its stock untouched
        assert first.stop() == 0


def test_workers_need_a_shared_store(tmp_path: Path) -> None:
    result = _run("monolith", "--workers", "2", cwd=tmp_path)
    assert result.returncode == EXIT_CONFIG
    assert "shared store" in result.stderr


def test_restock_adds_to_a_stopped_store_and_initial_stock_seeds_only_once(tmp_path: Path) -> None:
    monolith = services.start("monolith", tmp_path)
    with services.running(monolith):
        assert _available(monolith) == 1000
        assert monolith.stop() == 0
    result = _run("restock", "250", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    reopened = services.start("monolith", tmp_path, env={"INITIAL_STOCK": "5"})
    with services.running(reopened):
        assert _available(reopened) == 1250  # INITIAL_STOCK=5 does not reseed an existing store
        assert reopened.stop() == 0
