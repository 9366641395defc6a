"""RedisOrders against a real redis-server, alone and as two Ticket replicas (two clients on
one server); and HoldCheckout on the Redis engine, as the monolith on Redis runs it."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.redis_server import RedisServer
from ticketsys.apps.local_vacancy import LocalVacancyClient
from ticketsys.domain.errors import IdempotencyConflict, StoreRefused, StoreUnavailable
from ticketsys.domain.models import Order, OrderRecord, OrderState, Stock
from ticketsys.domain.wire import ID_PATTERN
from ticketsys.storage.redis.keys import ORDER_KEY, ORDERS, ORDERS_PENDING, STOCK
from ticketsys.storage.redis.orders import RedisOrders
from ticketsys.storage.redis.stock import RedisStock
from ticketsys.ticket.checkout import HoldCheckout
from ticketsys.vacancy.service import VacancyService

from .engines import Clock
from .redis_stores import client, orders, run, stock

HOLD = "0123456789abcdef" * 2
OTHER_HOLD = "fedcba9876543210" * 2


async def opened(*stores: RedisOrders) -> None:
    for store in stores:
        await store.open()


async def closed(*stores: RedisOrders) -> None:
    for store in stores:
        await store.close()


def test_add_records_a_pending_order_any_replica_reads(redis_url: str) -> None:
    async def main() -> None:
        clock = Clock()
        one, two = orders(redis_url, clock), orders(redis_url, clock)
        await opened(one, two)
        record = await one.add(2, None, "qty=2", hold_id=HOLD)
        assert re.fullmatch(ID_PATTERN, record.order.order_id)
        assert record == OrderRecord(Order(record.order.order_id, 2, clock(), 0), OrderState.PENDING, HOLD)
        assert await two.get(record.order.order_id) == record
        for unknown in ("0" * 32, "x", "", "*"):
            assert await two.get(unknown) is None
        await closed(one, two)

    run(main)


def test_a_key_recalls_its_order_and_refuses_another_request(redis_url: str) -> None:
    async def main() -> None:
        one, two = orders(redis_url), orders(redis_url)
        await opened(one, two)
        assert await one.recall("k", "qty=2") is None
        record = await one.add(2, "k", "qty=2", hold_id=HOLD)
        assert await two.recall("k", "qty=2") == record
        with pytest.raises(IdempotencyConflict):
            await two.recall("k", "qty=3")
        with pytest.raises(IdempotencyConflict):
            await two.add(3, "k", "qty=3", hold_id=OTHER_HOLD)
        # Another replica recording the same key gets the first order back: one order.
        assert await two.add(2, "k", "qty=2", hold_id=HOLD) == record
        assert await one.pending(10) == [record]
        await closed(one, two)

    run(main)


def test_two_replicas_racing_one_key_record_one_order(redis_url: str) -> None:
    async def main() -> None:
        replicas = [orders(redis_url) for _ in range(2)]
        await opened(*replicas)
        for attempt in range(50):
            key = f"race-{attempt}"
            records = await asyncio.gather(*(r.add(1, key, "qty=1", hold_id=HOLD) for r in replicas))
            assert records[0] == records[1]
        assert len(await replicas[0].pending(1000)) == 50
        await closed(*replicas)

    run(main)


def test_settle_confirms_or_voids_a_pending_order_once(redis_url: str) -> None:
    async def main() -> None:
        store = orders(redis_url)
        await store.open()
        sold = await store.add(1, "a", "qty=1", hold_id=HOLD)
        lost = await store.add(2, "b", "qty=2", hold_id=OTHER_HOLD)
        confirmed = await store.settle(sold, OrderState.CONFIRMED)
        assert confirmed == OrderRecord(sold.order, OrderState.CONFIRMED, HOLD)
        void = await store.settle(lost, OrderState.VOID)
        assert void.state is OrderState.VOID
        # Settled once: a late settle of the other outcome changes nothing.
        assert await store.settle(sold, OrderState.VOID) == confirmed
        assert await store.settle(lost, OrderState.CONFIRMED) == void
        assert await store.pending(10) == []
        # A void order is kept, and read as void (Ticket never shows it as sold).
        assert await store.get(lost.order.order_id) == void
        assert await store.recall("b", "qty=2") == void
        with pytest.raises(ValueError):
            await store.settle(sold, OrderState.PENDING)
        with pytest.raises(LookupError):
            await store.settle(
                OrderRecord(Order("1" * 32, 1, 0, 0), OrderState.PENDING, HOLD), OrderState.VOID
            )
        await store.close()

    run(main)


def test_a_key_whose_order_is_void_is_bound_to_the_new_order(redis_url: str) -> None:
    async def main() -> None:
        store = orders(redis_url)
        await store.open()
        first = await store.add(1, "k", "qty=1", hold_id=HOLD)
        await store.settle(first, OrderState.VOID)
        with pytest.raises(IdempotencyConflict):  # still the key of that request
            await store.add(2, "k", "qty=2", hold_id=OTHER_HOLD)
        retry = await store.add(1, "k", "qty=1", hold_id=OTHER_HOLD)
        assert retry.order.order_id != first.order.order_id and retry.state is OrderState.PENDING
        assert await store.recall("k", "qty=1") == retry
        assert (await store.get(first.order.order_id) or first).state is OrderState.VOID
        await store.close()

    run(main)


def test_pending_lists_the_oldest_first_reading_only_them(redis_url: str) -> None:
    async def main() -> None:
        clock = Clock()
        store = orders(redis_url, clock)
        raw = client(redis_url)
        await store.open()
        made = []
        for qty in range(1, 6):
            made.append(await store.add(qty, None, f"qty={qty}", hold_id=HOLD))
            clock.advance(0.01)
        await store.settle(made[1], OrderState.CONFIRMED)
        await store.settle(made[3], OrderState.VOID)
        assert await store.pending(10) == [made[0], made[2], made[4]]
        assert await store.pending(2) == [made[0], made[2]]
        assert await store.pending(0) == []
        assert await raw.zcard(ORDERS_PENDING) == 3
        await store.close()
        await raw.aclose()

    run(main)


def test_purchase_keys_live_key_ttl(redis_url: str) -> None:
    async def main() -> None:
        store = orders(redis_url, key_ttl=0.2)
        raw = client(redis_url)
        await store.open()
        first = await store.add(1, "k", "qty=1", hold_id=HOLD)
        assert 0 < await raw.pttl(ORDER_KEY + "k") <= 200
        deadline = time.monotonic() + 5
        while await raw.exists(ORDER_KEY + "k") and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # polling Redis's expiry of the key
        assert await store.recall("k", "qty=1") is None
        assert await store.get(first.order.order_id) == first  # the order stays
        await store.close()
        await raw.aclose()

    run(main)


def test_the_store_id_is_made_once_and_shared_with_its_peer(redis_url: str) -> None:
    async def main() -> None:
        one = orders(redis_url)
        await one.open()
        assert re.fullmatch("[0-9a-f]{32}", one.store_id)
        two = orders(redis_url)
        await two.open()
        assert two.store_id == one.store_id
        assert await one.peer() is None
        await one.set_peer("5" * 32)
        assert await two.peer() == "5" * 32
        await two.set_peer("5" * 32)  # the same again: nothing to refuse
        with pytest.raises(StoreRefused, match=r"sold from stock store 5{32}"):
            await two.set_peer("6" * 32)
        assert await one.peer() == "5" * 32
        await closed(one, two)
        reopened = orders(redis_url)
        await reopened.open()
        assert reopened.store_id == one.store_id and await reopened.peer() == "5" * 32
        await reopened.close()

    run(main)


def test_an_emptied_redis_is_unavailable_never_an_empty_order_book(redis_url: str) -> None:
    async def main() -> None:
        store = orders(redis_url)
        raw = client(redis_url)
        await store.open()
        record = await store.add(1, "k", "qty=1", hold_id=HOLD)
        await raw.flushall()
        for call in (
            store.get(record.order.order_id),
            store.recall("k", "qty=1"),
            store.ping(),
            store.pending(5),
        ):
            with pytest.raises(StoreUnavailable, match="not initialised"):
                await call
        assert await raw.exists(ORDERS) == 0
        await store.close()
        await raw.aclose()

    run(main)


def test_orders_beside_the_stock_of_ticketsys_0_1_are_refused(redis_url: str) -> None:
    async def main() -> None:
        raw = client(redis_url)
        await raw.hset(STOCK, mapping={"capacity": 100, "available": 90})
        store = orders(redis_url)
        with pytest.raises(StoreRefused, match=r"ticketsys 0\.1"):
            await store.open()
        assert await raw.exists(ORDERS) == 0
        await store.close()
        await raw.aclose()

    run(main)


def test_hold_checkout_on_redis_replicas_sells_once_per_key(redis_server: RedisServer) -> None:
    """The monolith on Redis: each replica a HoldCheckout over its own RedisStock (through an
    in-process Vacancy) and RedisOrders. Buyers retrying one key on both replicas at once get
    one order, and the stock took it once."""

    async def main() -> None:
        redis_server.flush()
        url = redis_server.url
        replicas: list[HoldCheckout] = []
        stores: list[RedisStock | RedisOrders] = []
        clock = Clock()
        for _ in range(2):
            stock_store, order_store = stock(url, 1000, clock), orders(url, clock)
            vacancy = LocalVacancyClient(VacancyService(stock_store, max_qty=10))
            checkout = HoldCheckout(vacancy, order_store, purchase_ttl=30, clock=clock)
            await stock_store.open()
            await order_store.open()
            await checkout.open()
            replicas.append(checkout)
            stores += [order_store, stock_store]
        one, two = replicas
        assert one.store_id == two.store_id
        bought = []
        for n in range(20):
            key = f"buyer-{n}"
            first, second = await asyncio.gather(one.purchase(2, key, "qty=2"), two.purchase(2, key, "qty=2"))
            assert first == second
            bought.append(first)
        assert await one.vacancy.stock() == Stock(1000 - 40, 0, 40, 1000)
        assert await one.orders.pending(10) == []
        for order in bought:
            assert await two.order(order.order_id) == order
        for checkout in replicas:
            await checkout.close()
        for store in stores:
            await store.close()

    run(main)
