"""A frozen Vacancy (SIGSTOP): alive to the kernel, which still completes TCP handshakes and
buffers requests, but answering nothing. This is the failure a timeout exists for, and the one
that makes a naive client pile up connections.

Ticket must answer every buyer 503 ``vacancy_unavailable`` within its timeouts, hold no more
connections to Vacancy than ``VACANCY_POOL_SIZE`` however many buyers are waiting, and sell
again once Vacancy thaws. Reserves that Vacancy finds in its socket buffers on waking were
answered 503 to their buyers; the stock they take is bounded by what was refused, and
repeating those purchases with their keys turns each into exactly one order.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.buyers import CLIENTS, Ledger, available, connected, new_key, settle
from tests.support.figures import RecordProperty, report
from tests.support.services import running, start

pytestmark = pytest.mark.slow

INITIAL = 1000
POOL_SIZE = 8
VACANCY_TIMEOUT = 0.5
ANSWER_BOUND = 2.0  # connect (.25) + read (.5) timeouts and scheduling slack on a shared machine
PURCHASES_EACH = 4  # purchases per buyer while Vacancy is frozen
THAW_DEADLINE = 10.0
RETRY_DEADLINE = 20.0

# /proc/net/tcp state codes (include/net/tcp_states.h)
TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


def sockets_to(pid: int, port: int) -> Counter[str]:
    """TCP sockets that process ``pid`` holds (has a descriptor for) to remote ``port``, by
    state. /proc/<pid>/net/tcp lists the whole network namespace, so it is joined with the
    socket inodes in /proc/<pid>/fd to keep only the process's own."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except FileNotFoundError:  # closed since listdir
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    states: Counter[str] = Counter()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as lines:
            next(lines)  # header
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[9] in inodes:
                    states[TCP_STATES.get(fields[3], fields[3])] += 1
    return states


async def frozen_load(
    ticket_url: str, ticket_pid: int, vacancy_port: int, ledger: Ledger, rng: random.Random
) -> tuple[int, float]:
    """``CLIENTS`` buyers, ``PURCHASES_EACH`` purchases each, against the frozen Vacancy,
    while Ticket's sockets to Vacancy are sampled. The most seen at once, the slowest answer."""
    peak = 0
    slowest = 0.0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(sockets_to(ticket_pid, vacancy_port).values()))
            await asyncio.sleep(0.005)  # sampling period, not a wait for the server

    async def buyer() -> None:
        nonlocal slowest
        async with connected() as http:
            for _ in range(PURCHASES_EACH):
                answer = await ledger.buy(ticket_url, rng.randint(1, 5), new_key(), http=http)
                slowest = max(slowest, answer.elapsed)

    sampler = asyncio.create_task(sample())
    try:
        await asyncio.gather(*(buyer() for _ in range(CLIENTS)))
    finally:
        done.set()
        await sampler
    return peak, slowest


async def buy_until_sold(url: str, ledger: Ledger, rng: random.Random, deadline: float) -> float:
    """Poll with fresh purchases until one is answered 200; how long that took."""
    async with connected() as http:
        began = time.monotonic()
        while True:
            answer = await ledger.buy(url, rng.randint(1, 5), new_key(), http=http)
            if answer.status == 200:
                return time.monotonic() - began
            assert answer.status == 503, answer
            assert time.monotonic() - began < deadline, f"no sale within {deadline}s of SIGCONT"
            await asyncio.sleep(0.05)  # polling for Vacancy to come back


HTTPX_POOL_POISONED = pytest.mark.xfail(
    strict=False,
    reason="httpcore's pool can stay full after a burst of read timeouts (encode/httpcore#550): "
    "seen in 2 of ~15 runs: every purchase answered PoolTimeout for 10 s after SIGCONT. "
    "VACANCY_CLIENT=httpx is the comparison client; the default pool has no such state",
)


@pytest.mark.parametrize("client", ["pool", pytest.param("httpx", marks=HTTPX_POOL_POISONED)])
def test_frozen_vacancy_gets_prompt_503s_bounded_connections_and_exact_stock(
    tmp_path: Path, record_property: RecordProperty, client: str
) -> None:
    vacancy = start("vacancy", tmp_path / "v", env={"INITIAL_STOCK": str(INITIAL)})
    ticket = start(
        "ticket",
        tmp_path / "t",
        env={
            "VACANCY_URL": vacancy.url,
            "VACANCY_POOL_SIZE": str(POOL_SIZE),
            "VACANCY_TIMEOUT": str(VACANCY_TIMEOUT),
            "VACANCY_CONNECT_TIMEOUT": "0.25",
            "VACANCY_CLIENT": client,
        },
    )
    ledger, rng = Ledger(), random.Random(7)
    with running(ticket, vacancy):
        # Warm the pool: connections to a live Vacancy are in use when it freezes.
        for _ in range(10):
            assert asyncio.run(ledger.buy(ticket.url, rng.randint(1, 5), new_key())).elapsed < ANSWER_BOUND
        assert all(a.status == 200 for a in ledger.answers), ledger.answers

        vacancy.pause()
        try:
            probe = asyncio.run(ledger.buy(ticket.url, rng.randint(1, 5), new_key()))
            took = probe.elapsed
            assert probe.status == 503, probe
            assert probe.error == "vacancy_unavailable", probe
            assert took < ANSWER_BOUND, f"503 after {took:.2f}s"

            peak, slowest = asyncio.run(frozen_load(ticket.url, ticket.pid, vacancy.port, ledger, rng))
            frozen_statuses = ledger.statuses()
            assert ticket.process.poll() is None, ticket.log()
        finally:
            vacancy.resume()

        thawed_after = asyncio.run(buy_until_sold(ticket.url, ledger, rng, THAW_DEADLINE))
        refused = ledger.unresolved()
        acknowledged = ledger.sold()
        in_flight = ledger.in_flight()
        # Vacancy may still be working through reserves it found buffered on waking: the
        # bounds below hold whenever the stock is read, since each such reserve was refused.
        sold_before_retry = INITIAL - asyncio.run(available(vacancy.url))

        settled = asyncio.run(settle(ledger, [ticket.url], timeout=RETRY_DEADLINE))
        assert 409 not in ledger.statuses(settled), settled  # each repeated purchase ended 200
        sold = INITIAL - asyncio.run(available(vacancy.url))
        assert ticket.stop() == 0
        assert vacancy.stop() == 0

    figures = {
        "client": client,
        "pool_size": POOL_SIZE,
        "peak_sockets_to_vacancy": peak,
        "slowest_503_ms": round(slowest * 1000),
        "thawed_after_ms": round(thawed_after * 1000),
        "refused": len(refused),
        "sold_before_retry": sold_before_retry,
        "acknowledged_before_retry": acknowledged,
        "sold": sold,
        "acknowledged": ledger.sold(),
        "doubled": ledger.doubled(),
    }
    report(record_property, "frozen vacancy", **figures)

    assert frozen_statuses[200] == 10, frozen_statuses  # only the warm-up sold while frozen
    assert set(frozen_statuses) == {200, 503}, frozen_statuses
    assert slowest < ANSWER_BOUND, f"a buyer waited {slowest:.2f}s for its 503"
    assert peak <= POOL_SIZE, f"ticket held {peak} sockets to vacancy, pool size {POOL_SIZE}"
    # Stock taken beyond acknowledged sales only by reserves whose buyers were refused...
    assert acknowledged <= sold_before_retry <= acknowledged + in_flight
    # ...and once those are repeated with their keys, exactly the acknowledged sales.
    assert ledger.doubled() == 0
    assert sold == ledger.sold()
