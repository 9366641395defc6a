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
        pytest.param(["monolith", "--port", "99999"], {}, "--port", id="port-out-of-range"),
        pytest.param(["ticket"], {"VACANCY_URL": "ftp://x"}, "VACANCY_URL", id="url-scheme"),
        pytest.param(["monolith"], {"MAX_QTY": "0"}, "MAX_QTY", id="max-qty"),
        pytest.param(["monolith"], {"STOCK_STORE": "postgres"}, "STOCK_STORE", id="store"),
        pytest.param(["monolith"], {"STOCK_STORE": "journal"}, "STOCK_STORE", id="retired-journal-store"),
        pytest.param(["monolith"], {"HOLD_TTL": "7200"}, "HOLD_TTL", id="hold-ttl-above-max"),
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


def test_start_lines_name_the_store_what_it_holds_and_the_url(tmp_path: Path) -> None:
    monolith = services.start("monolith", tmp_path, env={"LOG_LEVEL": "info", "INITIAL_STOCK": "42"})
    with services.running(monolith):
        services.post(monolith.url, "/api/v1/purchase", {"qty": 2})
        assert monolith.stop() == 0
    again = services.start("monolith", tmp_path, env={"LOG_LEVEL": "info", "INITIAL_STOCK": "500"})
    with services.running(again):
        assert again.stop() == 0
    log = again.log()
    assert "40 available, 0 held, 2 sold of 42" in log  # what it recovered, not INITIAL_STOCK
    assert f"monolith listening on http://127.0.0.1:{again.port} (mode monolith, store sqlite)" in log


def test_sigint_exits_cleanly(tmp_path: Path) -> None:
    monolith = services.start("monolith", tmp_path)
    with services.running(monolith):
        monolith.process.send_signal(signal.SIGINT)
        assert monolith.process.wait(timeout=15) == 0


def test_one_owner_per_store(tmp_path: Path) -> None:
    first = services.start("monolith", tmp_path)
    with services.running(first):
        second = services.start("monolith", tmp_path, wait=False)
        assert second.process.wait(timeout=30) == EXIT_CONFIG
        assert "another process owns this store" in second.log()
        restock = _run("restock", "5", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
        assert restock.returncode != 0 and "another process owns this store" in restock.stderr
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


def test_restock_is_bounded_and_refuses_a_directory_without_a_store(tmp_path: Path) -> None:
    empty = _run("restock", "5", "--data-dir", str(tmp_path / "nothing"), cwd=tmp_path)
    assert empty.returncode == 1 and "no stock store" in empty.stderr
    assert not (tmp_path / "nothing").exists()  # nothing was created
    absurd = _run("restock", "9000000000000000000", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert absurd.returncode == EXIT_CONFIG and "between 1 and" in absurd.stderr
    monolith = services.start("monolith", tmp_path)
    with services.running(monolith):
        assert monolith.stop() == 0
    restocks = [
        _run("restock", "999999999000", "--data-dir", str(tmp_path / "data"), cwd=tmp_path) for _ in range(3)
    ]
    assert [result.returncode for result in restocks] == [0, 1, 1]  # the stock's bound: 10**12
    reopened = services.start("monolith", tmp_path)  # and the store still starts
    with services.running(reopened):
        assert _available(reopened) == 10**12
        assert reopened.stop() == 0
