"""The long sale (issue 9): sell millions of tickets on the default store, watch every second,
then crash it, restart it and read the orders back.

    .venv/bin/python benchmarks/longsale.py                       # 10 M monolith, 2 M microservices
    .venv/bin/python benchmarks/longsale.py --sold 200000         # a short validation run
    .venv/bin/python benchmarks/longsale.py --setups monolith --sold 1000000

Per setup (the monolith; vacancy + ticket, both on CPU 0), on fresh data directories with the
default store: the servers run under ``gcprobe.py`` (GC pauses timed inside them); wrk and a
1,000/s open-loop probe (``openloop.py --pacer timer --log``) load them on CPU 1 until
``--sold`` tickets are sold, with a sample every second; then ``kill -9``, a timed restart,
1,000 of the probe's orders read back, ``ticketsys check``, a graceful stop and the disk per
order. What each figure means and how it is measured: benchmarks/README.md, "Long sale".

Writes ``longsale.json``, ``longsale.md`` (the issue's targets against what was measured) and
``longsale.png`` (x: tickets sold) to ``--out`` (default benchmarks/figures).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: benchmarks/ is a package
from benchmarks import docs, gcprobe, loadrun, openloop, servers
from benchmarks.servers import Server
from ticketsys.config import Settings

BENCH = loadrun.BENCH
STOCK = loadrun.STOCK  # never sells out: the sale is stopped at --sold
PROBE_RATE = 1000
READBACK = 1000
MB = 10**6

# The issue's targets (9); the setups' default sizes (8).
SETUPS: dict[str, dict[str, Any]] = {
    "monolith": {"sold": 10_000_000, "roles": ["monolith"], "rss_mb": 40},
    "microservices": {"sold": 2_000_000, "roles": ["vacancy", "ticket"], "rss_mb": 80},
}
GC_PAUSE_MS = 2.0
P99_RATIO = 1.5
RESTART_S = 0.5


def say(*parts: Any) -> None:
    loadrun.say(*parts)


# -- the processes ------------------------------------------------------------------------------


def make_servers(setup: str, workdir: Path, probe: bool) -> list[Server]:
    """The setup's servers on their data directories under ``workdir`` (one per service, as
    the compose layout has it); under gcprobe when ``probe``, else the plain command."""
    roles = SETUPS[setup]["roles"]
    ports = {role: port for role, port in zip(roles, _ports(workdir, roles), strict=True)}
    made = []
    for role in roles:
        env = loadrun.env_for({"DATA_DIR": str(workdir / role)}, str(workdir))
        for default in ("STOCK_STORE", "FSYNC"):  # the defaults: what a new user gets
            env.pop(default, None)
        if role == "ticket":
            env["VACANCY_URL"] = f"http://127.0.0.1:{ports['vacancy']}"
        command = [role, "--port", str(ports[role])]
        if probe:
            argv = [loadrun.PY, str(BENCH / "gcprobe.py"), str(workdir / f"gc-{role}.jsonl"), "--", *command]
        else:
            argv = [loadrun.PY, "-m", "ticketsys", *command]
        made.append(Server(role, ports[role], argv, env, workdir, workdir / f"{role}.log"))
    return made


def _ports(workdir: Path, roles: list[str]) -> list[int]:
    """Free ports, chosen once per sale and kept in ``workdir``: the restart uses the same."""
    saved = workdir / "ports.json"
    if saved.exists():
        return list(json.loads(saved.read_text()))
    ports = [loadrun.free_port() for _ in roles]
    saved.write_text(json.dumps(ports))
    return ports


def stock(port: int) -> dict[str, int]:
    status, body = loadrun.http_get(port, "/api/v1/stock", timeout=30.0)
    if status != 200:
        raise RuntimeError(f"GET /api/v1/stock answered {status}: {body[:200]!r}")
    return dict(json.loads(body))


# -- the sale -----------------------------------------------------------------------------------


@dataclass
class Sample:
    """What is read at each second's boundary ``t`` (epoch)."""

    t: int
    at: float  # time.time() once the stock was read
    sold: int
    rss_kib: dict[str, int]
    disk: int  # allocated bytes of the data directories (the SQLite log included)
    server_cpu: dict[str, float]  # CPU seconds used so far, by role
    own_cpu: float  # CPU seconds of the servers, the load generators and this script
    busy: float  # CPU seconds used by everything, since boot


@dataclass
class Sale:
    setup: str
    target: int
    workdir: Path
    samples: list[Sample] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


def take_sample(
    t: int, port: int, running: list[Server], load: list[subprocess.Popen[Any]], workdir: Path
) -> Sample:
    sold = stock(port)["sold"]
    at = time.time()
    cpu = {s.role: s.cpu_seconds() for s in running}
    own = sum(cpu.values()) + sum(loadrun.proc_cpu(p.pid) for p in load) + loadrun.proc_cpu(os.getpid())
    busy, _ = loadrun.cpu_busy()
    rss = {s.role: s.rss_kib() for s in running}
    disk = sum(servers.disk_bytes(workdir / s.role)["allocated"] for s in running)
    return Sample(t, at, sold, rss, disk, cpu, own, busy / os.sysconf("SC_CLK_TCK"))


def run_load(sale: Sale, running: list[Server], probe_rate: int) -> None:
    """wrk and the probe on CPU 1 until ``sale.target`` tickets are sold; a sample a second."""
    front = running[-1].port  # the monolith, or ticket
    log = sale.workdir / "probe.log"
    probe = subprocess.Popen(
        [
            "taskset",
            "-c",
            loadrun.LOAD_CPU,
            loadrun.PY,
            str(BENCH / "openloop.py"),
            "--port",
            str(front),
            "--rate",
            str(probe_rate),
            "--duration",
            "0",
            "--warmup",
            "0",
            "--pacer",
            "timer",
            "--body",
            loadrun.PURCHASE_BODY,
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    script = loadrun.write_lua_script(sale.workdir / "purchase.lua")
    wrk = subprocess.Popen(
        loadrun.wrk_command(front, "/api/v1/purchase", 7 * 86400, script),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    load = [probe, wrk]
    started = time.time()
    sale.result["load_started"] = started
    t = math.ceil(started)
    stalled_since = started
    try:
        while True:
            time.sleep(max(0.0, t - time.time()))
            for server in running:
                if not server.alive():
                    raise RuntimeError(
                        f"{server.role} exited with {server.running.returncode} during the sale"
                    )
            for proc in load:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} during the sale")
            sample = take_sample(t, front, running, load, sale.workdir)
            if sale.samples and sample.sold == sale.samples[-1].sold:
                if sample.at - stalled_since > 30:
                    raise RuntimeError(f"nothing sold for 30 s (sold {sample.sold})")
            else:
                stalled_since = sample.at
            sale.samples.append(sample)
            if len(sale.samples) % 10 == 0 or sample.sold >= sale.target:
                rss = ", ".join(f"{role} {kib / 1024:.1f}" for role, kib in sample.rss_kib.items())
                say(f"   {sample.t - t0(sale)} s: {sample.sold:,} sold; RSS MiB {rss}")
            if sample.sold >= sale.target:
                break
            t += 1
    finally:
        for proc in load:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # both print their summary on SIGINT
        wrk_out, _ = wrk.communicate(timeout=60)
        probe_out, probe_err = probe.communicate(timeout=60)
    sale.result["load_stopped"] = time.time()
    sale.result["wrk"] = loadrun.parse_wrk(wrk_out)
    if probe.returncode != 0:
        raise RuntimeError(f"the probe failed: {probe_err[-2000:]}")
    sale.result["probe"] = json.loads(probe_out)


def t0(sale: Sale) -> int:
    return sale.samples[0].t if sale.samples else 0


def read_back(port: int, log: Path, count: int) -> dict[str, Any]:
    """``count`` orders the probe was answered, evenly spread over the sale by their
    ``remaining``: each must be readable and say what the purchase answered."""
    sold = sorted(  # by ticket: the first sold has the highest ``remaining``
        (
            (int(remaining), order_id)
            for _, _, status, remaining, order_id in openloop.read_log(str(log))
            if status == "200" and remaining != "-"
        ),
        reverse=True,
    )
    if not sold:
        return {"sampled": 0, "readable": 0, "matching": 0, "problems": ["the probe logged no order"]}
    picked = [sold[round(i * (len(sold) - 1) / max(1, count - 1))] for i in range(min(count, len(sold)))]
    readable = matching = 0
    problems: list[str] = []
    lookups: list[float] = []
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for remaining, order_id in picked:
            t = time.perf_counter()
            conn.request("GET", f"/api/v1/orders/{order_id}")
            response = conn.getresponse()
            body = response.read()
            lookups.append(time.perf_counter() - t)
            if response.status != 200:
                problems.append(f"{order_id}: {response.status} {body[:100]!r}")
                continue
            readable += 1
            order = json.loads(body)
            expected = {"order_id": order_id, "qty": 1, "remaining": remaining}
            if {k: order.get(k) for k in expected} == expected:
                matching += 1
            else:
                problems.append(f"{order_id}: answered {expected}, reads {order}")
    finally:
        conn.close()
    lookups.sort()
    return {
        "probe_orders": len(sold),
        "sampled": len(picked),
        "first_ticket": STOCK - picked[0][0],
        "last_ticket": STOCK - picked[-1][0],
        "readable": readable,
        "matching": matching,
        "lookup_p50_ms": round(lookups[len(lookups) // 2] * 1000, 3),
        "problems": problems[:20],
    }


def check_stores(workdir: Path, roles: list[str]) -> dict[str, Any]:
    out = {}
    for role in roles:
        t = time.perf_counter()
        done = subprocess.run(
            [loadrun.PY, "-m", "ticketsys", "check", "--data-dir", str(workdir / role)],
            capture_output=True,
            text=True,
            cwd=workdir,
            env=loadrun.env_for({}, str(workdir)),
        )
        out[role] = {
            "exit": done.returncode,
            "seconds": round(time.perf_counter() - t, 2),
            "output": (done.stdout + done.stderr).strip()[-2000:],
        }
    return out


def run_sale(setup: str, target: int, opts: argparse.Namespace) -> dict[str, Any]:
    spec = SETUPS[setup]
    workdir = Path(tempfile.mkdtemp(prefix=f"longsale-{setup}-", dir=opts.tmp))
    sale = Sale(setup, target, workdir)
    r = sale.result
    r.update({"target_sold": target, "workdir": str(workdir), "filesystem": servers.filesystem(workdir)})
    say(f"== {setup}: sell {target:,} on the default store in {workdir} ({r['filesystem']})")
    running = make_servers(setup, workdir, probe=True)
    restarted: list[Server] = []
    try:
        r["first_start_s"] = servers.start(running)
        time.sleep(0.2)  # not readiness (polled): let start-up garbage settle before RSS
        r["idle_rss_kib"] = {s.role: s.rss_kib() for s in running}
        r["others_cores_before"] = loadrun.quiet_moment([s.running.pid for s in running], opts.quiet_wait)
        run_load(sale, running, opts.probe_rate)
        front = running[-1].port
        r["stock_before_kill"] = servers.settled(lambda: stock(front))
        r["rss_after_sale_kib"] = {s.role: s.rss_kib() for s in running}
        r["disk_before_kill"] = {role: servers.disk_bytes(workdir / role) for role in spec["roles"]}
        for server in reversed(running):
            server.kill()
        say(f"   sold {r['stock_before_kill']['sold']:,}; killed -9; restarting")
        restarted = make_servers(setup, workdir, probe=False)
        r["restart_first_answer_s"] = servers.start(restarted)
        front = restarted[-1].port
        r["stock_after_restart"] = stock(front)
        r["restart_first_purchase_s"] = round(servers.first_purchase(front, restarted[-1].spawned), 4)
        r["rss_after_restart_kib"] = {s.role: s.rss_kib() for s in restarted}
        say(f"   first answer {r['restart_first_answer_s']} s, purchase {r['restart_first_purchase_s']} s")
        r["readback"] = read_back(front, workdir / "probe.log", READBACK)
        say(f"   read back {r['readback']['matching']} of {r['readback']['sampled']} matching")
        if not opts.no_check:
            r["check"] = check_stores(workdir, spec["roles"])
        r["stop_s"] = {s.role: round(s.stop()[0], 3) for s in reversed(restarted)}
        r["disk_after_stop"] = {role: servers.disk_bytes(workdir / role) for role in spec["roles"]}
    finally:
        for server in (*running, *restarted):
            if server.alive():
                server.kill()
    r["gc"] = {role: gcprobe.read(workdir / f"gc-{role}.jsonl") for role in spec["roles"]}
    r["probe_log"] = openloop.read_log(str(workdir / "probe.log"))
    result = summarise(sale)
    if not opts.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


# -- the figures --------------------------------------------------------------------------------


def per_second(sale: Sale) -> list[dict[str, Any]]:
    """One row per second of the sale: the second [t, t + 1) and what it ended with."""
    r = sale.result
    probe = {
        int(w["t"]): w for w in openloop.windows((at, ms, status) for at, ms, status, _, _ in r["probe_log"])
    }
    hz_rows = []
    for before, after in itertools.pairwise(sale.samples):
        wall = after.at - before.at
        gc_lines = [r["gc"][role].get(before.t) for role in r["gc"]]
        window = probe.get(before.t, {})
        hz_rows.append(
            {
                "t": before.t,
                "sold": after.sold,
                "purchases_per_s": round((after.sold - before.sold) / wall, 1),
                "rss_kib": after.rss_kib,
                "disk_bytes": after.disk,
                "probe_count": window.get("count", 0),
                "probe_non_200": window.get("non_200", 0),
                "probe_p99_ms": window.get("p99_ms"),
                "probe_max_ms": window.get("max_ms"),
                "gc_max_ms": max((max(line["max_ms"]) for line in gc_lines if line), default=0.0),
                "gc_max_cpu_ms": max((max(line["max_cpu_ms"]) for line in gc_lines if line), default=0.0),
                "gc_count": [sum(line["count"][g] for line in gc_lines if line) for g in range(3)],
                "server_cores": {
                    role: round((after.server_cpu[role] - before.server_cpu[role]) / wall, 2)
                    for role in after.server_cpu
                },
                "others_cores": round(
                    max(0.0, (after.busy - before.busy) - (after.own_cpu - before.own_cpu)) / wall, 2
                ),
            }
        )
    return hz_rows


def tenths(sale: Sale) -> list[dict[str, Any]]:
    """The probe's P99 and max in each tenth of the sale (by tickets sold) after its first
    second (connections opening). Tenths, not seconds: a second has 1,000 probe requests, so
    its P99 is its 10th-slowest request, too noisy to hold to 1.5x."""
    started = sale.result["load_started"]
    points = [(started, 0), *((x.at, x.sold) for x in sale.samples)]  # (time, sold); a fresh store

    def interpolate(value: float, by: int) -> float:  # along the points, from column ``by``
        for a, b in itertools.pairwise(points):
            if b[by] >= value:
                share = (value - a[by]) / max(1e-9, b[by] - a[by])
                return a[1 - by] + (b[1 - by] - a[1 - by]) * share
        return points[-1][1 - by]

    first, last = interpolate(started + 1.0, 0), points[-1][1]
    edges = [interpolate(first + (last - first) * k / 10, 1) for k in range(11)]
    edges[0], edges[-1] = started + 1.0, math.inf
    rows = []
    for k in range(10):
        lat = sorted(ms for at, ms, _, _, _ in sale.result["probe_log"] if edges[k] <= at < edges[k + 1])
        rows.append(
            {
                "tenth": k + 1,
                "sold_from": round(first + (last - first) * k / 10),
                "count": len(lat),
                "p99_ms": openloop.percentile(lat, 99),
                "max_ms": lat[-1] if lat else None,
            }
        )
    return rows


def summarise(sale: Sale) -> dict[str, Any]:
    r = sale.result
    rows = per_second(sale)
    parts = tenths(sale)
    start = r.pop("load_started")
    stop = r.pop("load_stopped")
    probe_log = r.pop("probe_log")
    during = [line for role in r["gc"].values() for t, line in role.items() if int(start) <= t <= stop]
    before = [line for role in r["gc"].values() for t, line in role.items() if t < int(start)]
    r.pop("gc")  # by second in ``seconds``
    base = parts[0]["p99_ms"]
    rates = sorted(row["purchases_per_s"] for row in rows[1:-1]) or [0.0]
    sold = r["stock_before_kill"]["sold"]
    answered = r["wrk"]["requests"] - r["wrk"]["non_2xx"] + r["probe"]["ok"]
    disk = sum(d["allocated"] for d in r["disk_after_stop"].values())
    summary = {
        "sold": sold,
        "load_seconds": round(stop - start, 1),
        "purchases_per_s_median": rates[len(rates) // 2],
        "answered_200": answered,
        "rss_after_sale_mb": round(sum(r["rss_after_sale_kib"].values()) * 1024 / MB, 1),
        "rss_max_mb": round(max(sum(row["rss_kib"].values()) for row in rows) * 1024 / MB, 1)
        if rows
        else None,
        "gc_max_pause_ms": max((max(line["max_ms"]) for line in during), default=0.0),
        "gc_max_pause_cpu_ms": max((max(line["max_cpu_ms"]) for line in during), default=0.0),
        "gc_collections": [sum(line["count"][g] for line in during) for g in range(3)],
        "gc_max_pause_startup_ms": max((max(line["max_ms"]) for line in before), default=0.0),
        "probe_p99_start_ms": base,
        "probe_p99_worst_tenth_ms": max((p["p99_ms"] or 0.0) for p in parts),
        "probe_p99_worst_ratio": round(max((p["p99_ms"] or 0.0) for p in parts) / base, 2) if base else None,
        "probe_seconds_over_ratio": sum(
            1
            for row in rows
            if base and row["probe_p99_ms"] is not None and row["probe_p99_ms"] > P99_RATIO * base
        ),
        "probe_max_ms": max((row["probe_max_ms"] or 0.0) for row in rows) if rows else None,
        "restart_s": max(r["restart_first_answer_s"].values()),
        "disk_bytes_per_order": round(disk / max(1, sold), 1),
        "disk_max_bytes": max((x.disk for x in sale.samples), default=0),
        "nothing_lost": r["stock_after_restart"] == r["stock_before_kill"] and sold >= answered,
        "probe_requests_logged": len(probe_log),
    }
    return {**r, "summary": summary, "tenths": parts, "seconds": rows}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []

    def row(figure: str, target: str, measured: str, met: bool | None) -> None:
        rows.append({"figure": figure, "target": target, "measured": measured, "met": met})

    for name, r in results["setups"].items():
        s = r["summary"]
        who = "monolith" if name == "monolith" else "vacancy + ticket"
        mib = sum(r["rss_after_sale_kib"].values()) / 1024
        idle = sum(r["idle_rss_kib"].values()) / 1024
        row(
            f"{who}: RSS after {s['sold']:,} sold",
            f"≤ {SETUPS[name]['rss_mb']} MB",
            f"{s['rss_after_sale_mb']} MB ({mib:.1f} MiB; idle {idle:.1f} MiB)",
            s["rss_after_sale_mb"] <= SETUPS[name]["rss_mb"],
        )
        row(
            f"{name}: longest GC pause during the sale",
            f"≤ {GC_PAUSE_MS:g} ms",
            f"{s['gc_max_pause_ms']:.3f} ms wall (longest on CPU: {s['gc_max_pause_cpu_ms']:.3f} ms; "
            f"{sum(s['gc_collections']):,} collections, gen2: {s['gc_collections'][2]})",
            s["gc_max_pause_ms"] <= GC_PAUSE_MS,
        )
        if s["probe_p99_start_ms"]:
            row(
                f"{name}: probe P99 (1k/s) in every tenth of the sale",
                f"≤ {P99_RATIO}x the first tenth's",
                f"first {s['probe_p99_start_ms']:.2f} ms, worst {s['probe_p99_worst_tenth_ms']:.2f} ms "
                f"({s['probe_p99_worst_ratio']}x); {s['probe_seconds_over_ratio']} of {len(r['seconds'])} "
                f"seconds over {P99_RATIO}x; max {s['probe_max_ms']:.1f} ms",
                s["probe_p99_worst_ratio"] <= P99_RATIO,
            )
        first = ", ".join(f"{k} {v:.3f} s" for k, v in r["restart_first_answer_s"].items())
        row(
            f"{name}: kill -9, restart to first answer",
            f"≤ {RESTART_S} s",
            f"{first}; first purchase 200 after {r['restart_first_purchase_s']:.3f} s",
            s["restart_s"] <= RESTART_S,
        )
        disk = ", ".join(
            f"{role} {d['allocated'] / max(1, s['sold']):.0f}" for role, d in r["disk_after_stop"].items()
        )
        peak = s["disk_max_bytes"]
        row(
            f"{name}: disk bytes per order",
            "stated",
            f"{s['disk_bytes_per_order']:.0f} after a clean stop ({disk}); while selling up to "
            f"{peak / MB:,.1f} MB = {peak / max(1, s['sold']):,.0f} per order",
            None,
        )
        rb = r["readback"]
        row(
            f"{name}: orders read back after kill -9",
            "all readable and as answered",
            f"{rb['matching']} of {rb['sampled']} match ({rb['readable']} readable), tickets "
            f"{rb.get('first_ticket', 0):,} to {rb.get('last_ticket', 0):,}",
            rb["sampled"] > 0 and rb["matching"] == rb["sampled"],
        )
        after = r["stock_after_restart"]["sold"]
        row(
            f"{name}: stock after kill -9 and restart",
            "= before the kill, ≥ answered",
            f"sold {after:,} (before {s['sold']:,}; answered 200: {s['answered_200']:,})",
            s["nothing_lost"],
        )
        if "check" in r:
            codes = ", ".join(f"{role} exit {c['exit']} ({c['seconds']} s)" for role, c in r["check"].items())
            row(
                f"{name}: ticketsys check after the restart",
                "exit 0",
                codes,
                all(c["exit"] == 0 for c in r["check"].values()),
            )
    return rows


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, Python {m['python']}, commit {m['commit']}; store "
        f"{results['config']['store']}, FSYNC={results['config']['fsync']}; servers on CPU "
        f"{loadrun.SERVER_CPU}, wrk and the probe on CPU {loadrun.LOAD_CPU}; {results['started']}.",
        "",
        "| setup | sold | seconds | purchases/s (median) | RSS idle → after MiB "
        "| probe P99 first → worst tenth ms | longest GC pause ms | restart s | disk bytes/order "
        "| others' CPU (median cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results["setups"].items():
        s = r["summary"]
        others = sorted(row["others_cores"] for row in r["seconds"]) or [0.0]
        idle, after = (sum(r[k].values()) / 1024 for k in ("idle_rss_kib", "rss_after_sale_kib"))
        cells = [
            name,
            f"{s['sold']:,}",
            f"{s['load_seconds']:.0f}",
            f"{s['purchases_per_s_median']:,.0f}",
            f"{idle:.1f} → {after:.1f}",
            f"{_f(s['probe_p99_start_ms'])} → {_f(s['probe_p99_worst_tenth_ms'])}",
            f"{s['gc_max_pause_ms']:.3f}",
            f"{s['restart_s']:.3f}",
            f"{s['disk_bytes_per_order']:.0f}",
            f"{others[len(others) // 2]}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| figure | target | measured | met? |", "|---|---|---|---|"]
    for row in results["targets"]:
        met = {True: "yes", False: "**no**", None: "—"}[row["met"]]
        lines.append(f"| {row['figure']} | {row['target']} | {row['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["setups"])
    fig, axes = plt.subplots(5, len(names), figsize=(6.5 * len(names), 13), sharex="col", squeeze=False)
    for col, name in enumerate(names):
        rows = results["setups"][name]["seconds"]
        x = [row["sold"] / 1e6 for row in rows]
        rss, rate, lat, gcs, disk = axes[:, col]
        for role in rows[0]["rss_kib"] if rows else []:
            rss.plot(x, [row["rss_kib"][role] * 1024 / MB for row in rows], label=role)
        if rows and len(rows[0]["rss_kib"]) > 1:
            rss.plot(
                x, [sum(row["rss_kib"].values()) * 1024 / MB for row in rows], label="sum", color="black"
            )
        rss.axhline(SETUPS[name]["rss_mb"], color="red", linestyle=":", label="target")
        rss.set_ylabel("RSS MB")
        rss.set_ylim(bottom=0)
        rss.legend(fontsize=8)
        rss.set_title(f"{name} ({results['config']['store']}, FSYNC={results['config']['fsync']})")
        rate.plot(x, [row["purchases_per_s"] for row in rows])
        rate.set_ylabel("purchases/s")
        rate.set_ylim(bottom=0)
        lat.plot(x, [row["probe_p99_ms"] for row in rows], label="P99 (per second)")
        lat.plot(x, [row["probe_max_ms"] for row in rows], label="max", alpha=0.6)
        lat.set_yscale("log")
        lat.set_ylabel("probe ms (1k/s, open loop)")
        lat.legend(fontsize=8)
        gcs.plot(
            x, [row["gc_max_ms"] for row in rows], marker=".", linestyle="none", label="wall (what waits)"
        )
        gcs.plot(
            x, [row["gc_max_cpu_ms"] for row in rows], marker="x", linestyle="none", label="its CPU time"
        )
        gcs.axhline(GC_PAUSE_MS, color="red", linestyle=":", label="target")
        gcs.set_ylabel("longest GC pause ms")
        gcs.set_ylim(bottom=0)
        gcs.legend(fontsize=8)
        disk.plot(x, [row["disk_bytes"] / MB for row in rows])
        disk.set_ylabel("data directories MB")
        disk.set_ylim(bottom=0)
        disk.set_xlabel("tickets sold (millions)")
        for ax in axes[:, col]:
            ax.grid(True, alpha=0.3)
    fig.suptitle(f"ticketsys long sale, commit {results['machine']['commit']}, every second")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setups", nargs="+", choices=list(SETUPS), default=list(SETUPS))
    p.add_argument(
        "--sold", type=int, help="tickets to sell in each setup (default: 10 M monolith, 2 M microservices)"
    )
    p.add_argument("--probe-rate", type=int, default=PROBE_RATE, help="the open-loop probe's purchases/s")
    p.add_argument("--out", type=Path, default=BENCH / "figures")
    p.add_argument("--tmp", help="where the data directories go (default: the system's; not a tmpfs)")
    p.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    p.add_argument("--no-check", action="store_true", help="skip `ticketsys check` after the restart")
    p.add_argument("--quiet-wait", type=float, default=10.0, help="seconds to wait for a quiet machine first")
    p.add_argument("--replot", action="store_true", help="rewrite longsale.md and .png from --out's JSON")
    ns = p.parse_args(argv)
    if ns.replot:
        saved: dict[str, Any] = json.loads((ns.out / "longsale.json").read_text())
        saved["targets"] = targets(saved)
        return report(saved, ns.out)
    if lacking := loadrun.missing_tool():
        say(f"longsale: {lacking}")
        return 2
    os.sched_setaffinity(0, {int(loadrun.LOAD_CPU)})  # this script's sampling stays off the servers' CPU
    defaults = Settings()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": loadrun.machine(),
        "config": {
            "store": defaults.stock_store,
            "fsync": defaults.fsync,
            "initial_stock": STOCK,
            "probe_rate": ns.probe_rate,
            "wrk": "1 thread, 64 keep-alive connections, POST /api/v1/purchase qty 1",
            "server_cpu": loadrun.SERVER_CPU,
            "load_cpu": loadrun.LOAD_CPU,
            "command": " ".join(["benchmarks/longsale.py", *(argv if argv is not None else sys.argv[1:])]),
        },
        "setups": {},
    }
    for name in ns.setups:
        results["setups"][name] = run_sale(name, ns.sold or SETUPS[name]["sold"], ns)
    results["targets"] = targets(results)
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "longsale.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return report(results, ns.out)


def report(results: dict[str, Any], out: Path) -> int:
    table = markdown(results)
    (out / "longsale.md").write_text(table)
    chart(results, out / "longsale.png")
    print(table)
    say(f"wrote {out / 'longsale.md'}, longsale.json, longsale.png")
    if out.resolve() == (BENCH / "figures").resolve():
        for document in docs.DOCUMENTS:
            docs.publish(document)  # the docs' tables of the long sale, from the file just written
    return 0


if __name__ == "__main__":
    sys.exit(main())
