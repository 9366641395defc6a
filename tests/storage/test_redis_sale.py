"""The monolith on Redis as it runs: HoldCheckout over a RedisStock (through an in-process
Vacancy) and RedisOrders, its purchases one script (RedisDirectSale), against a real
redis-server."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from ticketsys.apps.local_vacancy import LocalVacancyClient
from ticketsys.domain.errors import IdempotencyConflict, SoldOut, StoreUnavailable
from ticketsys.domain.models import OrderState, Stock
from ticketsys.storage.redis import Redis, connect
from ticketsys.storage.redis.orders import RedisOrders
from ticketsys.storage.redis.sale import RedisDirectSale
from ticketsys.storage.redis.stock import RedisStock
from ticketsys.ticket.checkout import HoldCheckout
from ticketsys.vacancy.service import VacancyService

from .engines import Clock
from .redis_stores import TIMEOUT, client, run


@dataclass
class Monolith:
    checkout: HoldCheckout
    stock: RedisStock
    orders: RedisOrders
    commands: Counter[str]  # commands sent, by the client that sent them


@asynccontextmanager
async def monolith(url: str, clock: Clock, initial: int = 100) -> AsyncIterator[Monolith]:
    commands: Counter[str] = Counter()

    def counted(name: str) -> Redis:
        return connect(
            url,
            timeout=TIMEOUT,
            connect_timeout=1.0,
            timer=lambda _store, command, _seconds: commands.update([f"{name} {command}"]),
        )

    stock = RedisStock(counted("stock"), initial, clock=clock)
    orders = RedisOrders(counted("orders"), clock=clock)
    direct = RedisDirectSale(counted("sale"), stock, orders, clock=clock)
    vacancy = LocalVacancyClient(VacancyService(stock, max_qty=10))
    checkout = HoldCheckout(vacancy, orders, purchase_ttl=30, clock=clock, direct=direct)
    for part in (stock, orders, direct, checkout):
        await part.open()
    try:
        yield Monolith(checkout, stock, orders, commands)
    finally:
        for part in (checkout, direct, orders, stock):
            await part.close()


def test_a_purchase_is_one_script_that_sells_and_records_the_order_confirmed(redis_url: str) -> None:
    async def main() -> None:
        clock = Clock()
        async with monolith(redis_url, clock) as shop:
            await shop.checkout.purchase(1, None, "qty=1")  # the first also checks the peer
            shop.commands.clear()
            order = await shop.checkout.purchase(3, "k", "qty=3")
            assert shop.commands == Counter({"sale EVALSHA": 1})  # one round trip, nothing else
            assert order.qty == 3 and order.remaining == 96 and order.created_at == clock()
            record = await shop.orders.get(order.order_id)
            assert record is not None and record.state is OrderState.CONFIRMED and record.order == order
            assert await shop.checkout.order(order.order_id) == order
            assert await shop.stock.stock() == Stock(96, 0, 4, 100)
            assert await shop.orders.pending(10) == []
            shop.commands.clear()
            assert await shop.checkout.purchase(3, "k", "qty=3") == order  # the key's answer
            assert shop.commands == Counter({"sale EVALSHA": 1})
            with pytest.raises(IdempotencyConflict):
                await shop.checkout.purchase(2, "k", "qty=2")
            assert await shop.checkout.recall("k", "qty=3") == order
            assert await shop.stock.stock() == Stock(96, 0, 4, 100)

    run(main)


def test_sold_out_takes_nothing_and_binds_no_key(redis_url: str) -> None:
    async def main() -> None:
        async with monolith(redis_url, Clock(), initial=5) as shop:
            with pytest.raises(SoldOut):
                await shop.checkout.purchase(6, "k", "qty=6")
            assert await shop.stock.stock() == Stock(5, 0, 0, 5)
            assert await shop.orders.recall("k", "qty=6") is None
            assert (await shop.checkout.purchase(5, "k2", "qty=5")).remaining == 0

    run(main)


def test_holds_that_are_due_go_back_on_sale_before_a_purchase_decides(redis_url: str) -> None:
    async def main() -> None:
        clock = Clock()
        async with monolith(redis_url, clock, initial=10) as shop:
            await shop.stock.hold(10, ttl=5)
            with pytest.raises(SoldOut):
                await shop.checkout.purchase(1, None, "qty=1")
            clock.advance(5)  # expires_at: from now on it counts as expired
            order = await shop.checkout.purchase(10, None, "qty=10")
            assert order.remaining == 0
            assert await shop.stock.stock() == Stock(0, 0, 10, 10)

    run(main)


def test_a_key_a_ticket_replica_recorded_is_completed_as_ticket_would(redis_url: str) -> None:
    """A Ticket replica sharing the Redis recorded a purchase pending and died before selling
    it: a monolith retrying the key sells that order (once), and a key whose time has passed
    is void, so the retry buys anew."""

    async def main() -> None:
        clock = Clock()
        async with monolith(redis_url, clock) as shop:
            pending = await shop.orders.add(2, "left", "qty=2", expires_at=clock() + 30)
            order = await shop.checkout.purchase(2, "left", "qty=2")
            assert order.order_id == pending.order.order_id
            assert await shop.checkout.purchase(2, "left", "qty=2") == order
            late = await shop.orders.add(1, "late", "qty=1", expires_at=clock() + 30)
            clock.advance(31)
            anew = await shop.checkout.purchase(1, "late", "qty=1")
            assert anew.order_id != late.order.order_id
            void = await shop.orders.get(late.order.order_id)
            assert void is not None and void.state is OrderState.VOID
            assert await shop.stock.stock() == Stock(97, 0, 3, 100)

    run(main)


def test_two_monoliths_racing_one_key_sell_once(redis_url: str) -> None:
    async def main() -> None:
        clock = Clock()
        async with monolith(redis_url, clock, 1000) as one, monolith(redis_url, clock, 1000) as two:
            for n in range(20):
                key = f"buyer-{n}"
                first, second = await asyncio.gather(
                    one.checkout.purchase(2, key, "qty=2"), two.checkout.purchase(2, key, "qty=2")
                )
                assert first == second
            assert await one.stock.stock() == Stock(960, 0, 40, 1000)

    run(main)


def test_an_emptied_redis_is_unavailable_never_a_new_sale(redis_url: str) -> None:
    async def main() -> None:
        async with monolith(redis_url, Clock()) as shop:
            await shop.checkout.purchase(1, None, "qty=1")
            raw = client(redis_url)
            await raw.flushall()
            with pytest.raises(StoreUnavailable, match="not initialised"):
                await shop.checkout.purchase(1, None, "qty=1")
            assert await raw.dbsize() == 0
            await raw.aclose()

    run(main)
