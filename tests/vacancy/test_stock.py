from __future__ import annotations

import asyncio
import random

import pytest

from ticketsys.domain.errors import OverRelease
from ticketsys.domain.models import Reservation
from ticketsys.vacancy.stock import StockManager


def test_reserve_takes_stock() -> None:
    stock = StockManager(10)
    assert asyncio.run(stock.reserve(3)) == Reservation(True, 7)
    assert stock.available == 7


def test_reserve_is_all_or_nothing() -> None:
    stock = StockManager(5)
    assert asyncio.run(stock.reserve(6)) == Reservation(False, 5)
    assert stock.available == 5


def test_reserve_exactly_what_is_left() -> None:
    stock = StockManager(5)
    assert asyncio.run(stock.reserve(5)) == Reservation(True, 0)
    assert asyncio.run(stock.reserve(1)) == Reservation(False, 0)


def test_release_puts_back() -> None:
    stock = StockManager(10)
    asyncio.run(stock.reserve(4))
    assert asyncio.run(stock.release(3)) == Reservation(True, 9)


def test_release_cannot_exceed_capacity() -> None:
    stock = StockManager(10)
    asyncio.run(stock.reserve(2))
    with pytest.raises(OverRelease):
        asyncio.run(stock.release(3))
    assert stock.available == 8


def test_concurrent_reserves_never_oversell() -> None:
    stock = StockManager(1000)
    rng = random.Random(7)
    wants = [rng.randint(1, 10) for _ in range(400)]

    async def run() -> list[Reservation]:
        return await asyncio.gather(*(stock.reserve(q) for q in wants))

    results = asyncio.run(run())
    sold = sum(q for q, r in zip(wants, results, strict=True) if r.success)
    assert sold == 1000 - stock.available
    assert stock.available >= 0
    assert all(r.remaining >= 0 for r in results)


def test_repr_shows_state() -> None:
    stock = StockManager(10_000)
    asyncio.run(stock.reserve(5))
    assert repr(stock) == "<StockManager available=9995 of 10000 store=memory>"
