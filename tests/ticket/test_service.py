"""TicketService against the in-process client (the unit level: no sockets)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ticketsys.domain.errors import IdempotencyConflict, InvalidQuantity, SoldOut, StoreUnavailable
from ticketsys.domain.models import Order
from ticketsys.storage.journal import FsyncPolicy, Journal
from ticketsys.ticket.clients import LocalVacancyClient
from ticketsys.ticket.orders import OrderBook
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.service import VacancyService
from ticketsys.vacancy.stock import StockManager


def _ticket(stock: int, orders: OrderBook | None = None) -> tuple[TicketService, StockManager]:
    manager = StockManager(stock)
    client = LocalVacancyClient(VacancyService(manager, 100))
    return TicketService(client, orders if orders is not None else OrderBook(), 100), manager


def test_purchase_reserves_records_and_reports_remaining() -> None:
    ticket, stock = _ticket(1000)
    order = asyncio.run(ticket.purchase(5))
    assert (order.qty, order.remaining) == (5, 995)
    assert stock.available == 995
    assert asyncio.run(ticket.order(order.order_id)) == order


def test_sold_out_takes_nothing() -> None:
    orders = OrderBook()
    ticket, stock = _ticket(3, orders)
    with pytest.raises(SoldOut) as caught:
        asyncio.run(ticket.purchase(4))
    assert (caught.value.requested, caught.value.remaining) == (4, 3)
    assert stock.available == 3
    assert len(orders) == 0


def test_invalid_quantity_never_reaches_vacancy() -> None:
    ticket, stock = _ticket(3)
    with pytest.raises(InvalidQuantity):
        asyncio.run(ticket.purchase(101))
    assert stock.available == 3


def test_a_retried_key_gets_the_first_order_and_takes_nothing_more() -> None:
    orders = OrderBook()
    ticket, stock = _ticket(100, orders)
    first = asyncio.run(ticket.purchase(5, key="abc"))
    asyncio.run(ticket.purchase(1))
    again = asyncio.run(ticket.purchase(5, key="abc"))
    assert again == first  # the first answer, remaining included
    assert stock.available == 94
    assert len(orders) == 2


def test_a_key_with_another_body_is_refused() -> None:
    ticket, stock = _ticket(100)
    asyncio.run(ticket.purchase(5, key="abc"))
    with pytest.raises(IdempotencyConflict):
        asyncio.run(ticket.purchase(6, key="abc"))
    assert stock.available == 95


def test_concurrent_requests_with_one_key_buy_once() -> None:
    ticket, stock = _ticket(100)

    async def main() -> list[Order]:
        return await asyncio.gather(*(ticket.purchase(3, key="same") for _ in range(20)))

    orders = asyncio.run(main())
    assert len({o.order_id for o in orders}) == 1
    assert stock.available == 97


def test_concurrent_requests_with_one_key_and_other_bodies_conflict() -> None:
    ticket, stock = _ticket(100)

    async def main() -> tuple[Order | BaseException, Order | BaseException]:
        return await asyncio.gather(
            ticket.purchase(3, key="same"), ticket.purchase(4, key="same"), return_exceptions=True
        )

    first, second = asyncio.run(main())
    assert isinstance(first, Order) and isinstance(second, IdempotencyConflict)
    assert stock.available == 97


def test_a_failed_sold_out_attempt_can_be_retried_with_its_key() -> None:
    ticket, stock = _ticket(2)
    with pytest.raises(SoldOut):
        asyncio.run(ticket.purchase(3, key="k"))
    asyncio.run(stock.restock(1))
    assert asyncio.run(ticket.purchase(3, key="k")).remaining == 0


def test_an_order_that_cannot_be_recorded_releases_its_tickets(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "orders", FsyncPolicy.NO)
    orders = OrderBook(journal)
    asyncio.run(orders.open())
    ticket, stock = _ticket(100, orders)
    os.close(journal._fd)  # the disk "fails": every append raises
    with pytest.raises(StoreUnavailable):
        asyncio.run(ticket.purchase(5, key="k"))
    assert stock.available == 100  # compensated
    journal._fd = -1
    asyncio.run(orders.close())


class _FailsOnce(OrderBook):
    """An order book whose first write fails, as a full disk or a lost Redis would."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = True

    async def add(self, order: Order, key: str | None, fingerprint: str) -> Order:
        if self.failing:
            self.failing = False
            raise StoreUnavailable("disk full")
        return await super().add(order, key, fingerprint)


def test_a_retry_after_compensation_cannot_get_tickets_already_sold_again() -> None:
    """The compensation put the tickets back on sale; someone else bought them; the first
    buyer's retry must find them gone, not an order for them."""
    ticket, stock = _ticket(2, _FailsOnce())

    async def main() -> None:
        with pytest.raises(StoreUnavailable):
            await ticket.purchase(2, key="first")
        assert stock.available == 2
        await ticket.purchase(2, key="second")
        with pytest.raises(SoldOut):
            await ticket.purchase(2, key="first")
        assert stock.available == 0

    asyncio.run(main())


class _CannotTell(_FailsOnce):
    """The write timed out and the store cannot be asked: it may still record the order."""

    async def abandon(self, order: Order, key: str | None) -> bool:
        raise StoreUnavailable("timed out")


def test_an_order_that_may_still_be_recorded_keeps_its_reservation_for_the_retry() -> None:
    ticket, stock = _ticket(2, _CannotTell())

    async def main() -> None:
        with pytest.raises(StoreUnavailable):
            await ticket.purchase(2, key="first")
        assert stock.available == 0  # not undone: that could sell the tickets twice
        with pytest.raises(SoldOut):
            await ticket.purchase(2, key="second")
        assert (await ticket.purchase(2, key="first")).remaining == 0  # the retry completes it

    asyncio.run(main())


def test_orders_and_keys_survive_a_restart(tmp_path: Path) -> None:
    def book() -> OrderBook:
        orders = OrderBook(Journal(tmp_path, "orders", FsyncPolicy.NO))
        asyncio.run(orders.open())
        return orders

    orders = book()
    ticket, _ = _ticket(100, orders)
    first = asyncio.run(ticket.purchase(5, key="k"))
    asyncio.run(orders.close())
    orders = book()
    assert asyncio.run(orders.get(first.order_id)) == first
    assert asyncio.run(orders.recall("k", "qty=5")) == first
    asyncio.run(orders.close())
