"""The load runner: every setup started as real processes, measured side by side in one run.

    apt-get install -y wrk
    .venv/bin/python benchmarks/loadrun.py                  # the full run (~15 min)
    .venv/bin/python benchmarks/loadrun.py --quick          # a sanity run (~2 min)
    .venv/bin/python benchmarks/loadrun.py --setups ceiling monolith --runs 5
    .venv/bin/python benchmarks/loadrun.py --setups monolith microservices --baseline e73b81e

Servers run pinned to CPU 0 (``taskset -c 0``), the load generators to CPU 1. Per setup:

1. maximum throughput of ``GET /api/v1/available`` and ``POST /api/v1/purchase``: wrk, one
   thread, 64 keep-alive connections (closed loop: it measures capacity, not latency);
2. latency percentiles of purchases at fixed arrival rates (1k, 5k, 20k req/s) with
   ``benchmarks/openloop.py``, which charges each request from its intended start;
3. resident memory (VmRSS) of the server processes, idle after start-up and after the load,
   and how many orders the load left in memory.

Plus the monolith's start-to-first-answer (median of several cold starts). Each figure is the
median of ``--runs`` runs. Before each measurement the machine is checked for other load
(it is shared): the CPU time others used is recorded beside the figure, and the runner waits
a little for a quiet moment. Writes ``results.md``, ``results.json`` and ``latency.png`` to
``--out`` and prints the table.

``--baseline COMMIT`` measures each setup twice in turn, as this tree and as ``COMMIT`` (a
temporary git worktree on ``PYTHONPATH``, this venv): ``name`` then ``name@COMMIT``, so a
change is judged against its parent in one run on one machine. ``--quick`` prints figures
only: one 2-second run decides nothing, so the targets are checked in full runs alone.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: benchmarks/ is a package
from benchmarks import docs

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
PY = str(VENV / "python")
BENCH = ROOT / "benchmarks"
SERVER_CPU = "0"
LOAD_CPU = "1"
STOCK = 10**12  # never sells out: every purchase in every run succeeds
PURCHASE_BODY = '{"qty": 1}'


def uvicorn(app: str, port: str = "{port}") -> list[str]:
    """``app`` under uvicorn with uvloop and httptools, no access log: ours, and the seed
    guide's as its scripts/run_*.py serve it."""
    return [str(VENV / "uvicorn"), app, "--port", port, "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning"]  # fmt: skip


# What every setup is. "{port}" and "{port2}" are filled with free ports.
SETUPS: dict[str, dict[str, Any]] = {
    "ceiling": {
        "about": "benchmarks/ceiling.py: fixed bytes per request, no parsing",
        "procs": [[PY, str(BENCH / "ceiling.py"), "--port", "{port}"]],
        "ours": False,
    },
    "monolith": {
        "about": "python -m ticketsys monolith (embedded server, SERVER_DISPATCH=direct)",
        "procs": [[PY, "-m", "ticketsys", "monolith", "--port", "{port}"]],
    },
    "microservices": {
        "about": "vacancy + ticket (own httptools pool), both on CPU 0",
        "procs": [
            [PY, "-m", "ticketsys", "vacancy", "--port", "{port2}"],
            [PY, "-m", "ticketsys", "ticket", "--port", "{port}"],
        ],
        "env": {"VACANCY_URL": "http://127.0.0.1:{port2}"},
    },
    "microservices-httpx": {
        "about": "the same with VACANCY_CLIENT=httpx",
        "procs": [
            [PY, "-m", "ticketsys", "vacancy", "--port", "{port2}"],
            [PY, "-m", "ticketsys", "ticket", "--port", "{port}"],
        ],
        "env": {"VACANCY_URL": "http://127.0.0.1:{port2}", "VACANCY_CLIENT": "httpx"},
        "throughput_only": True,  # ~450 req/s: every open-loop rate would only time out
    },
    "hypercorn": {
        "about": "hypercorn -k uvloop ticketsys.apps.monolith:app",
        "procs": [
            [
                str(VENV / "hypercorn"),
                "ticketsys.apps.monolith:app",
                "--bind",
                "127.0.0.1:{port}",
                "--worker-class",
                "uvloop",
                "--log-level",
                "warning",
            ]
        ],
    },
    "uvicorn": {
        "about": "uvicorn --loop uvloop --http httptools ticketsys.apps.monolith:app",
        "procs": [uvicorn("ticketsys.apps.monolith:app")],
    },
    "monolith-sqlite": {
        "about": "the monolith on the default store, SQLite, with FSYNC=everysec (durable stock and orders)",
        "procs": [[PY, "-m", "ticketsys", "monolith", "--port", "{port}"]],
        "env": {"STOCK_STORE": "sqlite", "FSYNC": "everysec"},
    },
    "microservices-sqlite": {
        "about": "vacancy + ticket on the default store, SQLite, with FSYNC=everysec, both on CPU 0",
        "procs": [
            [PY, "-m", "ticketsys", "vacancy", "--port", "{port2}"],
            [PY, "-m", "ticketsys", "ticket", "--port", "{port}"],
        ],
        "env": {"VACANCY_URL": "http://127.0.0.1:{port2}", "STOCK_STORE": "sqlite", "FSYNC": "everysec"},
    },
    "monolith-asgi": {
        "about": "the monolith with SERVER_DISPATCH=asgi (the embedded server drives the ASGI adapter)",
        "procs": [[PY, "-m", "ticketsys", "monolith", "--port", "{port}"]],
        "env": {"SERVER_DISPATCH": "asgi"},
    },
    # "redis": True starts a redis-server (AOF, fsync everysec) on "{redisport}", also on
    # CPU 0, before the procs, and points STOCK_STORE at it. Its RSS is reported apart.
    "monolith-redis": {
        "about": "the monolith with STOCK_STORE=redis:// (redis-server on CPU 0 too)",
        "procs": [[PY, "-m", "ticketsys", "monolith", "--port", "{port}"]],
        "redis": True,
    },
    "monolith-redis-2workers": {
        "about": "monolith --workers 2 (SO_REUSEPORT) on one Redis, all on CPU 0",
        "procs": [[PY, "-m", "ticketsys", "monolith", "--port", "{port}", "--workers", "2"]],
        "redis": True,
    },
    "microservices-redis": {
        "about": "vacancy + ticket, both on one Redis, all on CPU 0",
        "procs": [
            [PY, "-m", "ticketsys", "vacancy", "--port", "{port2}"],
            [PY, "-m", "ticketsys", "ticket", "--port", "{port}"],
        ],
        "env": {"VACANCY_URL": "http://127.0.0.1:{port2}"},
        "redis": True,
    },
    "microservices-redis-2tickets": {
        "about": "vacancy + ticket --workers 2 (two replicas on one port), one Redis, all on CPU 0",
        "procs": [
            [PY, "-m", "ticketsys", "vacancy", "--port", "{port2}"],
            [PY, "-m", "ticketsys", "ticket", "--port", "{port}", "--workers", "2"],
        ],
        "env": {"VACANCY_URL": "http://127.0.0.1:{port2}"},
        "redis": True,
    },
}


# The seed's own design (benchmarks/seed_design.py, FastAPI + httpx): what this project started
# from. Not ours, so no --baseline twin; it has no /healthz, so readiness polls /available.
SETUPS.update(
    {
        "seed-monolith": {
            "about": "the seed guide's FastAPI design, monolith mode, under uvicorn",
            "procs": [uvicorn("benchmarks.seed_design:monolith_app")],
            "env": {"DEPLOYMENT_MODE": "monolith", "PYTHONPATH": str(ROOT)},
            "ready": "/api/v1/available",
            "ours": False,
        },
        "seed-microservices": {
            "about": "the seed guide's FastAPI design, vacancy + ticket (httpx), uvicorn, both on CPU 0",
            "procs": [
                uvicorn("benchmarks.seed_design:vacancy_app", "{port2}"),
                uvicorn("benchmarks.seed_design:ticket_app"),
            ],
            "env": {
                "DEPLOYMENT_MODE": "microservices",
                "PYTHONPATH": str(ROOT),
                "VACANCY_URL": "http://127.0.0.1:{port2}",
            },
            "ready": "/api/v1/available",
            "ours": False,
            "throughput_only": True,  # ~200 req/s, as the guide says: every open-loop rate would time out
        },
    }
)
REDIS_SERVER = "/usr/bin/redis-server"
DEFAULT_SETUPS = [
    "ceiling", "seed-monolith", "seed-microservices", "monolith", "monolith-asgi", "monolith-sqlite",
    "uvicorn", "hypercorn", "microservices", "microservices-httpx",
]  # fmt: skip


@dataclass
class Options:
    setups: list[str]
    runs: int
    wrk_seconds: float
    open_seconds: float
    warmup: float
    rates: list[int]
    startup_reps: int
    out: Path
    quick: bool
    log_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_dir = self.out / "logs"


# -- small helpers -----------------------------------------------------------------------------


def say(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 1.0) -> tuple[int, bytes]:
    """One GET on a fresh connection: (status, body). Raises OSError if nothing answers."""
    return http_request(port, "GET", path, timeout=timeout)


def http_request(
    port: int, method: str, path: str, body: bytes = b"", timeout: float = 1.0
) -> tuple[int, bytes]:
    """One request on a fresh connection (a body is sent as JSON): (status, body)."""
    request = f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n"
    if body:
        request += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request.encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:  # read by content-length: the ceiling never closes
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("closed before the response head")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        found = re.search(rb"content-length:\s*(\d+)", head, re.I)
        length = int(found.group(1)) if found else 0
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(head[9:12]), body


def wait_ready(
    port: int, procs: list[subprocess.Popen[bytes]], path: str = "/healthz", limit: float = 15.0
) -> float:
    """Poll ``path`` until it answers 200; returns the seconds it took. Polls, never sleeps
    a fixed time: a refused connect returns at once, so the poll interval is 2 ms."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args!r} exited with {p.returncode} before answering")
        with contextlib.suppress(OSError, ValueError):
            if http_get(port, path, timeout=0.5)[0] == 200:
                return time.perf_counter() - start
        time.sleep(0.002)
    raise RuntimeError(f"port {port} did not answer {path} within {limit} s")


def wait_redis(port: int, proc: subprocess.Popen[bytes], limit: float = 15.0) -> float:
    """Poll PING until redis-server answers +PONG; returns the seconds it took."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode} before answering")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.sendall(b"PING\r\n")
            if s.recv(64).startswith(b"+PONG"):
                return time.perf_counter() - start
        time.sleep(0.002)
    raise RuntimeError(f"redis-server on port {port} did not answer PING within {limit} s")


def wait_listeners(port: int, count: int, procs: list[subprocess.Popen[bytes]], limit: float = 15.0) -> None:
    """Wait until ``count`` sockets listen on ``port`` (``--workers``: one per worker, by
    SO_REUSEPORT), so that the load spreads over all of them from the first connection."""
    start, want = time.perf_counter(), f":{port:04X} "
    while time.perf_counter() - start < limit:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        if sum(1 for line in lines if want in line and line.split()[3] == "0A") >= count:
            return
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a server exited before all its workers listened")
        time.sleep(0.002)
    raise RuntimeError(f"fewer than {count} listeners on port {port} after {limit} s")


def cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def proc_cpu(pid: int) -> float:
    """User+system seconds a process has used."""
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (hypercorn may fork a worker)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def quiet_moment(ours: list[int], wait_up_to: float) -> float:
    """Wait (up to ``wait_up_to`` s) until other processes use < 0.2 of a core; return the
    cores they used in the last 0.5 s sample. Our own servers are idle between measurements."""
    deadline = time.monotonic() + wait_up_to
    hz = os.sysconf("SC_CLK_TCK")
    while True:
        b0, _ = cpu_busy()
        own0 = sum(proc_cpu(p) for p in ours)
        w0 = time.monotonic()
        time.sleep(0.5)
        b1, _ = cpu_busy()
        own1 = sum(proc_cpu(p) for p in ours)
        wall = time.monotonic() - w0
        others = max(0.0, (b1 - b0) / hz - (own1 - own0)) / wall
        if others < 0.2 or time.monotonic() > deadline:
            return round(others, 2)


# -- the processes of a setup ---------------------------------------------------------------------


@dataclass
class Running:
    name: str
    port: int
    procs: list[subprocess.Popen[bytes]]
    redis: subprocess.Popen[bytes] | None = None  # not in procs: its RSS is reported apart
    idle_rss_kib: dict[str, int] = field(default_factory=dict)
    idle_redis_rss_kib: int | None = None

    def pids(self) -> list[int]:
        """Every process of the setup, redis-server included (for the CPU accounting)."""
        extra = [self.redis] if self.redis else []
        return [pid for p in self.procs + extra for pid in descendants(p.pid)]

    def redis_rss(self) -> int | None:
        return rss_kib(self.redis.pid) if self.redis else None

    def rss(self) -> dict[str, int]:
        """VmRSS in KiB per process we started (its children included), by role."""
        return {
            f"{i}:{_role(p.args)}": sum(rss_kib(pid) for pid in descendants(p.pid))
            for i, p in enumerate(self.procs)
        }


def _role(args: Any) -> str:
    for word in ("monolith", "vacancy", "ticket", "ceiling.py", "hypercorn", "uvicorn"):
        if any(str(a).endswith(word) for a in args):
            return word.removesuffix(".py")
    return str(args[-1])


@contextlib.contextmanager
def worktree(commit: str, parent: Path) -> Iterator[Path]:
    """A detached ``git worktree`` of ``commit`` under ``parent``, removed afterwards."""
    path = parent / f"tree-{commit}"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "remove", "--force", str(path)], capture_output=True)
        subprocess.run([*git, "prune"], capture_output=True)


def imports_from(tree: Path, env: dict[str, str], cwd: str) -> None:
    """Check that ``env`` (its PYTHONPATH) makes ``python`` import ticketsys from ``tree``."""
    found = subprocess.run(
        [PY, "-c", "import ticketsys; print(ticketsys.__file__)"],
        env=env, cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not found.startswith(str(tree)):
        raise RuntimeError(f"PYTHONPATH={tree} still imports ticketsys from {found}")


def add_baseline(names: list[str], commit: str, tree: Path) -> list[str]:
    """``names`` with a twin ``name@commit`` after each. The ceiling and the seed have none
    (they are not ours), nor do the SQLite setups (the store commit e73b81e and those before it
    do not have)."""
    out = []
    for name in names:
        out.append(name)
        if not SETUPS[name].get("ours", True) or SETUPS[name].get("env", {}).get("STOCK_STORE") == "sqlite":
            continue
        twin = f"{name}@{commit}"
        spec = SETUPS[name]
        SETUPS[twin] = {
            **spec,
            "about": f"{spec['about']}, at commit {commit}",
            "env": {**spec.get("env", {}), "PYTHONPATH": str(tree)},
            "baseline_of": name,
        }
        out.append(twin)
    return out


def env_for(extra: dict[str, str], workdir: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("VACANCY", "INITIAL", "MAX_", "DEPLOY", "SERVER_", "STOCK", "WORKERS", "FSYNC", "REDIS")
        )
    }
    env.update(
        {
            "INITIAL_STOCK": str(STOCK),
            "MAX_QTY": "1000",
            "LOG_LEVEL": "warning",
            "PYTHONDONTWRITEBYTECODE": "1",
            # Pinned, not the default (SQLite): the figures compare servers and dispatch, over
            # the same in-memory store. monolith-sqlite measures the default store.
            "STOCK_STORE": "memory",
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def started(name: str, opts: Options) -> Iterator[Running]:
    spec = SETUPS[name]
    port, port2, redisport = free_port(), free_port(), free_port()
    fill = {"port": str(port), "port2": str(port2), "redisport": str(redisport)}
    workdir = tempfile.mkdtemp(prefix=f"loadrun-{name}-")  # no stray .env or data/ is read
    extra = {
        **({"STOCK_STORE": "redis://127.0.0.1:{redisport}/0"} if spec.get("redis") else {}),
        **spec.get("env", {}),
    }
    env = env_for({k: v.format(**fill) for k, v in extra.items()}, workdir)
    if "PYTHONPATH" in env and spec.get("baseline_of"):
        imports_from(Path(env["PYTHONPATH"]), env, workdir)
    if spec.get("baseline_of", name) in ("hypercorn", "uvicorn"):
        env["DEPLOYMENT_MODE"] = "monolith"
    procs: list[subprocess.Popen[bytes]] = []
    redis: subprocess.Popen[bytes] | None = None
    opts.log_dir.mkdir(parents=True, exist_ok=True)

    def spawn(argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with open(opts.log_dir / f"{name}-{log_name}.log", "ab") as log:
            args = ["taskset", "-c", SERVER_CPU] + [a.format(**fill) for a in argv]
            return subprocess.Popen(args, env=env, cwd=workdir, stdout=log, stderr=log)

    try:
        if spec.get("redis"):
            redis = spawn(
                [REDIS_SERVER, "--port", "{redisport}", "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", "everysec", "--dir", workdir],
                "redis",
            )  # fmt: skip
            wait_redis(redisport, redis)
        for i, argv in enumerate(spec["procs"]):
            procs.append(spawn(argv, str(i)))
            # Vacancy must answer before Ticket starts (its readiness asks Vacancy).
            wait_ready(int(port2) if "{port2}" in argv else port, procs, spec.get("ready", "/healthz"))
            if "--workers" in argv:
                wait_listeners(port, int(argv[argv.index("--workers") + 1]), procs)
        running = Running(name, port, procs, redis)
        time.sleep(0.2)  # not readiness (polled above): let start-up garbage settle before RSS
        running.idle_rss_kib = running.rss()
        running.idle_redis_rss_kib = running.redis_rss()
        yield running
    finally:
        # One at a time, last started first: Ticket finishes the requests it took (an
        # overloaded one still has a backlog) while Vacancy and Redis still answer.
        for p in reversed([redis, *procs] if redis else procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(workdir, ignore_errors=True)


# -- the measurements -----------------------------------------------------------------------------


def lua_script(opts: Options) -> Path:
    return write_lua_script(opts.out / "purchase.lua")


def write_lua_script(path: Path) -> Path:
    """wrk's script for purchases: POST ``PURCHASE_BODY`` as application/json."""
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{PURCHASE_BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def wrk_command(port: int, path: str, seconds: float, script: Path | None) -> list[str]:
    """wrk on the load CPU: one thread, 64 keep-alive connections (closed loop)."""
    args = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c64", f"-d{max(1, round(seconds))}s", "--latency"]
    if script is not None:
        args += ["-s", str(script)]
    return [*args, f"http://127.0.0.1:{port}{path}"]


def parse_wrk(out: str) -> dict[str, Any]:
    """wrk's summary: req/s, requests, non-2xx answers, socket errors, closed-loop P50/P99."""
    result: dict[str, Any] = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
    }
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(bad.group(1)) if bad else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(x) for x in errors.groups()) if errors else 0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        if m:
            result[f"closed_loop_p{pct}_ms"] = round(_ms(m.group(1)), 3)
    return result


def wrk(running: Running, opts: Options, path: str, seconds: float) -> dict[str, Any]:
    script = lua_script(opts) if path == "/api/v1/purchase" else None
    args = wrk_command(running.port, path, seconds, script)
    pids = running.pids()
    cpu0 = sum(proc_cpu(p) for p in pids)
    t0 = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    wall = time.monotonic() - t0
    cpu1 = sum(proc_cpu(p) for p in pids)
    return {**parse_wrk(out), "server_cores": round((cpu1 - cpu0) / wall, 2)}


def openloop(running: Running, opts: Options, rate: int) -> dict[str, Any]:
    args = [
        "taskset", "-c", LOAD_CPU, PY, str(BENCH / "openloop.py"),
        "--port", str(running.port), "--rate", str(rate),
        "--duration", str(opts.open_seconds), "--warmup", str(opts.warmup),
        "--body", PURCHASE_BODY,
    ]  # fmt: skip
    pids = running.pids()
    cpu0 = sum(proc_cpu(p) for p in pids)
    t0 = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, timeout=opts.open_seconds + opts.warmup + 60)
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise RuntimeError(f"openloop failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    result["server_cores"] = round((sum(proc_cpu(p) for p in pids) - cpu0) / wall, 2)
    return result


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def measure_setup(name: str, opts: Options) -> dict[str, Any]:
    say(f"== {name}: {SETUPS[name]['about']}")
    result: dict[str, Any] = {"about": SETUPS[name]["about"], "throughput": {}, "latency": {}}
    if "baseline_of" in SETUPS[name]:
        result["baseline_of"] = SETUPS[name]["baseline_of"]
    with started(name, opts) as running:
        pids = running.pids()
        result["idle_rss_kib"] = running.idle_rss_kib
        wrk(running, opts, "/api/v1/purchase", 1.0)  # warm-up: connections, caches, allocator
        for path, label in (("/api/v1/available", "available"), ("/api/v1/purchase", "purchase")):
            runs = []
            for i in range(opts.runs):
                others = quiet_moment(pids, 10.0 if not opts.quick else 1.0)
                r = wrk(running, opts, path, opts.wrk_seconds)
                r["others_cores"] = others
                runs.append(r)
                say(f"   wrk {label} run {i + 1}: {r['rps']:,.0f} req/s (server {r['server_cores']} cores, "
                    f"others {others}, non-2xx {r['non_2xx']}, errors {r['socket_errors']})")  # fmt: skip
            result["throughput"][label] = {"median_rps": median_of(runs, "rps"), "runs": runs}
        for rate in [] if SETUPS[name].get("throughput_only") else opts.rates:
            runs = []
            for i in range(opts.runs):
                others = quiet_moment(pids, 10.0 if not opts.quick else 1.0)
                r = openloop(running, opts, rate)
                r["others_cores"] = others
                runs.append(r)
                pcts = " ".join(f"{k[:-3]} {_f(r[k])}" for k in ("p50_ms", "p95_ms", "p99_ms", "p999_ms"))
                say(f"   open-loop {rate}/s run {i + 1}: {pcts} ms (sent {r['achieved_send_rate']:,.0f}/s, "
                    f"non-200 {r['non_200']}, unanswered {r['unanswered']}, "
                    f"server {r['server_cores']} cores, others {others})")  # fmt: skip
            result["latency"][str(rate)] = {
                **{
                    k: median_of(runs, k)
                    for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms")
                },
                "runs": runs,
            }
        result["rss_kib"] = running.rss()
        if running.redis:
            result["redis_rss_kib"] = {"idle": running.idle_redis_rss_kib, "after": running.redis_rss()}
        if name != "ceiling":
            status, body = http_get(running.port, "/api/v1/available")
            if status == 200:
                result["tickets_sold"] = STOCK - int(json.loads(body)["available"])
    say(f"   RSS idle {result['idle_rss_kib']} KiB, after load {result['rss_kib']} KiB"
        + (f"; redis-server {result['redis_rss_kib']} KiB" if "redis_rss_kib" in result else ""))  # fmt: skip
    return result


def measure_startup(opts: Options) -> dict[str, Any]:
    """Cold start of the monolith: from exec to the first answer of ``GET /`` (polled)."""
    out: dict[str, Any] = {}
    variants = {
        "python -m ticketsys monolith": [PY, "-m", "ticketsys", "monolith"],
        ".venv/bin/ticketsys monolith": [str(VENV / "ticketsys"), "monolith"],
    }
    for label, argv in variants.items():
        times = []
        for _ in range(opts.startup_reps):
            port = free_port()
            workdir = tempfile.mkdtemp(prefix="loadrun-start-")
            t0 = time.perf_counter()
            p = subprocess.Popen(
                ["taskset", "-c", SERVER_CPU, *argv, "--port", str(port)],
                env=env_for({}, workdir),
                cwd=workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_ready(port, [p], path="/")
                times.append(time.perf_counter() - t0)
            finally:
                p.send_signal(signal.SIGTERM)
                p.wait(10)
                shutil.rmtree(workdir, ignore_errors=True)
        out[label] = {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times]}
        say(f"== start-up, {label}: median {out[label]['median_s']} s of {out[label]['runs_s']}")
    return out


# -- the report -----------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if value == float("inf"):
        return "∞"
    return f"{value:.{digits}f}"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    s = results["setups"]

    def rps(name: str) -> float | None:
        found: float | None = s.get(name, {}).get("throughput", {}).get("purchase", {}).get("median_rps")
        return found

    def p95(name: str, rate: str) -> float | None:
        found: float | None = s.get(name, {}).get("latency", {}).get(rate, {}).get("p95_ms")
        return found

    def mib(name: str) -> float | None:
        rss = s.get(name, {}).get("rss_kib")
        return round(sum(rss.values()) / 1024, 1) if rss else None

    rows = []

    def row(figure: str, target: str, measured: str, met: bool | None) -> None:
        rows.append({"figure": figure, "target": target, "measured": measured, "met": met})

    def p99(name: str, rate: str) -> float | None:
        found: float | None = s.get(name, {}).get("latency", {}).get(rate, {}).get("p99_ms")
        return found

    def share(figure: str, name: str, of: str, at_least: float) -> None:
        this, that = rps(name), rps(of)
        if this and that:
            row(figure, f"≥ {at_least:.0%} of {of}'s",
                f"{this:,.0f} req/s = {this / that:.0%} of {that:,.0f}", this >= at_least * that)  # fmt: skip

    def at_most(figure: str, value: float | None, limit: float) -> None:
        if value is not None:
            row(figure, f"≤ {limit} ms", f"{_f(value)} ms", value <= limit)

    # issue 13: what the second process and Redis cost
    share("microservices POST /purchase max throughput", "microservices", "monolith", 0.5)
    at_most("microservices P95 at 5k req/s", p95("microservices", "5000"), 0.4)
    at_most("microservices P99 at 1k req/s", p99("microservices", "1000"), 1.0)
    share("monolith on Redis max throughput", "monolith-redis", "monolith", 0.4)
    share("microservices on Redis max throughput", "microservices-redis", "monolith", 0.25)
    for name in ("monolith-redis", "microservices-redis"):
        at_most(f"{name} P95 at 5k req/s", p95(name, "5000"), 1.0)
    # what this project changes against the design it started from (no target: a reading)
    for ours, seed in (("monolith", "seed-monolith"), ("microservices", "seed-microservices")):
        this, that = rps(ours), rps(seed)
        if this and that:
            row(f"{ours} purchases/s against the seed's design", "—",
                f"{this:,.0f} vs {that:,.0f} ({this / that:.1f} times)", None)  # fmt: skip
    # a change against its parent (--baseline): the same setup, the same run
    for twin, r in s.items():
        base = r.get("baseline_of")
        if base is None or base not in s:
            continue
        now, then = rps(base), rps(twin)
        if now and then:
            row(f"{base} purchases/s against {twin}", "±5 % (monolith), ±10 % (microservices)",
                f"{now:,.0f} vs {then:,.0f} ({now / then - 1:+.1%})",
                now >= (0.9 if "microservices" in base else 0.95) * then)  # fmt: skip
        for rate in ("1000", "5000"):
            now95, then95 = p95(base, rate), p95(twin, rate)
            if now95 is not None and then95 is not None:
                row(f"{base} P95 at {int(rate) // 1000}k/s against {twin}", "not above",
                    f"{_f(now95)} vs {_f(then95)} ms", None)  # fmt: skip
    if (mono_mib := mib("monolith")) is not None:
        idle = round(sum(s["monolith"]["idle_rss_kib"].values()) / 1024, 1)
        row("monolith resident memory after load", "≤ 30 MB",
            f"{mono_mib} MiB (idle {idle} MiB; {s['monolith'].get('tickets_sold', 0):,} orders held)",
            mono_mib <= 30)  # fmt: skip
    if (micro_mib := mib("microservices")) is not None:
        idle = round(sum(s["microservices"]["idle_rss_kib"].values()) / 1024, 1)
        row("vacancy + ticket resident memory after load", "≤ 60 MB",
            f"{micro_mib} MiB (idle {idle} MiB)", micro_mib <= 60)  # fmt: skip
    start = results.get("startup", {}).get(".venv/bin/ticketsys monolith", {}).get("median_s")
    if start is not None:
        row("ticketsys monolith start to first answer", "≤ 0.5 s", f"{start:.3f} s", start <= 0.5)
    return rows


def markdown(results: dict[str, Any]) -> str:
    s = results["setups"]
    rates = results["config"]["rates"]
    lines = [
        f"Machine: {results['machine']['cpu']}, {results['machine']['cpus']} CPUs, "
        f"Python {results['machine']['python']}, {results['machine']['kernel']}, "
        f"commit {results['machine']['commit']}; servers on CPU {SERVER_CPU}, "
        f"load on CPU {LOAD_CPU}; medians of {results['config']['runs']} run(s); {results['started']}.",
        "",
        "| setup | GET /available req/s | POST /purchase req/s | "
        + " | ".join(f"P50 / P95 / P99 / P99.9 ms @ {r // 1000}k/s" for r in rates)
        + " | RSS idle → after load MiB (servers, workers included) |",
        "|---|---:|---:|" + "---:|" * len(rates) + "---:|",
    ]
    for name, r in s.items():
        t = r["throughput"]
        cells = [
            name,
            f"{t.get('available', {}).get('median_rps') or 0:,.0f}",
            f"{t.get('purchase', {}).get('median_rps') or 0:,.0f}",
        ]
        for rate in rates:
            lat = r["latency"].get(str(rate), {})
            cells.append(" / ".join(_f(lat.get(k), 2) for k in ("p50_ms", "p95_ms", "p99_ms", "p999_ms")))
        idle = sum(r["idle_rss_kib"].values()) / 1024
        after = sum(r["rss_kib"].values()) / 1024
        cells.append(f"{idle:.1f} → {after:.1f}")
        if r.get("redis_rss_kib"):
            redis = r["redis_rss_kib"]
            cells[-1] += (
                f" (+ redis-server {(redis['idle'] or 0) / 1024:.1f} → {(redis['after'] or 0) / 1024:.1f})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    if "startup" in results:
        lines += ["", "Start to first answer (median): " + "; ".join(
            f"`{k}` {v['median_s']:.3f} s" for k, v in results["startup"].items())]  # fmt: skip
    rows = results.get("targets", [])
    if rows:
        lines += ["", "| figure | target | measured | met? |", "|---|---|---|---|"]
        for row in rows:
            met = {True: "yes", False: "**no**", None: "—"}[row["met"]]
            lines.append(f"| {row['figure']} | {row['target']} | {row['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def overloaded(latency: dict[str, Any], rate: int) -> float | None:
    """The rate a setup achieved at an open-loop ``rate`` it could not hold (answers short of
    what was sent, or some never answered); None when it held it."""
    runs = latency.get("runs", [])
    if not runs:
        return None
    done = statistics.median(r["completed"] / max(1, r["measured"]) for r in runs)
    never = statistics.median(r.get("unanswered", 0) for r in runs)
    if done >= 0.99 and never == 0 and latency.get("p99_ms") not in (None, float("inf")):
        return None
    return float(rate) * float(done)


def chart(results: dict[str, Any], path: Path) -> None:
    """Throughput by setup (with the ceiling for scale) beside P95 and P99 against the arrival
    rate. A rate a setup could not hold is drawn as such, at the top of the panel with the rate
    it achieved, never dropped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    setups = results["setups"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    bars = axes[0]
    names = list(setups)
    values = [setups[n]["throughput"].get("purchase", {}).get("median_rps") or 0 for n in names]
    shade = {"ceiling": "#999", "seed-monolith": "#d08c2a", "seed-microservices": "#d08c2a"}
    bars.barh(names, values, color=[shade.get(n, "#3a6ea5") for n in names])
    for y, v in enumerate(values):
        bars.text(v, y, f" {v:,.0f}", va="center", fontsize=7)
    bars.invert_yaxis()
    bars.set_xlabel("POST /api/v1/purchase, req/s (wrk, closed loop, server on 1 core)\n"
                    "grey: the ceiling (no parsing); orange: the seed guide's design (FastAPI)")  # fmt: skip
    bars.set_title("throughput")
    bars.tick_params(axis="y", labelsize=7)
    bars.grid(True, axis="x", alpha=0.3)
    rates = results["config"]["rates"]
    for ax, key, title in ((axes[1], "p95_ms", "P95"), (axes[2], "p99_ms", "P99")):
        top = max(
            [v[key] for r in setups.values() for v in r["latency"].values()
             if v.get(key) not in (None, float("inf"))] or [1.0]
        ) * 2  # fmt: skip
        tab20 = plt.get_cmap("tab20")
        ax.set_prop_cycle(color=[tab20(i) for i in range(20)])  # 20 setups told apart
        stacked: dict[int, int] = {}  # overloaded marks drawn at each rate, stacked downwards
        for name, r in setups.items():
            held, lost = [], []
            for rate_text, v in sorted(r["latency"].items(), key=lambda kv: int(kv[0])):
                rate = int(rate_text)
                achieved = overloaded(v, rate)
                if achieved is None:
                    held.append((rate, v[key]))
                else:
                    lost.append((rate, achieved))
            (line,) = ax.plot([p[0] for p in held], [p[1] for p in held], marker="o", label=name)
            for rate, achieved in lost:
                at = top * 0.75 ** stacked.get(rate, 0)
                stacked[rate] = stacked.get(rate, 0) + 1
                ax.plot([rate], [at], marker="x", markersize=9, color=line.get_color())
                label = f"{name}: {achieved / 1000:.1f}k/s"
                ax.annotate(label, (rate, at), fontsize=6, color=line.get_color(),
                            xytext=(-6, -3), textcoords="offset points", ha="right")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(rates, [f"{r // 1000}k" for r in rates])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("arrival rate, req/s (open loop)\nx at the top: not held; the rate achieved beside it")
        ax.set_title(f"{title} latency")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].set_ylabel("ms (log)")
    axes[2].legend(fontsize=7)
    fig.suptitle(
        "ticketsys: purchases, throughput and latency by setup (server on 1 core, load on the other)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return {
        "commit": commit.stdout.strip(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.platform(),
        "wrk": wrk_version.strip(),
        "mem_total_mib": int(Path("/proc/meminfo").read_text().split()[1]) // 1024,
    }


def missing_tool() -> str | None:
    """What a load run needs and this machine lacks, said before the run rather than after it."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (apt-get install -y wrk)"
    if importlib.util.find_spec("matplotlib") is None:
        return "matplotlib is not installed and the charts need it (bin/ticketsys install bench)"
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 run, short durations: a sanity check")
    p.add_argument("--setups", nargs="+", choices=list(SETUPS), default=DEFAULT_SETUPS)
    p.add_argument("--runs", type=int, help="runs per figure (median); default 3, quick 1")
    p.add_argument("--seconds", type=float, help="seconds per wrk / open-loop run; default 5, quick 2")
    p.add_argument("--rates", type=int, nargs="+", default=[1000, 5000, 20000])
    p.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    p.add_argument("--out", type=Path, default=BENCH / "results")
    p.add_argument("--baseline", metavar="COMMIT", help="also measure each setup as COMMIT, in turn")
    p.add_argument(
        "--publish",
        action="store_true",
        help="copy the results to benchmarks/figures/ and refresh the docs' generated tables from them",
    )
    ns = p.parse_args(argv)
    if lacking := missing_tool():
        say(f"loadrun: {lacking}")
        return 2
    with contextlib.ExitStack() as stack:
        if ns.baseline:
            tree = stack.enter_context(worktree(ns.baseline, Path(tempfile.mkdtemp(prefix="loadrun-base-"))))
            ns.setups = add_baseline(ns.setups, ns.baseline, tree)
        return run(ns)


def run(ns: argparse.Namespace) -> int:
    seconds = ns.seconds or (2.0 if ns.quick else 5.0)
    opts = Options(
        setups=ns.setups,
        runs=ns.runs or (1 if ns.quick else 3),
        wrk_seconds=seconds,
        open_seconds=seconds,
        warmup=0.5 if ns.quick else 1.0,
        rates=sorted(ns.rates),
        startup_reps=3 if ns.quick else 7,
        out=ns.out,
        quick=ns.quick,
    )
    opts.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "config": {
            "runs": opts.runs,
            "wrk_seconds": opts.wrk_seconds,
            "open_seconds": opts.open_seconds,
            "warmup": opts.warmup,
            "rates": opts.rates,
            "wrk": "1 thread, 64 keep-alive connections",
            "initial_stock": STOCK,
            "server_cpu": SERVER_CPU,
            "stock_store": "memory unless the setup says otherwise",
            "load_cpu": LOAD_CPU,
        },
        "setups": {},
    }
    for name in opts.setups:
        try:
            results["setups"][name] = measure_setup(name, opts)
        except Exception as exc:  # one broken setup must not lose the others' figures
            say(f"   {name} FAILED: {exc!r}")
            results.setdefault("failed", {})[name] = repr(exc)
    if not ns.no_startup:
        results["startup"] = measure_startup(opts)
    results["targets"] = [] if opts.quick else targets(results)  # one short run decides nothing
    table = markdown(results)
    (opts.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (opts.out / "results.md").write_text(table)
    chart(results, opts.out / "latency.png")
    print(table)
    say(f"wrote {opts.out / 'results.md'}, results.json, latency.png")
    if ns.publish:
        if opts.quick:
            say("loadrun: a --quick run is not published (one short run decides nothing)")
            return 2
        for name in ("results.md", "results.json", "latency.png"):
            shutil.copyfile(opts.out / name, BENCH / "figures" / name)
        for document in docs.DOCUMENTS:
            docs.publish(document)
        say("published to benchmarks/figures/ and the docs' generated tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
