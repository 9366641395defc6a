"""Redis killed (SIGKILL) or frozen (SIGSTOP) under load, for the monolith and the two
microservices on Redis.

README ("Scaling out"): Redis unreachable or slower than REDIS_TIMEOUT gives 503
store_unavailable in about that time, never a sale that was not recorded; sales resume when
it returns. And (Guarantees): a purchase whose answer was lost, repeated with its
Idempotency-Key, sells at most once. So during the outage every purchase answers 503 quickly
(no 200, no 500, no hang), after it purchases succeed again, and once the buyers' unresolved
keys are repeated the store has taken exactly what the 200 answers sold.

Two defects found here have strict-xfail tests of their own at the end of this file: a
released reservation sold again by a keyed retry (the outage tests account for those phantom
sales exactly and xfail when they occur), and pooled connections that fail once each after a
Redis restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.replicas.load import (
    Answer,
    Ledger,
    Redis,
    available,
    buyers,
    connected,
    purchase,
    read_orders,
    settle,
    start_all,
    stop_all,
    wait_for,
)
from tests.support.services import Service, running
from ticketsys.vacancy.redis_stock import KEY_PREFIX as STOCK_KEY_PREFIX

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


def _report(record_property: Callable[[str, Any], None], **figures: Any) -> None:
    for name, value in figures.items():
        record_property(name, value)
    print(" ".join(f"{name}={value}" for name, value in figures.items()))


@pytest.mark.parametrize("fault", ["kill", "sigstop"])
@pytest.mark.parametrize("kind", ["monolith", "microservices"])
def test_redis_outage_mid_load(
    kind: str, fault: str, tmp_path: Path, redis: Redis, record_property: Callable[[str, Any], None]
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
            async with connected() as http:
                left = await available(http, urls[0])
            # Every 200 stands for an order the store holds, as it was answered.
            await read_orders(ledger.sales(), urls, elsewhere=False, stale_tries=64)
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
                "released": _released(redis),
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
    # what the 200 answers sold, except the phantom sales of a known defect (below).
    assert not ledger.unresolved()
    sold_keys = {sale.key: sale.qty for sale in ledger.sales().values()}
    released: set[str] = run["released"]
    assert released <= set(sold_keys), "a released reservation whose purchase was never sold"
    phantom = sum(sold_keys[key] for key in released)
    taken = STOCK - run["left"]
    assert taken == ledger.sold() - phantom, f"store took {taken}, the 200 answers sold {ledger.sold()}"
    _report(
        record_property,
        sold=ledger.sold(),
        taken=taken,
        phantom=phantom,
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
    if phantom:
        # Not strict: whether a purchase is caught between its reservation and its order at
        # the fault is chance. The defect is shown deterministically by
        # test_a_released_reservation_is_not_sold_by_a_retry below (strict xfail).
        pytest.xfail(
            f"known defect: {len(released)} purchases had their reservation released after the "
            f"order write failed, then their Idempotency-Key retry answered 200 without taking "
            f"stock: {phantom} tickets sold that the stock ({taken} taken) does not count"
        )


def _released(redis: Redis) -> set[str]:
    """Purchase keys whose reservation Ticket released (compensation) after it could not
    record the order: the release carries the idempotency key ``release:purchase:KEY``
    (TicketService) and Redis keeps it under the stock's key prefix."""
    prefix = STOCK_KEY_PREFIX + b"release:purchase:"
    return {bytes(name)[len(prefix) :].decode() for name in redis.command("KEYS", prefix + b"*")}


TICKET_USER = "ticket"
TICKET_PASSWORD = "ticket-secret-0123456789"


def _require(condition: bool, message: str) -> None:
    """A precondition of a strict-xfail test: ``pytest.fail`` (not an AssertionError), so a
    broken set-up fails the test instead of passing for the expected failure."""
    if not condition:
        pytest.fail(message)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="bug: after Ticket releases a reservation whose order it could not record "
    "(compensation), the reservation's idempotency key still says 'reserved', so the buyer's "
    "retry with the same Idempotency-Key records an order without taking stock: oversell",
)
def test_a_released_reservation_is_not_sold_by_a_retry(tmp_path: Path, redis: Redis) -> None:
    """The outage tests meet this by chance: an order write fails (a stale connection after a
    restart, a timeout while Redis is frozen) while the release that follows succeeds. Here the
    order write fails on purpose: Ticket reaches Redis as a user of its own (per-service
    credentials, as one would deploy), whose right to run scripts is revoked for one purchase,
    so its order book can look keys up (GET) but not record an order (EVALSHA), while Vacancy
    reserves and releases as usual.

    2 tickets. Buyer A asks for 2 with key K: reserved, the order fails, released: 503 and the
    stock is 2 again. Buyer B buys the 2. A repeats K, as the README tells buyers to after a
    503: the first attempt sold nothing and nothing is left, so the answer must be 409
    sold_out. It is a 200, and 4 tickets are sold of 2.
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

            async def main() -> tuple[Answer, Answer, Answer, int]:
                async with connected() as http:
                    redis.command("ACL", "SETUSER", TICKET_USER, "-evalsha", "-eval")
                    first = await purchase(http, ticket.url, 2, "buyer-a")
                    after_first = await available(http, vacancy.url)
                    redis.command("ACL", "SETUSER", TICKET_USER, "+evalsha", "+eval")
                    other = await purchase(http, ticket.url, 2, "buyer-b")
                    retry = await purchase(http, ticket.url, 2, "buyer-a")
                    return first, other, retry, after_first

            first, other, retry, after_first = asyncio.run(main())
            left = asyncio.run(_available(vacancy.url))
            stop_all([ticket, vacancy])

    _require((first.status, first.error) == (503, "store_unavailable"), f"first attempt: {first}")
    _require(after_first == 2, f"the failed purchase was not compensated: {after_first} left")
    _require(other.status == 200 and other.body["remaining"] == 0, f"buyer B: {other}")
    sold = 2 + (2 if retry.status == 200 else 0)
    assert (retry.status, retry.error) == (409, "sold_out"), (
        f"the retry answered {retry.status} {retry.body}: {sold} tickets sold of 2, {left} left"
    )


async def _available(url: str) -> int:
    async with connected() as http:
        return await available(http, url)


def test_the_first_request_after_a_redis_restart_is_answered(tmp_path: Path, redis: Redis) -> None:
    """README: "sales resume when it returns". Redis restarted (same port, same data) between
    two requests, none in flight: the next purchase succeeds. (redis-py 8's maintenance
    notifications once made the pool skip its dead-connection check: each pooled connection
    then failed one command with Redis back.)"""
    (monolith,) = start_all(["monolith"], tmp_path, {"STOCK_STORE": redis.url, "INITIAL_STOCK": "100"})
    with running(monolith):

        async def main() -> list[Answer]:
            async with connected() as http:
                before = await purchase(http, monolith.url, 1, "before")
                _require(before.status == 200, f"purchase before the restart: {before}")
                await asyncio.to_thread(redis.restart)
                # Sequential purchases, each with a key of its own: none is in flight at the restart.
                return [await purchase(http, monolith.url, 1, f"after-{n}") for n in range(3)]

        after = asyncio.run(main())
        stop_all([monolith])

    assert [a.status for a in after] == [200, 200, 200], [(a.status, a.body) for a in after]
