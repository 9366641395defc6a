"""TicketService in one store (the monolith's checkout): rules and idempotency."""

from __future__ import annotations

import asyncio

import pytest

from ticketsys.apps.local_vacancy import LocalVacancyClient
from ticketsys.domain.errors import IdempotencyConflict, InvalidQuantity, SoldOut
from ticketsys.storage.memory import MemorySale
from ticketsys.ticket.checkout import StoreCheckout
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.service import VacancyService


def ticket(stock: int) -> tuple[TicketService, MemorySale]:
    sale = MemorySale(stock)
    return TicketService(LocalVacancyClient(VacancyService(sale, 100)), StoreCheckout(sale), 100), sale


async def test_purchase_sells_records_and_reports_remaining() -> None:
    service, _ = ticket(1000)
    order = await service.purchase(5)
    assert (order.qty, order.remaining) == (5, 995)
    assert await service.order(order.order_id) == order
    assert (await service.stock()).sold == 5


async def test_sold_out_takes_nothing() -> None:
    service, _ = ticket(3)
    with pytest.raises(SoldOut) as caught:
        await service.purchase(4)
    assert (caught.value.requested, caught.value.remaining) == (4, 3)
    assert await service.available() == 3


async def test_invalid_quantity_never_reaches_the_store() -> None:
    service, _ = ticket(3)
    for bad in (0, 101, True, 2.0):
        with pytest.raises(InvalidQuantity):
            await service.purchase(bad)  # type: ignore[arg-type]
    assert await service.available() == 3


async def test_a_retried_key_gets_the_first_order_and_takes_nothing_more() -> None:
    service, _ = ticket(100)
    first = await service.purchase(5, key="abc")
    await service.purchase(1)
    assert await service.purchase(5, key="abc") == first  # the first answer, remaining included
    assert await service.available() == 94
    with pytest.raises(IdempotencyConflict):
        await service.purchase(6, key="abc")


async def test_concurrent_requests_with_one_key_buy_once() -> None:
    service, _ = ticket(100)
    orders = await asyncio.gather(*(service.purchase(2, key="same") for _ in range(10)))
    assert len({order.order_id for order in orders}) == 1
    assert await service.available() == 98


async def test_a_confirm_keyed_for_one_hold_conflicts_on_another() -> None:
    service, _ = ticket(100)
    first, second = await service.create_hold(1, 60), await service.create_hold(1, 60)
    await service.confirm(first.hold_id, key="c")
    with pytest.raises(IdempotencyConflict):
        await service.confirm(second.hold_id, key="c")
