"""HoldCheckout through every interleaving of ticket/checkout.py's argument.

The unit level: Vacancy is the real VacancyService on a real store, reached through a client
that can lose a call's answer (the call happened) or crash the caller at a chosen step (the
call did not happen, and nothing after it runs), with a hand-driven clock. After each story:
``available + held + sold == capacity``, nothing stays held once holds have expired, and the
tickets sold are exactly those of confirmed orders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ticketsys.apps.local_vacancy import LocalVacancyClient
from ticketsys.domain.errors import HoldUnavailable, StoreUnavailable, VacancyUnavailable
from ticketsys.domain.interfaces import OrderStore
from ticketsys.domain.models import Hold, OrderState, Stock
from ticketsys.storage.memory import MemoryOrders, MemoryStock
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.orders import SqliteOrders
from ticketsys.ticket.checkout import HoldCheckout
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.service import VacancyService

from ..storage.engines import Clock

TTL = 30.0


class Crash(BaseException):
    """The Ticket process dies here: nothing after this step runs."""


class FlakyVacancy(LocalVacancyClient):
    """``lose[call]``: the call happens, its answer is lost. ``crash[call]``: the caller dies
    before the call is made."""

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

    async def hold(self, qty: int, ttl: float, key: str | None = None) -> Hold:
        make = super().hold
        hold: Hold = await self._through("hold", lambda: make(qty, ttl, key))
        return hold

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        hold: Hold = await self._through(
            "confirm", lambda: super(FlakyVacancy, self).confirm(hold_id, order_id)
        )
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
        self.checkout = HoldCheckout(self.vacancy, self.orders, TTL)
        self.vacancy.lose.clear()
        self.vacancy.crash.clear()
        self.orders.crash_on = self.orders.fail_on = None
        return self.checkout

    async def buy(self, qty: int = 2, key: str | None = None) -> Any:
        return await TicketService(self.vacancy, self.checkout, 100).purchase(qty, key)

    async def settled(self) -> Stock:
        """Let every hold expire, settle what is pending, and check the books balance."""
        self.clock.advance(TTL + 1)
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


async def sold_by_orders(sale: Sale, order_ids: list[str]) -> int:
    total = 0
    for order_id in order_ids:
        record = await sale.orders.inner.get(order_id)
        if record is not None and record.state is OrderState.CONFIRMED:
            total += record.order.qty
    return total


async def test_a_purchase_is_a_hold_a_pending_order_and_a_confirm(orders: OrderStore) -> None:
    sale = await opened(orders)
    order = await sale.buy(3)
    record = await orders.get(order.order_id)
    assert record is not None and record.state is OrderState.CONFIRMED and record.hold_id
    stock = await sale.stock_store.stock()
    assert (stock.available, stock.held, stock.sold) == (97, 0, 3)
    assert (await sale.settled()).sold == 3


async def test_a_hold_whose_answer_was_lost_expires(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.vacancy.lose.add("hold")
    with pytest.raises(VacancyUnavailable):
        await sale.buy(4)
    assert (await sale.stock_store.stock()).held == 4
    assert (await sale.settled()).available == 100


async def test_an_order_that_cannot_be_recorded_puts_its_hold_back(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.orders.fail_on = "add"
    with pytest.raises(StoreUnavailable):
        await sale.buy(4)
    await asyncio.sleep(0)  # the release runs in the background
    await asyncio.sleep(0)
    assert (await sale.stock_store.stock()).available == 100


@pytest.mark.parametrize("step", ["after the hold", "after recording the order"])
async def test_a_crash_before_the_confirm_sells_nothing(orders: OrderStore, step: str) -> None:
    sale = await opened(orders)
    if step == "after the hold":
        sale.orders.crash_on = "add"
    else:
        sale.vacancy.crash.add("confirm")
    with pytest.raises(Crash):
        await sale.buy(5)
    stock = await sale.settled()
    assert (stock.available, stock.sold) == (100, 0)


async def test_a_lost_confirm_answer_is_settled_as_sold(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.vacancy.lose.add("confirm")
    with pytest.raises(VacancyUnavailable):
        await sale.buy(5)
    pending = await orders.pending(10)
    assert len(pending) == 1
    stock = await sale.settled()
    assert stock.sold == 5 == await sold_by_orders(sale, [pending[0].order.order_id])


async def test_a_crash_after_the_confirm_is_settled_as_sold(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.orders.crash_on = "settle"
    with pytest.raises(Crash):
        await sale.buy(6)
    (pending,) = await orders.pending(10)
    stock = await sale.settled()
    assert stock.sold == 6 == await sold_by_orders(sale, [pending.order.order_id])


async def test_a_confirm_after_the_expiry_sells_nothing(orders: OrderStore) -> None:
    sale = await opened(orders)
    real_add = sale.orders.inner.add

    async def slow_add(*args: Any) -> Any:
        sale.clock.advance(TTL)  # Ticket stalls past the hold's expiry
        return await real_add(*args)

    sale.orders.inner.add = slow_add  # type: ignore[method-assign,assignment]
    with pytest.raises(VacancyUnavailable):
        await sale.buy(2)
    sale.orders.inner.add = real_add  # type: ignore[method-assign]
    stock = await sale.settled()
    assert (stock.available, stock.sold) == (100, 0)


async def test_a_keyed_retry_after_a_lost_confirm_answer_gets_the_order(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.vacancy.lose.add("confirm")
    with pytest.raises(VacancyUnavailable):
        await sale.buy(2, key="k")
    sale.vacancy.lose.clear()
    order = await sale.buy(2, key="k")
    assert await sale.buy(2, key="k") == order
    stock = await sale.settled()
    assert stock.sold == 2 == await sold_by_orders(sale, [order.order_id])


async def test_a_keyed_retry_after_a_crash_buys_anew(orders: OrderStore) -> None:
    sale = await opened(orders)
    sale.vacancy.crash.add("confirm")
    with pytest.raises(Crash):
        await sale.buy(2, key="k")
    sale.clock.advance(TTL + 1)  # the first attempt's hold expired: its order is void
    sale.restart()
    order = await sale.buy(2, key="k")
    stock = await sale.settled()
    assert stock.sold == 2 == await sold_by_orders(sale, [order.order_id])


async def test_two_tickets_on_their_own_stores_never_share_a_hold(tmp_path: Path) -> None:
    stores = [SqliteOrders(Database(tmp_path / f"{n}.db", "orders")) for n in ("t1", "t2")]
    sale = await opened(stores[0])
    await stores[1].open()
    other = HoldCheckout(sale.vacancy, stores[1], TTL)
    first = await sale.buy(4, key="dup")
    second = await TicketService(sale.vacancy, other, 100).purchase(4, "dup")
    assert first.order_id != second.order_id
    stock = await sale.stock_store.stock()
    assert (stock.sold, stock.available) == (8, 92)  # two sales of 4, never one hold for two orders


async def test_replicas_on_one_store_buy_a_key_once(orders: OrderStore) -> None:
    sale = await opened(orders)
    other = HoldCheckout(sale.vacancy, orders, TTL)
    first, second = await asyncio.gather(
        sale.buy(3, key="same"), TicketService(sale.vacancy, other, 100).purchase(3, "same")
    )
    assert first == second
    stock = await sale.settled()
    assert stock.sold == 3


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
    assert stock.sold == 2 == await sold_by_orders(sale, [order.order_id])
