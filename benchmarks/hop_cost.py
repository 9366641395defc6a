"""What one Ticket -> Vacancy hop costs, both sides, counted rather than timed.

One process runs a Vacancy server (memory store) and RemoteVacancyClient in one uvloop loop,
and makes ``--bursts`` bursts of ``--burst`` holds each (a hold: one round trip, as a
purchase's sale of a hold is; a burst: the holds of one tick, gathered). "Reserve" below and
in the table means one such hop. Each case runs under ``valgrind --tool=callgrind`` twice,
with a short and a long run; the difference of their instruction counts divided by the extra
reserves is the user-space instructions per reserve, free of start-up and of the machine's
noise. A third run under
``strace -f -c`` counts the system calls per reserve (the kernel's work, which callgrind does
not see: a loopback send or receive costs ~2-5 us here, ten times a JSON decode).

    .venv/bin/python benchmarks/hop_cost.py                     # every case: ~10 min
    .venv/bin/python benchmarks/hop_cost.py --cases before pool-8

Cases: ``before`` is the pool of before issue 13 (benchmarks/pool_before.py), ``pool-D`` the
current pool pipelining at most D requests a connection, each hold one request;
``sale-alone`` a purchase's hop before the batches (each sale its own ``POST /api/v1/holds``,
pipelined at depth 8), ``sales`` as it is now: ``sell_hold``, a burst's sales in one
``POST /api/v1/sales``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = ["before", "pool-1", "pool-4", "pool-8", "pool-16", "sale-alone", "sales"]
SHORT, LONG = 20, 120  # bursts in the two callgrind runs
WARMUP = 10  # bursts before counting: connections opened, caches warm
SENDS = ("write", "writev", "sendto", "sendmsg")
RECEIVES = ("read", "readv", "recvfrom", "recvmsg")


async def inner(case: str, bursts: int, burst: int) -> None:
    import uvloop  # noqa: F401  (the loop is uvloop's: see main)

    from benchmarks.pool_before import BeforePool
    from ticketsys.apps.vacancy import build_vacancy
    from ticketsys.config import MEMORY, Settings
    from ticketsys.domain.wire import parse_hold, rfc3339
    from ticketsys.http.client import ClientOptions, HttpClient, HttpPool
    from ticketsys.http.server import Server
    from ticketsys.ticket.clients import RemoteVacancyClient

    settings = Settings(initial_stock=10**12, max_qty=1000, stock_store=MEMORY)
    server = Server(build_vacancy(settings), "127.0.0.1", 0)
    await server.start()
    url = f"http://127.0.0.1:{server.port}"
    depth = int(case.split("-")[1]) if case.startswith("pool") else 8
    options = ClientOptions(url, read_timeout=30.0, connect_timeout=30.0, max_pipeline=depth)
    http: HttpClient = BeforePool(options) if case == "before" else HttpPool(options)
    vacancy = RemoteVacancyClient(lambda: http, url)
    await vacancy.open()
    orders = (f"{n:032x}" for n in itertools.count())
    for _ in range(WARMUP + bursts):
        soon = time.time() + 60
        if case == "sales":
            holds = await asyncio.gather(*(vacancy.sell_hold(1, soon, next(orders)) for _ in range(burst)))
        elif case == "sale-alone":
            sales = [{"qty": 1, "expires_at": rfc3339(soon), "order_id": next(orders)} for _ in range(burst)]
            posts = (vacancy._call("POST", "/api/v1/holds", sale, created=True) for sale in sales)
            holds = [parse_hold(body) for body in await asyncio.gather(*posts)]
        else:
            holds = await asyncio.gather(*(vacancy.hold(1, 60.0) for _ in range(burst)))
        assert len(holds) == burst
    await http.aclose()
    await server.shutdown()


def _command(case: str, bursts: int, burst: int) -> list[str]:
    return [sys.executable, __file__, "--inner", case, "--bursts", str(bursts), "--burst", str(burst)]


def instructions(case: str, bursts: int, burst: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *_command(case, bursts, burst)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    assert found, out.stderr[-2000:]
    return int(found.group(1))


def syscalls(case: str, bursts: int, burst: int) -> dict[str, int]:
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as log:
        subprocess.run(
            ["strace", "-f", "-c", "-o", log.name, *_command(case, bursts, burst)],
            check=True,
            capture_output=True,
        )
        counts: dict[str, int] = {}
        for line in log.read().splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
                counts[fields[-1]] = int(fields[3])
        return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    p.add_argument("--bursts-of", type=int, nargs="+", default=[1, 16], help="reserves per burst")
    p.add_argument("--inner", help=argparse.SUPPRESS)
    p.add_argument("--bursts", type=int, default=SHORT, help=argparse.SUPPRESS)
    p.add_argument("--burst", type=int, default=16, help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    if ns.inner:
        import uvloop

        uvloop.run(inner(ns.inner, ns.bursts, ns.burst))
        return 0
    print("| case | reserves per burst | instructions per reserve | syscalls per reserve (sends, receives) |")
    print("|---|---:|---:|---:|")
    for burst in ns.bursts_of:
        for case in ns.cases:
            short, long = instructions(case, SHORT, burst), instructions(case, LONG, burst)
            reserves = (LONG - SHORT) * burst
            few, many = syscalls(case, SHORT, burst), syscalls(case, LONG, burst)
            per = {name: (many.get(name, 0) - few.get(name, 0)) / reserves for name in many}
            sends = sum(per.get(n, 0) for n in SENDS)
            receives = sum(per.get(n, 0) for n in RECEIVES)
            print(
                f"| {case} | {burst} | {(long - short) / reserves:,.0f} | "
                f"{sum(per.values()):.2f} ({sends:.2f}, {receives:.2f}) |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
