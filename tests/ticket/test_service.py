"""TicketService against the in-process client (the unit level: no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from ticketsys.domain.errors import InvalidQuantity, SoldOut
from ticketsys.ticket.clients import LocalVacancyClient
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.service import VacancyService
from ticketsys.vacancy.stock import StockManager


def _ticket(stock: int) -> tuple[TicketService, StockManager]:
    manager = StockManager(stock)
    return TicketService(LocalVacancyClient(VacancyService(manager, 100)), 100), manager


def test_purchase_reserves_and_reports_remaining() -> None:
    ticket, stock = _ticket(1000)
    bought = asyncio.run(ticket.purchase(5))
    assert (bought.qty, bought.remaining, bought.message) == (5, 995, "Purchase successful!")
    assert stock.available == 995


def test_sold_out_takes_nothing() -> None:
    ticket, stock = _ticket(3)
    with pytest.raises(SoldOut) as caught:
        asyncio.run(ticket.purchase(4))
    assert (caught.value.requested, caught.value.remaining) == (4, 3)
    assert stock.available == 3


def test_invalid_quantity_never_reaches_vacancy() -> None:
    ticket, stock = _ticket(3)
    with pytest.raises(InvalidQuantity):
        asyncio.run(ticket.purchase(101))
    assert stock.available == 3
