"""RedisStock and RedisOrderBook against a real redis-server."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from ticketsys.ticket.redis_orders import RedisOrderBook
from ticketsys.vacancy.redis_stock import RedisStock

from tests.redis_server import RedisServer, free_port, running_redis
from ticketsys.domain.errors import IdempotencyConflict, OverRelease, StoreUnavailable
from ticketsys.domain.models import Order, Reservation
from ticketsys.storage.redis import RedisError, connect, never_sent


def _stock(url: str, initial: int = 100, ttl: float = 3600) -> RedisStock:
    return RedisStock(connect(url, timeout=0.5, connect_timeout=0.25), initial, ttl)


def test_reserve_release_restock(redis_url: str) -> None:
    async def main() -> None:
        stock = _stock(redis_url)
        await stock.open()
        assert await stock.reserve(30) == Reservation(True, 70)
        assert await stock.reserve(71) == Reservation(False, 70)
        assert await stock.release(10) == Reservation(True, 80)
        with pytest.raises(OverRelease):
            await stock.release(21)
        assert await stock.restock(5) == Reservation(True, 85)
        assert await stock.current() == 85
        await stock.close()

    asyncio.run(main())


def test_initial_stock_seeds_only_once(redis_url: str) -> None:
    async def main() -> None:
        first = _stock(redis_url, 100)
        await first.open()
        await first.reserve(1)
        await first.close()
        second = _stock(redis_url, 5000)
        await second.open()
        assert await second.current() == 99
        await second.close()

    asyncio.run(main())


def test_keys_are_idempotent_across_clients(redis_url: str) -> None:
    async def main() -> None:
        one, two = _stock(redis_url), _stock(redis_url)
        await one.open()
        await two.open()
        first = await one.reserve(10, key="k")
        assert await two.reserve(10, key="k") == first == Reservation(True, 90)
        with pytest.raises(IdempotencyConflict):
            await two.reserve(11, key="k")
        assert await one.current() == 90
        await one.close()
        await two.close()

    asyncio.run(main())


def test_cancel_undoes_a_keyed_reserve_once_and_forgets_its_key(redis_url: str) -> None:
    async def main() -> None:
        one, two = _stock(redis_url), _stock(redis_url)
        await one.open()
        await two.open()
        await one.reserve(30, key="purchase:a")
        assert await two.cancel(30, "purchase:a") == Reservation(True, 100)
        assert await one.cancel(30, "purchase:a") == Reservation(True, 100)  # a repeat: nothing
        assert await one.reserve(30, key="purchase:a") == Reservation(True, 70)  # anew
        with pytest.raises(IdempotencyConflict):
            await two.cancel(29, "purchase:a")
        await one.close()
        await two.close()

    asyncio.run(main())


def test_concurrent_clients_never_oversell(redis_url: str) -> None:
    async def main() -> None:
        stocks = [_stock(redis_url, 500) for _ in range(4)]
        for stock in stocks:
            await stock.open()
        rng = random.Random(3)
        wants = [(rng.choice(stocks), rng.randint(1, 10)) for _ in range(300)]
        results = await asyncio.gather(*(s.reserve(q) for s, q in wants))
        sold = sum(q for (_, q), r in zip(wants, results, strict=True) if r.success)
        assert sold == 500 - await stocks[0].current()
        assert all(r.remaining >= 0 for r in results)
        for stock in stocks:
            await stock.close()

    asyncio.run(main())


def test_a_dead_redis_is_store_unavailable_promptly(tmp_path: Path) -> None:
    async def main(server: RedisServer) -> None:
        stock = _stock(server.url)
        await stock.open()
        server.kill()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await stock.reserve(1)
        assert time.monotonic() - started < 1.0
        await stock.close()

    with running_redis(tmp_path) as server:
        asyncio.run(main(server))


def test_order_book_records_and_recalls(redis_url: str) -> None:
    async def main() -> None:
        book = RedisOrderBook(connect(redis_url, timeout=0.5, connect_timeout=0.25), 3600)
        other = RedisOrderBook(connect(redis_url, timeout=0.5, connect_timeout=0.25), 3600)
        await book.open()
        order = Order("o1", 2, time.time(), 98)
        assert await book.add(order, "k", "qty=2") == order
        assert await other.get("o1") == order
        assert await other.recall("k", "qty=2") == order
        with pytest.raises(IdempotencyConflict):
            await other.recall("k", "qty=3")
        # A second replica recording the same key gets the first order back.
        assert await other.add(Order("o2", 2, time.time(), 98), "k", "qty=2") == order
        assert await book.get("o2") is None
        assert await book.get("nope") is None
        await book.close()
        await other.close()

    asyncio.run(main())


def test_an_abandoned_order_can_never_be_recorded_later(redis_url: str) -> None:
    """Ticket gave up on a write that timed out: abandon() decides, and a late write of that
    order records nothing, so undoing its reservation cannot sell the tickets twice."""

    async def main() -> None:
        book = RedisOrderBook(connect(redis_url, timeout=0.5, connect_timeout=0.25), 3600)
        await book.open()
        late = Order("late", 2, time.time(), 98)
        assert await book.abandon(late, "k") is True
        with pytest.raises(StoreUnavailable):
            await book.add(late, "k", "qty=2")  # the write that timed out, running at last
        assert await book.get("late") is None and await book.recall("k", "qty=2") is None
        retried = Order("retried", 2, time.time(), 98)  # the buyer's retry: a new order id
        assert await book.add(retried, "k", "qty=2") == retried
        # An order that stands on the reservation, its own or a replica's for the key: keep it.
        assert await book.abandon(retried, "k") is False
        assert await book.abandon(Order("twin", 2, time.time(), 98), "k") is False
        await book.close()

    asyncio.run(main())


def test_errors_say_whether_the_command_surely_never_ran(redis_url: str) -> None:
    """What Ticket's compensation relies on: only a command that never left is known not to
    have run (then the reservation can be undone at once)."""

    async def main() -> None:
        refused = connect(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2, connect_timeout=0.2)
        with pytest.raises(RedisError) as nothing_listens:
            await refused.get("x")
        assert never_sent(nothing_listens.value)
        await refused.aclose()

        one = connect(redis_url, timeout=0.2, connect_timeout=0.2, max_connections=1)
        await one.ping()
        admin = connect(redis_url, timeout=1, connect_timeout=0.2)
        # The server stops answering. (redis-py leaves execute_command untyped.)
        await admin.execute_command("CLIENT", "PAUSE", 600, "ALL")  # type: ignore[no-untyped-call]
        sent, queued = await asyncio.gather(one.get("x"), one.get("y"), return_exceptions=True)
        assert isinstance(sent, RedisError) and not never_sent(sent)  # timed out: it may run
        assert isinstance(queued, RedisError) and never_sent(queued)  # no connection to send on
        await admin.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
        await one.aclose()
        await admin.aclose()

    asyncio.run(main())
