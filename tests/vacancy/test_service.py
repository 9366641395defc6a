from __future__ import annotations

import asyncio

import pytest

from ticketsys.domain.errors import InvalidQuantity
from ticketsys.vacancy.service import VacancyService
from ticketsys.vacancy.stock import StockManager


def test_reserve_checks_the_quantity() -> None:
    service = VacancyService(StockManager(100), max_qty=10)
    for bad in (0, -1, 11, True):
        with pytest.raises(InvalidQuantity):
            asyncio.run(service.reserve(bad))
    assert asyncio.run(service.available()) == 100


def test_release_may_return_a_whole_order_above_max_qty() -> None:
    service = VacancyService(StockManager(100), max_qty=10)
    for _ in range(3):
        asyncio.run(service.reserve(10))
    assert asyncio.run(service.release(30)).remaining == 100
