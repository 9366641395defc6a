"""VacancyService's rules: quantities and hold times, whatever the store."""

from __future__ import annotations

import pytest

from ticketsys.domain.errors import InvalidQuantity, InvalidTtl
from ticketsys.domain.models import HoldRules
from ticketsys.storage.memory import MemoryStock
from ticketsys.vacancy.service import VacancyService

from ..storage.engines import Clock


async def test_quantities_are_checked_before_the_store() -> None:
    service = VacancyService(MemoryStock(100), max_qty=10)
    for bad in (0, -1, 11, True):
        with pytest.raises(InvalidQuantity):
            await service.reserve(bad)
        with pytest.raises(InvalidQuantity):
            await service.hold(bad)
    assert await service.available() == 100


async def test_hold_times_default_and_are_bounded() -> None:
    clock = Clock()
    service = VacancyService(
        MemoryStock(100, clock=clock), max_qty=10, holds=HoldRules(default_ttl=60, max_ttl=120)
    )
    assert (await service.hold(1)).expires_at == clock() + 60
    for bad in (0, -5, 121, float("nan"), True, "30"):
        with pytest.raises(InvalidTtl):
            await service.hold(1, bad)  # type: ignore[arg-type]
    assert (await service.stock()).held == 1


async def test_a_release_may_return_a_whole_sale_above_max_qty() -> None:
    service = VacancyService(MemoryStock(100), max_qty=10)
    for _ in range(3):
        await service.reserve(10)
    assert await service.unreserve(30) == 100
