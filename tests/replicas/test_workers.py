"""``ticketsys monolith --workers 2``: forked SO_REUSEPORT workers on one port and one Redis.

README: with ``STOCK_STORE=redis://…`` any number of processes share one stock, so
``--workers N`` is allowed; with the in-process stores each worker would hold its own stock,
so it is refused (exit 2, the reason named). On SIGTERM the parent forwards the signal and
exits 0 once every worker has; if one worker dies, the others are stopped too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.replicas.load import Redis, assert_serial, buyers
from tests.support.buyers import Ledger, available, read_orders
from tests.support.figures import RecordProperty, report
from tests.support.services import BIN, ROOT, Service, free_port

pytestmark = pytest.mark.slow

BUYERS = 50
WORKERS = 2


def _environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The inherited environment without any ticketsys setting of the caller's, plus ours."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in ("STOCK_STORE", "INITIAL_STOCK", "DATA_DIR", "MONOLITH_PORT")
    }
    return {**inherited, "DATA_DIR": str(tmp_path / "data"), **variables}


@contextmanager
def _workers(tmp_path: Path, env: dict[str, str]) -> Iterator[Service]:
    """``bin/ticketsys monolith --workers 2`` (services.start takes no extra arguments), as a
    Service: its pid is the parent's; killed with its workers if the test fails."""
    port = free_port()
    log_path = tmp_path / f"monolith-workers-{port}.log"
    command = [str(BIN), "monolith", "--port", str(port), "--workers", str(WORKERS)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    service = Service("monolith", port, process, log_path, {**env})
    try:
        service.wait_healthy()
        yield service
    finally:
        pids = _children(service.pid)
        service.kill()
        for pid in pids:  # a worker left behind by a failed test is killed by its own pid
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _children(parent: int) -> list[int]:
    """Pids whose parent is ``parent`` (from /proc: no psutil in the environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        # Field 4 is the parent pid; the command name (field 2) may hold spaces, so split after it.
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return sorted(found)


def _alive(pid: int) -> bool:
    """Running (or stopped), not gone and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _port_is_free(port: int) -> bool:
    """Nothing listens on ``port``: a plain listener can bind it (SO_REUSEADDR only skips the
    TIME_WAIT of the connections the server closed; without SO_REUSEPORT a live listener of
    any worker would refuse the bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def _wait_for_workers(parent: int, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (pids := _children(parent)) and len(pids) < WORKERS:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)  # polling /proc for the forks, not waiting blindly
    return pids


def test_two_workers_on_redis_sell_exactly_the_stock_and_stop_cleanly(
    tmp_path: Path, redis: Redis, record_property: RecordProperty
) -> None:
    stock = 1500
    env = _environment(tmp_path, STOCK_STORE=redis.url, INITIAL_STOCK=str(stock), LOG_LEVEL="info")
    with _workers(tmp_path, env) as monolith:
        workers = _wait_for_workers(monolith.pid)
        assert len(workers) == WORKERS, (workers, monolith.log())
        cpu_before = {pid: _cpu_seconds(pid) for pid in workers}

        async def main() -> tuple[Ledger, float, int]:
            ledger = Ledger()
            began = time.monotonic()
            # Each buyer has its own connection: the kernel spreads connections over the workers.
            await buyers(BUYERS, [monolith.url], ledger, asyncio.Event(), seed=4)
            took = time.monotonic() - began
            left = await available(monolith.url)
            missing = await read_orders(ledger.sales(), [monolith.url])
            assert not missing, missing
            return ledger, took, left

        ledger, took, left = asyncio.run(main())
        cpu = {pid: round(_cpu_seconds(pid) - cpu_before[pid], 3) for pid in workers}

        monolith.process.send_signal(signal.SIGTERM)
        code = monolith.process.wait(timeout=15)
        assert code == 0, monolith.log()
        assert not [pid for pid in workers if _alive(pid)], "a worker outlived its parent"
        assert _port_is_free(monolith.port), "something still listens on the port"

    assert set(ledger.statuses()) <= {200, 409}, ledger.statuses()
    assert left == 0
    assert ledger.sold() == stock
    assert_serial(ledger.sales(), stock)
    # Both workers served: each spent CPU on the sale (the one shared stock kept it exact).
    assert all(seconds > 0.02 for seconds in cpu.values()), cpu
    assert f"{WORKERS} workers on port {monolith.port}" in monolith.log()
    figures: dict[str, Any] = {"sold": ledger.sold(), "orders": len(ledger.sales())}
    figures |= {"seconds": round(took, 2), "worker_cpu_s": sorted(cpu.values())}
    report(record_property, "two workers on redis", **figures)


def test_a_dead_worker_stops_the_others(tmp_path: Path, redis: Redis) -> None:
    """README (cli.run_workers): a half-capacity service that looks healthy is worse than one
    that restarts whole, so when one worker dies the parent stops the other and exits 1."""
    env = _environment(tmp_path, STOCK_STORE=redis.url, INITIAL_STOCK="10")
    with _workers(tmp_path, env) as monolith:
        workers = _wait_for_workers(monolith.pid)
        assert len(workers) == WORKERS, (workers, monolith.log())
        os.kill(workers[0], signal.SIGKILL)
        code = monolith.process.wait(timeout=15)
        assert code == 1, monolith.log()
        assert not [pid for pid in workers if _alive(pid)], "a worker outlived its parent"
        assert _port_is_free(monolith.port)


@pytest.mark.parametrize("store", [None, "sqlite", "memory"])
def test_workers_need_a_shared_store(tmp_path: Path, store: str | None) -> None:
    """The default store (sqlite) and memory: exit 2 before anything listens, saying why."""
    env = _environment(tmp_path, **({"STOCK_STORE": store} if store else {}))
    port = free_port()
    result = subprocess.run(
        [str(BIN), "monolith", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,  # away from any .env in the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    message = result.stderr.strip()
    assert "--workers 2 needs a shared store (STOCK_STORE=redis://...)" in message, message
    assert f"with STOCK_STORE={store or 'sqlite'} each worker would hold its own stock" in message, message
    assert not (tmp_path / "data").exists(), "refused, yet it opened a store"
    assert _port_is_free(port)
