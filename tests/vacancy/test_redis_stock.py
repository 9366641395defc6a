"""RedisStock and RedisOrderBook against a real redis-server."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from tests.redis_server import RedisServer, running_redis
from ticketsys.domain.errors import IdempotencyConflict, OverRelease, StoreUnavailable
from ticketsys.domain.models import Order, Reservation
from ticketsys.storage.redis import connect
from ticketsys.ticket.redis_orders import RedisOrderBook
from ticketsys.vacancy.redis_stock import RedisStock


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
