"""Ticket's pool to Vacancy at several pipeline depths, and the pool of before issue 13, side
by side in one run: the measurement behind ``ClientOptions.max_pipeline``'s default.

Each case is the load runner's ``microservices`` setup (vacancy + ticket on CPU 0, load on
CPU 1, loadrun.py's helpers) with Ticket's pool changed only in its depth, or replaced by
benchmarks/pool_before.py. Per case and round: purchases at 1k/s and 5k/s open loop
(openloop.py, before any closed-loop load, so that the stores are small), then wrk's
purchases/s. Rounds go through the cases in turn, so that the machine's noise is spread
over all of them; the table shows medians over rounds. Beside each rate: the CPU time both
server processes used per purchase (``server_cores`` / rate, in µs), which other tenants'
load on the machine disturbs much less than the latencies and wrk's maximum.

    .venv/bin/python benchmarks/pool_depth.py                          # ~6 min
    .venv/bin/python benchmarks/pool_depth.py --cases before 1 8 --rounds 5
    .venv/bin/python benchmarks/pool_depth.py --redis                  # STOCK_STORE=redis://
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import loadrun

CASES = ["before", "1", "2", "4", "8", "16", "32"]


def serve_ticket(case: str, argv: list[str]) -> int:
    """Ticket as ``ticketsys ticket`` runs it, its pool changed as ``case`` says."""
    import ticketsys.apps.configs as configs
    import ticketsys.http.client as client
    from ticketsys.cli import main

    if case == "before":
        from benchmarks.pool_before import BeforePool

        client.CLIENTS["pool"] = BeforePool  # type: ignore[assignment]
    else:
        options = configs.client_options
        configs.client_options = lambda settings, url: dataclasses.replace(
            options(settings, url), max_pipeline=int(case)
        )
    return main(["ticket", *argv])


def setup(case: str, redis: bool) -> str:
    name = f"pool-{case}{'-redis' if redis else ''}"
    loadrun.SETUPS[name] = {
        "about": f"microservices, Ticket's pool: {case if case == 'before' else 'depth ' + case}",
        "procs": [
            [loadrun.PY, "-m", "ticketsys", "vacancy", "--port", "{port2}"],
            [loadrun.PY, __file__, "--ticket", case, "--port", "{port}"],
        ],
        "env": {"VACANCY_URL": "http://127.0.0.1:{port2}"},
        "redis": redis,
    }
    return name


def measure(name: str, opts: loadrun.Options, rates: list[int]) -> dict[int | str, Any]:
    out: dict[int | str, Any] = {}
    with loadrun.started(name, opts) as running:
        pids = running.pids()
        for rate in rates:
            loadrun.quiet_moment(pids, 5.0)
            out[rate] = loadrun.openloop(running, opts, rate)
        loadrun.quiet_moment(pids, 5.0)
        out["wrk"] = loadrun.wrk(running, opts, "/api/v1/purchase", opts.wrk_seconds)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rates", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--redis", action="store_true", help="Vacancy and Ticket on a redis-server")
    p.add_argument("--ticket", help=argparse.SUPPRESS)
    ns, rest = p.parse_known_args(argv)
    if ns.ticket:
        return serve_ticket(ns.ticket, rest)
    out = loadrun.BENCH / "results" / "pool"
    opts = loadrun.Options(
        setups=[], runs=1, wrk_seconds=ns.seconds, open_seconds=ns.seconds, warmup=1.0,
        rates=ns.rates, startup_reps=0, out=out, quick=False,
    )  # fmt: skip
    results: dict[str, list[dict[int | str, Any]]] = {case: [] for case in ns.cases}
    for round_ in range(ns.rounds):
        for case in ns.cases:
            r = measure(setup(case, ns.redis), opts, ns.rates)
            results[case].append(r)
            loadrun.say(
                f"round {round_ + 1} {case}: wrk {r['wrk']['rps']:,.0f}/s; "
                + "; ".join(
                    f"{rate}/s P50 {r[rate]['p50_ms']:.3f} P99 {r[rate]['p99_ms']:.3f}" for rate in ns.rates
                )
            )

    def med(case: str, pick: Any) -> float:
        return float(statistics.median(pick(r) for r in results[case]))

    head = "| Ticket's pool | purchases/s (wrk), CPU µs each |" + "".join(
        f" P50 / P95 / P99 ms @ {rate // 1000}k/s, CPU µs each |" for rate in ns.rates
    )
    print(head)
    print("|---|---:|" + "---:|" * len(ns.rates))
    for case in ns.cases:
        label = case if case == "before" else "depth " + case
        rps = med(case, lambda r: r["wrk"]["rps"])
        cpu = med(case, lambda r: r["wrk"]["server_cores"] / r["wrk"]["rps"] * 1e6)
        row = f"| {label} | {rps:,.0f}, {cpu:.0f} |"
        for rate in ns.rates:
            keys = ("p50_ms", "p95_ms", "p99_ms")
            pcts = [med(case, lambda r, k=k, rate=rate: r[rate][k]) for k in keys]
            cpu = med(case, lambda r, rate=rate: r[rate]["server_cores"] / rate * 1e6)
            row += " " + " / ".join(f"{v:.2f}" for v in pcts) + f", {cpu:.0f} |"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
