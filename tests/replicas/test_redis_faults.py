"""Redis killed (SIGKILL) or frozen (SIGSTOP) under load, for the monolith and the two
microservices on Redis.

README ("Scaling out"): Redis unreachable or slower than REDIS_TIMEOUT gives 503
store_unavailable in about that time, never a sale that was not recorded; sales resume when
it returns. And (Guarantees): a purchase whose answer was lost, repeated with its
Idempotency-Key, sells at most once. So during the outage every purchase answers 503 quickly
(no 200, no 500, no hang), after it purchases succeed again, and once the buyers' unresolved
keys are repeated the store has taken exactly what the 200 answers sold.

Two defects found here have tests of their own at the end of this file: a reservation
released by Ticket's compensation that a keyed retry then sold again (now cancelled, key and
all), and pooled connections that failed one command each after a Redis restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.replicas.load import Redis, buyers, start_all, stop_all
from tests.support.buyers import Answer, Ledger, available, connected, purchase, read_orders, settle, wait_for
from tests.support.figures import RecordProperty, report
from tests.support.services import Service, running

pytestmark = pytest.mark.slow

BUYERS = 32
STOCK = 100_000  # never sold out here: the load runs across the whole outage
REDIS_TIMEOUT = 0.5  # the default, set explicitly since the bound below is derived from it
# README: a 503 "in about" REDIS_TIMEOUT. A purchase sent during the outage fails at its first
# Redis call (one timeout); one caught at the freeze between reserve and order waits for two
# (order, then the release). 2 s covers that with the margin a shared 2-core machine needs,
# and still catches a hang.
BOUND = 2.0


@contextmanager
def _deployment(kind: str, tmp_path: Path, redis: Redis) -> Iterator[list[Service]]:
    """The services of ``kind`` on ``redis``; yields the ones buyers call."""
    env = {"STOCK_STORE": redis.url, "INITIAL_STOCK": str(STOCK), "REDIS_TIMEOUT": str(REDIS_TIMEOUT)}
    if kind == "monolith":
        services = start_all(["monolith"], tmp_path, env)
        front = services
    else:
        (vacancy,) = start_all(["vacancy"], tmp_path, env)
        try:
            front = start_all(["ticket"], tmp_path, {**env, "VACANCY_URL": vacancy.url})
        except BaseException:
            vacancy.kill()
            raise
        services = [*front, vacancy]
    with running(*services):
        yield front
        stop_all(services)


@pytest.mark.parametrize("fault", ["kill", "sigstop"])
@pytest.mark.parametrize("kind", ["monolith", "microservices"])
def test_redis_outage_mid_load(
    kind: str, fault: str, tmp_path: Path, redis: Redis, record_property: RecordProperty
) -> None:
    with _deployment(kind, tmp_path, redis) as front:
        urls = [service.url for service in front]

        async def main() -> dict[str, Any]:
            ledger, stop = Ledger(), asyncio.Event()
            load = buyers(BUYERS, urls, ledger, stop, seed=3)
            try:
                await wait_for(lambda: ledger.sold() >= 500, 30, "500 tickets sold before the fault")
                fault_at = time.monotonic()
                if fault == "kill":
                    await asyncio.to_thread(redis.kill)  # SIGKILL and reaped: the port refuses
                else:
                    redis.pause()
                down_at = time.monotonic()
                # Two answers per buyer begun after the fault: every buyer has met the outage.
                await wait_for(
                    lambda: sum(1 for a in ledger.since(down_at) if a.status) >= 2 * BUYERS,
                    20,
                    "two answers per buyer during the outage",
                )
                restart_at = time.monotonic()
                if fault == "kill":
                    # Same port, same directory: the append-only file brings the sale back.
                    await asyncio.to_thread(redis.restart)
                else:
                    redis.resume()
                up_at = time.monotonic()
                await wait_for(
                    lambda: any(a.status == 200 for a in ledger.since(up_at)), 10, "a sale after recovery"
                )
                recovered_at = min(a.finished for a in ledger.since(up_at) if a.status == 200)
                resumed_sold = ledger.sold()
                await wait_for(lambda: ledger.sold() >= resumed_sold + 500, 30, "500 more tickets sold")
            finally:
                stop.set()
                await load
            unresolved = len(ledger.unresolved())
            settled = await settle(ledger, urls)
            left = await available(urls[0])
            # Every 200 stands for an order the store holds, as it was answered.
            missing = await read_orders(ledger.sales(), urls)
            assert not missing, missing
            return {
                "ledger": ledger,
                "fault_at": fault_at,
                "down_at": down_at,
                "restart_at": restart_at,
                "up_at": up_at,
                "recovered_at": recovered_at,
                "unresolved": unresolved,
                "settled": settled,
                "left": left,
            }

        run = asyncio.run(main())

    ledger: Ledger = run["ledger"]
    outage: list[Answer] = [a for a in ledger.since(run["down_at"]) if a.finished < run["restart_at"]]
    # Purchases sent while Redis was down: all refused promptly and as JSON 503s naming the cause.
    assert outage, "no purchase was tried during the outage"
    assert {a.status for a in outage} == {503}, ledger.statuses(outage)
    # store_unavailable in both modes: a keyed purchase first looks its key up in Ticket's
    # own order book, which fails before Vacancy is asked.
    assert {a.error for a in outage} == {"store_unavailable"}, {a.error for a in outage}
    slowest = max(a.elapsed for a in outage)
    assert slowest < BOUND, f"a 503 took {slowest:.2f}s (REDIS_TIMEOUT {REDIS_TIMEOUT})"
    # Nothing anywhere in the run was a 500 or a dropped connection: Ticket and the monolith
    # stayed up and answered every purchase; a 503 is the only failure.
    assert set(ledger.statuses()) <= {200, 409, 503}, ledger.statuses()
    assert 409 not in ledger.statuses(), "sold out? the stock is far above what the test sells"
    # Exact accounting once every unknown outcome was repeated with its key: the store took
    # what the 200 answers sold.
    assert not ledger.unresolved()
    taken = STOCK - run["left"]
    assert taken == ledger.sold(), f"store took {taken}, the 200 answers sold {ledger.sold()}"
    report(
        record_property,
        f"redis {fault}, {kind}",
        sold=ledger.sold(),
        taken=taken,
        orders=len(ledger.sales()),
        outage_answers=len(outage),
        outage_errors=sorted({str(a.error) for a in outage}),
        slowest_503_s=round(slowest, 3),
        median_503_s=round(sorted(a.elapsed for a in outage)[len(outage) // 2], 3),
        recovery_s=round(run["recovered_at"] - run["up_at"], 3),
        unresolved_at_stop=run["unresolved"],
        settled=len(run["settled"]),
        statuses=dict(ledger.statuses()),
    )


TICKET_USER = "ticket"
TICKET_PASSWORD = "ticket-secret-0123456789"


def test_an_order_that_cannot_be_recorded_gives_its_hold_back(tmp_path: Path, redis: Redis) -> None:
    """An order write that fails (a stale connection after a restart, a timeout while Redis is
    frozen) on purpose: Ticket reaches Redis as a user of its own (per-service credentials, as
    one would deploy), whose right to run scripts is revoked for one purchase, while Vacancy
    holds as usual.

    2 tickets. Buyer A asks for 2: held at Vacancy, the order cannot be recorded: 503, and
    since no order can stand on the hold, Ticket releases it at once (it would expire anyway).
    Buyer B buys the 2. A's retry finds them sold out: 2 sold of 2, never 4. (Compensation
    used to release the tickets and leave a key answering "reserved": 4 sold of 2.)
    """
    redis.command("ACL", "SETUSER", TICKET_USER, "on", f">{TICKET_PASSWORD}", "~*", "&*", "+@all")
    env = {"STOCK_STORE": redis.url, "INITIAL_STOCK": "2"}
    ticket_store = f"redis://{TICKET_USER}:{TICKET_PASSWORD}@127.0.0.1:{redis.port}/0"
    (vacancy,) = start_all(["vacancy"], tmp_path, env)
    with running(vacancy):
        (ticket,) = start_all(
            ["ticket"], tmp_path, {**env, "STOCK_STORE": ticket_store, "VACANCY_URL": vacancy.url}
        )
        with running(ticket):

            async def main() -> tuple[Answer, Answer, Answer]:
                async with connected() as http:
                    redis.command("ACL", "SETUSER", TICKET_USER, "-evalsha", "-eval")
                    first = await purchase(ticket.url, 2, None, http=http)
                    redis.command("ACL", "SETUSER", TICKET_USER, "+evalsha", "+eval")
                    await wait_for_stock(vacancy.url, available=2)
                    other = await purchase(ticket.url, 2, "buyer-b", http=http)
                    retry = await purchase(ticket.url, 2, None, http=http)
                    return first, other, retry

            first, other, retry = asyncio.run(main())
            left = asyncio.run(available(vacancy.url))
            stop_all([ticket, vacancy])

    assert (first.status, first.error) == (503, "store_unavailable"), f"first attempt: {first}"
    assert other.status == 200, f"buyer B: {other}"
    assert (retry.status, retry.error) == (409, "sold_out"), f"A's retry: {retry}"
    assert left == 0


async def wait_for_stock(url: str, *, available: int, timeout: float = 5.0) -> None:
    """Poll Vacancy until ``available`` tickets are on sale (the release runs in the background)."""
    deadline = time.monotonic() + timeout
    async with connected() as http:
        while (status := await http.get_json(url, "/api/v1/stock"))[1]["available"] != available:
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.01)


def test_the_first_request_after_a_redis_restart_is_answered(tmp_path: Path, redis: Redis) -> None:
    """README: "sales resume when it returns". Redis restarted (same port, same data) between
    two requests, none in flight: the next purchase succeeds. (redis-py 8's maintenance
    notifications once made the pool skip its dead-connection check: each pooled connection
    then failed one command with Redis back.)"""
    (monolith,) = start_all(["monolith"], tmp_path, {"STOCK_STORE": redis.url, "INITIAL_STOCK": "100"})
    with running(monolith):

        async def main() -> list[Answer]:
            async with connected() as http:
                before = await purchase(monolith.url, 1, "before", http=http)
                assert before.status == 200, f"purchase before the restart: {before}"
                await asyncio.to_thread(redis.restart)
                # Sequential purchases, each with a key of its own: none is in flight at the restart.
                return [await purchase(monolith.url, 1, f"after-{n}", http=http) for n in range(3)]

        after = asyncio.run(main())
        stop_all([monolith])

    assert [a.status for a in after] == [200, 200, 200], [(a.status, a.body) for a in after]


@pytest.mark.parametrize("kind", ["monolith", "microservices"])
def test_readiness_follows_redis(tmp_path: Path, redis: Redis, kind: str) -> None:
    """/readyz answers 503 while Redis is gone, so a balancer stops sending buyers to a
    replica that could only answer 503; /healthz stays 200 (the process is fine)."""
    env = {"STOCK_STORE": redis.url, "INITIAL_STOCK": "100"}
    processes = start_all(["monolith" if kind == "monolith" else "vacancy"], tmp_path, env)
    if kind == "microservices":
        processes += start_all(["ticket"], tmp_path, {**env, "VACANCY_URL": processes[0].url})
    with running(*processes):

        async def statuses(path: str) -> list[int]:
            async with connected() as http:
                return [(await http.get_json(p.url, path))[0] for p in processes]

        assert asyncio.run(statuses("/readyz")) == [200] * len(processes)
        redis.kill()
        assert asyncio.run(statuses("/readyz")) == [503] * len(processes)
        assert asyncio.run(statuses("/healthz")) == [200] * len(processes)
        redis.restart()
        assert asyncio.run(statuses("/readyz")) == [200] * len(processes)
        stop_all(processes)
