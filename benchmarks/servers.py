"""Server processes that outlive a crash, for the benchmarks that restart (longsale.py,
engines.py): started on a data directory that stays, killed with SIGKILL, started again on
the same data, and timed from exec to the first answer. (loadrun.py's setups start once, on
throwaway directories.) The helpers underneath are loadrun's: the same pinning to CPU 0, the
same readiness polling, the same RSS from /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: benchmarks/ is a package
from benchmarks import loadrun

perf = time.perf_counter
T = TypeVar("T")


@dataclass
class Server:
    """One server process's recipe (``argv`` runs under ``taskset -c 0``), and its process."""

    role: str  # monolith, vacancy or ticket: what /proc and the tables call it
    port: int
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    spawned: float = 0.0  # perf() just before exec

    def spawn(self) -> None:
        with self.log.open("ab") as log:
            self.spawned = perf()
            self.proc = subprocess.Popen(
                ["taskset", "-c", loadrun.SERVER_CPU, *self.argv],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=log,
            )

    def first_answer(self, path: str = "/", limit: float = 120.0) -> float:
        """Seconds from exec until ``path`` first answers 200 (polled every 2 ms)."""
        loadrun.wait_ready(self.port, [self.running], path=path, limit=limit)
        return perf() - self.spawned

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed or closed."""
        with contextlib.suppress(ProcessLookupError):
            self.running.send_signal(signal.SIGKILL)
        self.running.wait()

    def stop(self, limit: float = 300.0) -> tuple[float, int | None]:
        """SIGTERM; the seconds it took to exit and its exit code (None: killed after ``limit``)."""
        proc = self.running
        t0 = perf()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = proc.wait(limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
        return perf() - t0, code

    def rss_kib(self) -> int:
        return loadrun.rss_kib(self.running.pid)

    def cpu_seconds(self) -> float:
        return loadrun.proc_cpu(self.running.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def running(self) -> subprocess.Popen[bytes]:
        if self.proc is None:
            raise RuntimeError(f"{self.role} was never started")
        return self.proc


def start(servers: list[Server], path: str = "/", limit: float = 120.0) -> dict[str, float]:
    """Start the servers one after the other, each once the one before answers (they share
    CPU 0: started together, each would be timed with the other's start-up in it); the
    seconds from each one's exec to its first answer of ``path``, by role."""
    try:
        times = {}
        for server in servers:
            server.spawn()
            times[server.role] = round(server.first_answer(path, limit), 4)
        return times
    except BaseException:
        for server in servers:
            if server.alive():
                server.kill()
        raise


def first_purchase(port: int, since: float, limit: float = 120.0) -> float:
    """Seconds from ``since`` (a perf() time) until a purchase of 1 is answered 200 (polled)."""
    while perf() - since < limit:
        with contextlib.suppress(OSError, ValueError):
            if loadrun.http_request(port, "POST", "/api/v1/purchase", b'{"qty": 1}', timeout=5.0)[0] == 200:
                return perf() - since
        time.sleep(0.002)
    raise RuntimeError(f"no purchase answered 200 on port {port} within {limit} s")


def settled(read: Callable[[], T]) -> T:
    """What ``read()`` returns once it stops changing (read every 0.2 s): the answers that
    were in flight when the load stopped are done."""
    last = read()
    while True:
        time.sleep(0.2)
        now = read()
        if now == last:
            return now
        last = now


def disk_bytes(directory: Path) -> dict[str, int]:
    """What the files under ``directory`` take: ``allocated`` (blocks, as du counts) and
    ``apparent`` (their sizes)."""
    allocated = apparent = 0
    for root, _, names in os.walk(directory):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(os.path.join(root, name))
                allocated += st.st_blocks * 512
                apparent += st.st_size
    return {"allocated": allocated, "apparent": apparent}


def filesystem(directory: Path) -> str:
    """The type of the filesystem ``directory`` is on (a tmpfs would flatter every fsync)."""
    out = subprocess.run(["stat", "-f", "-c", "%T", str(directory)], capture_output=True, text=True)
    return out.stdout.strip() or "?"
