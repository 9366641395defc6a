"""The engine decision (issue 9): the SQLite store against the journal store it replaced, and
the memory store as the reference, side by side in one run.

    .venv/bin/python benchmarks/engines.py                        # restarts after 100 k and 1 M orders
    .venv/bin/python benchmarks/engines.py --orders 100000 --runs 1 --seconds 2   # a short check

Every engine serves the monolith with ``FSYNC=everysec`` on its own data directory, on CPU 0
(load on CPU 1): ``sqlite`` (this tree's default), ``journal`` (commit e73b81e, run from a
temporary ``git worktree`` with this venv's Python and ``PYTHONPATH`` pointing at it, removed
afterwards) and ``memory`` (this tree, volatile: the reference). All three run at once and
each measurement goes round them in turn: kill -9 and restart after ``--orders``/10 orders;
purchases/s (wrk); P50/P95/P99 at 1k and 5k/s (openloop.py); kill -9 and restart after
``--orders``, with RSS and disk per order; a graceful stop. What each figure means and how it
is measured: benchmarks/README.md, "Engine".

Writes ``engines.json`` and ``engines.md`` (the table for benchmarks/README.md, "Engine") to
``--out`` (default benchmarks/figures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: benchmarks/ is a package
from benchmarks import loadrun, servers
from benchmarks.servers import Server

JOURNAL_COMMIT = "e73b81e"
ENGINES: dict[str, dict[str, Any]] = {
    "sqlite": {
        "about": "SQLite, WAL, group commit (this tree, the default)",
        "env": {"STOCK_STORE": "sqlite"},
    },
    "journal": {
        "about": f"the append-only journal with snapshots (commit {JOURNAL_COMMIT})",
        "env": {"STOCK_STORE": "journal"},
        "commit": JOURNAL_COMMIT,
    },
    "memory": {"about": "in memory, volatile (this tree): the reference", "env": {"STOCK_STORE": "memory"}},
}
TODAY_RPS = 24_000  # the journal store's purchases/s in the last full run (benchmarks/README.md)


def say(*parts: Any) -> None:
    loadrun.say(*parts)


def make_server(name: str, workdir: Path, tree: Path | None) -> Server:
    home = workdir / name
    home.mkdir(exist_ok=True)
    env = loadrun.env_for(
        {**ENGINES[name]["env"], "FSYNC": "everysec", "DATA_DIR": str(home / "data")}, str(home)
    )
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
        loadrun.imports_from(tree, env, str(home))
    port = loadrun.free_port()
    argv = [loadrun.PY, "-m", "ticketsys", "monolith", "--port", str(port)]
    return Server(name, port, argv, env, home, home / "server.log")


def sold(server: Server) -> int:
    status, body = loadrun.http_get(server.port, "/api/v1/available", timeout=30.0)
    if status != 200:
        raise RuntimeError(f"{server.role}: GET /api/v1/available answered {status}")
    return loadrun.STOCK - int(json.loads(body)["available"])


def fill(server: Server, orders: int, script: Path) -> int:
    """Purchases by wrk until the store holds ``orders`` (the memory store after a restart
    starts again from none); returns the orders it holds once the last answer is in."""
    if sold(server) < orders:
        wrk = subprocess.Popen(
            loadrun.wrk_command(server.port, "/api/v1/purchase", 7 * 86400, script),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while sold(server) < orders:
                if wrk.poll() is not None or not server.alive():
                    raise RuntimeError(f"{server.role}: wrk or the server stopped while filling")
                time.sleep(0.25)
        finally:
            wrk.send_signal(signal.SIGINT)
            wrk.wait(60)
    return servers.settled(lambda: sold(server))


def crash_and_restart(server: Server, orders: int, script: Path) -> dict[str, Any]:
    """Fill to ``orders``, then RSS and disk, kill -9, and the restart timed; the server
    object runs the restarted process afterwards."""
    held = fill(server, orders, script)
    out: dict[str, Any] = {
        "orders": held,
        "rss_kib": server.rss_kib(),
        "disk": servers.disk_bytes(server.cwd / "data"),
    }
    server.kill()
    server.spawn()
    out["first_answer_s"] = round(server.first_answer("/", limit=600), 4)
    out["first_purchase_s"] = round(servers.first_purchase(server.port, server.spawned, limit=600), 4)
    out["orders_after_restart"] = sold(server) - 1  # less the purchase just timed
    out["rss_after_restart_kib"] = server.rss_kib()
    out["disk_after_restart"] = servers.disk_bytes(server.cwd / "data")
    say(
        f"   {server.role}: {held:,} orders, RSS {out['rss_kib'] / 1024:.1f} MiB, disk "
        f"{out['disk']['allocated'] / held:.0f} B/order; kill -9: first answer {out['first_answer_s']} s, "
        f"purchase {out['first_purchase_s']} s, RSS {out['rss_after_restart_kib'] / 1024:.1f} MiB"
    )
    return out


def run(opts: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="engines-", dir=opts.tmp))
    lopts = loadrun.Options(
        setups=[], runs=opts.runs, wrk_seconds=opts.seconds, open_seconds=opts.seconds, warmup=1.0,
        rates=opts.rates, startup_reps=0, out=workdir, quick=False,
    )  # fmt: skip
    script = loadrun.write_lua_script(workdir / "purchase.lua")
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": loadrun.machine(),
        "config": {
            "fsync": "everysec",
            "runs": opts.runs,
            "seconds": opts.seconds,
            "rates": opts.rates,
            "sizes": [opts.orders // 10, opts.orders],
            "filesystem": servers.filesystem(workdir),
            "journal_commit": JOURNAL_COMMIT,
            "command": " ".join(["benchmarks/engines.py", *sys.argv[1:]]),
        },
        "engines": {name: {"about": ENGINES[name]["about"]} for name in opts.engines},
    }
    running: dict[str, Server] = {}
    try:
        with loadrun.worktree(JOURNAL_COMMIT, workdir) as tree:
            for name in opts.engines:
                running[name] = make_server(name, workdir, tree if "commit" in ENGINES[name] else None)
                first = servers.start([running[name]])
                results["engines"][name]["first_start_s"] = first[name]
                results["engines"][name]["idle_rss_kib"] = running[name].rss_kib()
            say(f"== engines {list(running)} started in {workdir} ({results['config']['filesystem']})")
            measure(running, results, lopts, opts, script)
    finally:
        for server in running.values():
            if server.alive():
                server.kill()
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def measure(
    running: dict[str, Server], results: dict[str, Any], lopts: loadrun.Options, opts: argparse.Namespace,
    script: Path,
) -> None:  # fmt: skip
    engines = results["engines"]
    small, large = results["config"]["sizes"]
    say(f"== restart after {small:,} orders")
    for name, server in running.items():
        engines[name]["restart_small"] = crash_and_restart(server, small, script)

    def as_running(server: Server) -> loadrun.Running:
        return loadrun.Running(server.role, server.port, [server.running])

    for server in running.values():
        loadrun.wrk(as_running(server), lopts, "/api/v1/purchase", 1.0)  # warm-up
    say("== purchases/s (wrk)")
    for i in range(opts.runs):
        for name, server in running.items():
            others = loadrun.quiet_moment([server.running.pid], opts.quiet_wait)
            r = loadrun.wrk(as_running(server), lopts, "/api/v1/purchase", opts.seconds)
            r["others_cores"] = others
            engines[name].setdefault("wrk_runs", []).append(r)
            say(f"   {name} run {i + 1}: {r['rps']:,.0f} purchases/s (server {r['server_cores']} cores, "
                f"others {others}, non-2xx {r['non_2xx']})")  # fmt: skip
    for rate in opts.rates:
        say(f"== open loop at {rate:,}/s")
        for i in range(opts.runs):
            for name, server in running.items():
                others = loadrun.quiet_moment([server.running.pid], opts.quiet_wait)
                r = loadrun.openloop(as_running(server), lopts, rate)
                r["others_cores"] = others
                engines[name].setdefault("latency_runs", {}).setdefault(str(rate), []).append(r)
                pcts = " / ".join(loadrun._f(r[k], 2) for k in ("p50_ms", "p95_ms", "p99_ms"))
                say(f"   {name} run {i + 1}: P50/P95/P99 {pcts} ms (others {others})")
    say(f"== restart after {large:,} orders")
    for name, server in running.items():
        engines[name]["restart_large"] = crash_and_restart(server, large, script)
    for name, server in running.items():
        seconds, code = server.stop()
        engines[name]["graceful_stop"] = {"seconds": round(seconds, 3), "exit": code}
    for e in engines.values():
        e["purchases_per_s"] = statistics.median(r["rps"] for r in e["wrk_runs"])
        e["latency"] = {
            rate: {k: statistics.median(r[k] for r in runs) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")}
            for rate, runs in e["latency_runs"].items()
        }


def markdown(results: dict[str, Any]) -> str:
    m, c, e = results["machine"], results["config"], results["engines"]
    small, large = c["sizes"]
    rates = [str(r) for r in c["rates"]]
    lines = [
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, Python {m['python']}, commit {m['commit']}; the monolith, "
        f"FSYNC=everysec, data on {c['filesystem']}; server on CPU {loadrun.SERVER_CPU}, load on CPU "
        f"{loadrun.LOAD_CPU}; medians of {c['runs']} run(s) of {c['seconds']:g} s, engines in turn; "
        f"{results['started']}.",
        "",
        "| engine | POST /purchase req/s | "
        + " | ".join(f"P50 / P95 / P99 ms @ {int(r) // 1000}k/s" for r in rates)
        + f" | kill -9 → first answer after {small:,} / {large:,} orders s "
        "| disk bytes per order, running → restarted "
        f"| RSS after {large:,} orders → after restart MiB | graceful stop s "
        "| others' CPU before a run (max cores) |",
        "|---|---:|" + "---:|" * len(rates) + "---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for name, r in e.items():
        lat = [
            " / ".join(loadrun._f(r["latency"][rate][k], 2) for k in ("p50_ms", "p95_ms", "p99_ms"))
            for rate in rates
        ]
        s, b = r["restart_small"], r["restart_large"]
        disk = "— (volatile)"
        if name != "memory":
            disk = " → ".join(
                f"{b[k]['allocated'] / b['orders']:,.0f}" for k in ("disk", "disk_after_restart")
            )
        cells = [
            f"{name}: {r['about']}", f"{r['purchases_per_s']:,.0f}", *lat,
            f"{s['first_answer_s']:.3f} / {b['first_answer_s']:.3f}", disk,
            f"{b['rss_kib'] / 1024:.1f} → {b['rss_after_restart_kib'] / 1024:.1f}",
            f"{r['graceful_stop']['seconds']:.2f}",
            f"{max(run['others_cores'] for run in _runs(r)):.2f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if "sqlite" in e and "memory" in e:
        sq, mem = e["sqlite"]["purchases_per_s"], e["memory"]["purchases_per_s"]
        journal = e.get("journal", {}).get("purchases_per_s")
        vs = f", journal {journal:,.0f} ({100 * sq / journal:.0f} %)" if journal else ""
        lines += [
            "",
            f"SQLite purchases/s: {sq:,.0f} = {100 * sq / mem:.0f} % of the memory store's {mem:,.0f}{vs} "
            f"in this run; the issue's floor: not below the journal's {TODAY_RPS:,} of the last quiet "
            f"run ({'met' if sq >= TODAY_RPS else 'not met'} here).",
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _runs(engine: dict[str, Any]) -> list[dict[str, Any]]:
    """Every wrk and open-loop run of an engine."""
    return [*engine["wrk_runs"], *(run for runs in engine["latency_runs"].values() for run in runs)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES))
    p.add_argument("--orders", type=int, default=1_000_000, help="the larger size (the smaller is a tenth)")
    p.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds per wrk / open-loop run")
    p.add_argument("--rates", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--quiet-wait", type=float, default=10.0, help="seconds to wait for a quiet machine")
    p.add_argument("--out", type=Path, default=loadrun.BENCH / "figures")
    p.add_argument("--tmp", help="where the data directories go (default: the system's; not a tmpfs)")
    p.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    p.add_argument("--replot", action="store_true", help="rewrite engines.md from --out's JSON")
    ns = p.parse_args(argv)
    if ns.replot:
        results = json.loads((ns.out / "engines.json").read_text())
    elif shutil.which("wrk") is None:
        say("engines: wrk is not installed (apt-get install -y wrk)")
        return 2
    else:
        results = run(ns)
        ns.out.mkdir(parents=True, exist_ok=True)
        (ns.out / "engines.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    table = markdown(results)
    (ns.out / "engines.md").write_text(table)
    print(table)
    say(f"wrote {ns.out / 'engines.md'} and engines.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
