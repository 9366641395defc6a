"""HoldCheckout through every interleaving of ticket/checkout.py's argument.

The unit level: Vacancy is the real VacancyService on a real store, reached through a client
that can lose a call's answer (the call happened) or crash the caller at a chosen step (the
call did not happen, and nothing after it runs), with a hand-driven clock. After each story,
once every deadline has passed and Ticket has settled what was pending: ``available + held +
sold == capacity``, nothing stays held, and the tickets sold are exactly those of confirmed
orders.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ticketsys.apps.local_vacancy import LocalVacancyClient
from ticketsys.domain.errors import HoldUnavailable, SoldOut, StoreUnavailable, VacancyUnavailable
from ticketsys.domain.interfaces import OrderStore
from ticketsys.domain.models import Hold, HoldState, OrderState, Stock
from ticketsys.storage.memory import MemoryOrders, MemoryStock
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.orders import SqliteOrders
from ticketsys.ticket import checkout as checkout_module
from ticketsys.ticket.checkout import SETTLE_MARGIN, HoldCheckout
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.service import VacancyService

from ..storage.engines import Clock

TTL = 30.0


class Crash(BaseException):
    """The Ticket process dies here: nothing after this step runs."""


class FlakyVacancy(LocalVacancyClient):
    """``lose[call]``: the call happens, its answer is lost. ``crash[call]``: the caller dies
    before the call is made (or the request is lost on its way: the same for Vacancy)."""

    def __init__(self, service: VacancyService) -> None:
        super().__init__(service)
        self.lose: set[str] = set()
        self.crash: set[str] = set()

    async def _through(self, name: str, call: Callable[[], Awaitable[Any]]) -> Any:
        if name in self.crash:
            raise Crash(name)
        result = await call()
        if name in self.lose:
            raise VacancyUnavailable(f"the answer to {name} was lost")
        return result

    async def sell_hold(self, qty: int, expires_at: float, order_id: str) -> Hold:
        sell = super().sell_hold
        hold: Hold = await self._through("sell", lambda: sell(qty, expires_at, order_id))
        return hold

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        confirm = super().confirm
        hold: Hold = await self._through("confirm", lambda: confirm(hold_id, order_id))
        return hold


class CrashingOrders:
    """An order store that dies (or fails) at a chosen step; otherwise the real one."""

    def __init__(self, inner: OrderStore) -> None:
        self.inner = inner
        self.crash_on: str | None = None
        self.fail_on: str | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in ("add", "settle"):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.crash_on == name:
                raise Crash(name)
            if self.fail_on == name:
                raise StoreUnavailable("disk full")
            return await attribute(*args, **kwargs)

        return call


class Sale:
    """One Vacancy and one Ticket (its checkout) sharing a clock."""

    def __init__(self, orders: OrderStore, capacity: int = 100) -> None:
        self.clock = Clock()
        self.stock_store = MemoryStock(capacity, clock=self.clock)
        self.vacancy = FlakyVacancy(VacancyService(self.stock_store, 100))
        self.orders = CrashingOrders(orders)
        self.checkout = self.restart()

    def restart(self) -> HoldCheckout:
        """A new Ticket process on the same order store."""
        self.checkout = HoldCheckout(self.vacancy, self.orders, TTL, clock=self.clock)
        self.vacancy.lose.clear()
        self.vacancy.crash.clear()
        self.orders.crash_on = self.orders.fail_on = None
        return self.checkout

    async def buy(self, qty: int = 2, key: str | None = None) -> Any:
        return await TicketService(self.vacancy, self.checkout, 100).purchase(qty, key)

    async def settled(self) -> Stock:
        """Let every deadline and hold pass, settle what is pending, check the books balance."""
        self.clock.advance(TTL + SETTLE_MARGIN + 1)
        self.restart()
        while await self.checkout.settle_pending():
            pass
        stock = await self.stock_store.stock()
        assert stock.available + stock.held + stock.sold == stock.capacity
        assert stock.held == 0
        assert await self.checkout.orders.pending(10) == []
        return stock


@pytest.fixture(params=["memory", "sqlite"])
def orders(request: pytest.FixtureRequest, tmp_path: Path) -> OrderStore:
    if request.param == "memory":
        return MemoryOrders()
    return SqliteOrders(Database(tmp_path / "orders.db", "orders"))


async def opened(orders: OrderStore) -> Sale:
    await orders.open()
    return Sale(orders)


async def sold_by_orders(sale: Sale) -> int:
    """Tickets on the confirmed orders of the store (all of them: pending ones settled)."""
    store = sale.orders.inner
    if isinstance(store, MemoryOrders):
        records = list(store._orders.values())
    else:
        assert isinstance(store, SqliteOrders)
        rows = store._db.read("SELECT total(qty) FROM orders WHERE state = 1").fetchone()
        return int(rows[0])
    return sum(r.order.qty for r in records if r.state is OrderState.CONFIRMED)


async def test_a_purchase_is_one_sale_at_vacancy_named_after_its_recorded_order(orders: OrderStore) -> None:
    sale = await opened(orders)
    order = await sale.buy(3)
    record = await orders.get(order.order_id)
    assert record is not None and record.state is OrderState.CONFIRMED and record.hold_id
    assert order.remaining == 97 == record.order.remaining
    hold = await sale.stock_store.get_hold(record.hold_id)
    assert (hold.state, hold.order_id) == (HoldState.CONFIRMED, order.order_id)
    stock = await sale.stock_store.stock()
    assert (stock.available, stock.held, stock.sold) == (97, 0, 3)
    assert (await sale.settled()).sold == 3 == await sold_by_orders(sale)


async def test_an_order_that_cannot_be_recorded_sells_nothing(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.orders.fail_on = "add"
    with pytest.raises(StoreUnavailable):
        await sale.buy(4)
    assert (await sale.stock_store.stock()).available == 100


async def test_a_crash_before_the_sale_sells_nothing(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.vacancy.crash.add("sell")  # the order is on record, the sale never reaches Vacancy
    with pytest.raises(Crash):
        await sale.buy(5)
    assert len(await orders.pending(10)) == 1
    stock = await sale.settled()
    assert (stock.available, stock.sold) == (100, 0) and await sold_by_orders(sale) == 0


async def test_a_pending_order_is_not_settled_before_its_deadline(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.vacancy.crash.add("sell")
    with pytest.raises(Crash):
        await sale.buy(5)
    sale.restart()
    sale.clock.advance(TTL)  # past expires_at, within the margin: the sale might still arrive
    assert await sale.checkout.settle_pending() == 1 and len(await orders.pending(10)) == 1


async def test_a_lost_answer_is_settled_as_sold(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.vacancy.lose.add("sell")
    with pytest.raises(VacancyUnavailable):
        await sale.buy(5)
    assert len(await orders.pending(10)) == 1
    stock = await sale.settled()
    assert stock.sold == 5 == await sold_by_orders(sale)


async def test_a_crash_after_the_sale_is_settled_as_sold(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.orders.crash_on = "settle"
    with pytest.raises(Crash):
        await sale.buy(6)
    stock = await sale.settled()
    assert stock.sold == 6 == await sold_by_orders(sale)


async def test_a_sale_arriving_after_its_deadline_sells_nothing(orders: OrderStore) -> None:
    sale = await opened(orders)
    real_add = sale.orders.inner.add

    async def slow_add(*args: Any, **kwargs: Any) -> Any:
        recorded = await real_add(*args, **kwargs)
        sale.clock.advance(TTL)  # Ticket (or the network) stalls past the deadline
        return recorded

    sale.orders.inner.add = slow_add  # type: ignore[method-assign]
    with pytest.raises(VacancyUnavailable):
        await sale.buy(2)
    sale.orders.inner.add = real_add  # type: ignore[method-assign]
    stock = await sale.settled()
    assert (stock.available, stock.sold) == (100, 0) and await sold_by_orders(sale) == 0


async def test_sold_out_is_void_at_once(orders: OrderStore) -> None:
    sale = await opened(orders)
    await sale.buy(90)
    with pytest.raises(SoldOut):
        await sale.buy(11)
    assert await orders.pending(10) == []
    assert (await sale.settled()).sold == 90 == await sold_by_orders(sale)


async def test_a_keyed_retry_after_a_lost_answer_gets_the_order(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.vacancy.lose.add("sell")
    with pytest.raises(VacancyUnavailable):
        await sale.buy(2, key="k")
    sale.vacancy.lose.clear()
    order = await sale.buy(2, key="k")
    assert await sale.buy(2, key="k") == order
    stock = await sale.settled()
    assert stock.sold == 2 == await sold_by_orders(sale)


async def test_a_keyed_retry_after_a_crash_completes_the_recorded_order(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.vacancy.crash.add("sell")
    with pytest.raises(Crash):
        await sale.buy(2, key="k")
    (pending,) = await orders.pending(10)
    sale.restart()
    order = await sale.buy(2, key="k")  # before its deadline: the same order is sold
    assert order.order_id == pending.order.order_id
    stock = await sale.settled()
    assert stock.sold == 2 == await sold_by_orders(sale)


async def test_a_keyed_retry_after_the_deadline_buys_anew(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.vacancy.crash.add("sell")
    with pytest.raises(Crash):
        await sale.buy(2, key="k")
    (pending,) = await orders.pending(10)
    sale.clock.advance(TTL + SETTLE_MARGIN)
    sale.restart()
    order = await sale.buy(2, key="k")
    assert order.order_id != pending.order.order_id
    stock = await sale.settled()
    assert stock.sold == 2 == await sold_by_orders(sale)


async def test_two_tickets_on_their_own_stores_never_share_a_sale(tmp_path: Path) -> None:
    stores = [SqliteOrders(Database(tmp_path / f"{n}.db", "orders")) for n in ("t1", "t2")]
    sale = await opened(stores[0])
    await stores[1].open()
    other = HoldCheckout(sale.vacancy, stores[1], TTL, clock=sale.clock)
    first = await sale.buy(4, key="dup")
    second = await TicketService(sale.vacancy, other, 100).purchase(4, "dup")
    assert first.order_id != second.order_id
    stock = await sale.stock_store.stock()
    assert (stock.sold, stock.available) == (8, 92)  # two sales of 4, each on its own order


async def test_replicas_on_one_store_buy_a_key_once(orders: OrderStore) -> None:
    sale = await opened(orders)
    other = HoldCheckout(sale.vacancy, orders, TTL, clock=sale.clock)
    first, second = await asyncio.gather(
        sale.buy(3, key="same"), TicketService(sale.vacancy, other, 100).purchase(3, "same")
    )
    assert first == second
    stock = await sale.settled()
    assert stock.sold == 3 == await sold_by_orders(sale)


async def test_public_holds_confirm_once_and_refuse_when_ended(orders: OrderStore) -> None:
    sale = await opened(orders)
    service = TicketService(sale.vacancy, sale.checkout, 100)
    hold = await service.create_hold(2, 60)
    order = await service.confirm(hold.hold_id)
    assert await service.confirm(hold.hold_id) == order
    released = await service.create_hold(1, 60)
    await service.release(released.hold_id)
    with pytest.raises(HoldUnavailable) as caught:
        await service.confirm(released.hold_id)
    assert caught.value.state == "released"
    expired = await service.create_hold(1, 5)
    sale.clock.advance(5)
    with pytest.raises(HoldUnavailable) as caught:
        await service.confirm(expired.hold_id)
    assert caught.value.state == "expired"
    stock = await sale.settled()
    assert stock.sold == 2 == await sold_by_orders(sale)


async def test_a_lost_confirm_of_a_buyers_hold_is_settled_from_the_hold(orders: OrderStore) -> None:
    sale = await opened(orders)
    service = TicketService(sale.vacancy, sale.checkout, 100)
    hold = await service.create_hold(3, 600)
    sale.vacancy.lose.add("confirm")
    with pytest.raises(VacancyUnavailable):
        await service.confirm(hold.hold_id)
    stock = await sale.settled()
    assert stock.sold == 3 == await sold_by_orders(sale)


async def test_a_store_outage_while_settling_is_one_warning_line_a_round(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis timeout in the settler is an outage to report, not a bug: no traceback each second."""
    monkeypatch.setattr(checkout_module, "SETTLE_INTERVAL", 0.01)
    sale = await opened(MemoryOrders())

    async def down(limit: int) -> list[Any]:
        raise StoreUnavailable("Redis did not answer within 0.5 s")

    monkeypatch.setattr(sale.orders.inner, "pending", down)
    with caplog.at_level(logging.WARNING, logger="ticketsys.ticket"):
        await sale.checkout.open()
        await asyncio.sleep(0.1)
        await sale.checkout.close()
    rounds = [r for r in caplog.records if r.getMessage().startswith("settling pending orders")]
    assert rounds, "the settler never ran"
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in rounds)
    assert "Redis did not answer within 0.5 s" in rounds[0].getMessage()
