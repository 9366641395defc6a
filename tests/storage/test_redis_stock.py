"""RedisStock against a real redis-server: what the state machine (test_stock_model.py) does
not reach. Identity and seeding, several replicas (clients) on one stock, keys' lifetime,
expiry in bulk and in the background, and a Redis that lost its data."""

from __future__ import annotations

import asyncio
import random
import re
import time

import pytest

from ticketsys.domain.errors import (
    HoldNotFound,
    HoldUnavailable,
    IdempotencyConflict,
    InvalidQuantity,
    SoldOut,
    StoreRefused,
    StoreUnavailable,
)
from ticketsys.domain.models import MAX_STOCK, HoldState, Stock
from ticketsys.domain.wire import ID_PATTERN
from ticketsys.storage.redis import Redis
from ticketsys.storage.redis.keys import HOLD, HOLD_KEY, HOLDS_DUE, ORDERS, STOCK
from ticketsys.storage.redis.stock import EXPIRY_BATCH, RedisStock

from .engines import Clock
from .redis_stores import client, run, stock


async def opened(*stores: RedisStock) -> None:
    for store in stores:
        await store.open()


async def closed(*stores: RedisStock | Redis) -> None:
    for store in stores:
        await store.aclose() if isinstance(store, Redis) else await store.close()


def test_initial_stock_seeds_only_the_store_being_created(redis_url: str) -> None:
    async def main() -> None:
        first = stock(redis_url, 100)
        await first.open()
        await first.sell(1)
        await first.close()
        second = stock(redis_url, 5000)
        await second.open()
        assert await second.stock() == Stock(99, 0, 1, 100)
        assert second.store_id == first.store_id
        await second.close()

    run(main)


def test_the_identity_is_made_at_creation_and_shared(redis_url: str) -> None:
    async def main() -> None:
        one, two = stock(redis_url, 100), stock(redis_url, 100)
        await opened(one, two)
        assert re.fullmatch("[0-9a-f]{32}", one.store_id) and two.store_id == one.store_id
        raw = client(redis_url)
        identity = await raw.hgetall(STOCK)
        assert identity[b"kind"] == b"stock" and identity[b"store_id"] == one.store_id.encode()
        assert identity[b"initial"] == b"100" and int(identity[b"created_ms"]) == int(Clock()() * 1000)
        await closed(one, two, raw)

    run(main)


def test_replicas_never_oversell(redis_url: str) -> None:
    async def main() -> None:
        replicas = [stock(redis_url, 500) for _ in range(4)]
        await opened(*replicas)
        rng = random.Random(3)
        wants = [(rng.choice(replicas), rng.randint(1, 10), rng.random() < 0.5) for _ in range(300)]

        async def take(store: RedisStock, qty: int, hold: bool) -> int:
            try:
                if hold:
                    return (await store.hold(qty, 60)).qty
                await store.sell(qty)
            except SoldOut:
                return 0
            return qty

        taken = await asyncio.gather(*(take(*want) for want in wants))
        final = await replicas[0].stock()
        assert sum(taken) == final.held + final.sold == 500 - final.available
        await closed(*replicas)

    run(main)


def test_a_key_returns_its_first_hold_from_any_replica(redis_url: str) -> None:
    async def main() -> None:
        one, two = stock(redis_url), stock(redis_url)
        await opened(one, two)
        first = await one.hold(10, 30, "k", "qty=10")
        assert await two.hold(10, 30, "k", "qty=10") == first
        with pytest.raises(IdempotencyConflict):
            await two.hold(11, 30, "k", "qty=11")
        await one.confirm(first.hold_id, "a" * 32)
        again = await two.hold(10, 30, "k", "qty=10")  # in its state now
        assert (again.hold_id, again.state, again.order_id) == (first.hold_id, HoldState.CONFIRMED, "a" * 32)
        assert await one.stock() == Stock(90, 0, 10, 100)
        await closed(one, two)

    run(main)


def test_keys_live_key_ttl_by_redis_clock(redis_url: str) -> None:
    async def main() -> None:
        store = stock(redis_url, key_ttl=0.2)
        raw = client(redis_url)
        await store.open()
        first = await store.hold(1, 30, "k", "qty=1")
        assert 0 < await raw.pttl(HOLD_KEY + "k") <= 200
        deadline = time.monotonic() + 5
        while await raw.exists(HOLD_KEY + "k") and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # polling Redis's expiry of the key
        anew = await store.hold(1, 30, "k", "qty=2")  # forgotten: no conflict, a new hold
        assert anew.hold_id != first.hold_id
        assert await store.stock() == Stock(98, 2, 0, 100)
        await closed(store, raw)

    run(main)


def test_hold_ids_are_random_and_anything_else_names_no_hold(redis_url: str) -> None:
    async def main() -> None:
        store = stock(redis_url)
        await store.open()
        ids = {(await store.hold(1, 30)).hold_id for _ in range(20)}
        assert len(ids) == 20 and all(re.fullmatch(ID_PATTERN, hold_id) for hold_id in ids)
        for unknown in ("0" * 32, "x" * 32, "", "*", next(iter(ids)) + ":x"):
            for call in (store.get_hold(unknown), store.confirm(unknown, "a" * 32), store.release(unknown)):
                with pytest.raises(HoldNotFound):
                    await call
        await store.close()

    run(main)


def test_a_confirmed_hold_cannot_be_released_nor_sold_again(redis_url: str) -> None:
    async def main() -> None:
        store = stock(redis_url)
        await store.open()
        hold = await store.hold(3, 30)
        await store.confirm(hold.hold_id, "a" * 32)
        with pytest.raises(HoldUnavailable) as released:
            await store.release(hold.hold_id)
        assert (released.value.state, released.value.order_id) == (HoldState.CONFIRMED, "a" * 32)
        with pytest.raises(HoldUnavailable) as other:
            await store.confirm(hold.hold_id, "b" * 32)
        assert other.value.order_id == "a" * 32
        assert await store.stock() == Stock(97, 0, 3, 100)
        await store.close()

    run(main)


def test_restock_is_bounded_by_max_stock(redis_url: str) -> None:
    async def main() -> None:
        store = stock(redis_url)
        await store.open()
        for qty in (MAX_STOCK, 9_000_000_000_000_000_000, 10**30):
            with pytest.raises(InvalidQuantity):
                await store.restock(qty)
        assert await store.restock(MAX_STOCK - 100) == MAX_STOCK
        assert await store.stock() == Stock(MAX_STOCK, 0, 0, MAX_STOCK)
        hold = await store.hold(MAX_STOCK - 1, 30)
        assert hold.remaining == 1 and await store.stock() == Stock(1, MAX_STOCK - 1, 0, MAX_STOCK)
        await store.close()

    run(main)


def test_expiry_releases_every_due_hold_and_only_those(redis_url: str) -> None:
    async def main() -> None:
        clock = Clock()
        store = stock(redis_url, 10_000, clock)
        raw = client(redis_url)
        await store.open()
        due = [await store.hold(1, 1) for _ in range(EXPIRY_BATCH * 2 + 5)]  # several batches
        later = await store.hold(7, 5)
        clock.advance(1)
        assert await store.expire() == len(due)
        assert await store.stock() == Stock(10_000 - 7, 7, 0, 10_000)
        assert await raw.zrange(HOLDS_DUE, 0, -1) == [later.hold_id.encode()]
        assert {(await store.get_hold(hold.hold_id)).state for hold in due} == {HoldState.EXPIRED}
        assert await store.expire() == 0
        await closed(store, raw)

    run(main)


def test_due_holds_are_swept_in_the_background(redis_url: str) -> None:
    async def main() -> None:
        clock = Clock()
        store = stock(redis_url, 10, clock)
        raw = client(redis_url)
        await store.open()
        hold = await store.hold(4, 1)
        clock.advance(2)  # due now; nobody asks the store, but its sweep runs each second
        deadline = time.monotonic() + 5
        while await raw.hget(STOCK, "held") != b"0" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # polling Redis for the sweep's write
        assert await raw.hget(HOLD + hold.hold_id, "state") == b"expired"
        assert await raw.hget(STOCK, "available") == b"10"
        await store.close()
        await raw.aclose()

    run(main)


def test_an_emptied_redis_is_unavailable_never_a_new_sale(redis_url: str) -> None:
    async def main() -> None:
        store = stock(redis_url)
        raw = client(redis_url)
        await store.open()
        hold = await store.hold(5, 30)
        await raw.flushall()
        calls = [store.stock(), store.ping(), store.sell(1), store.get_hold(hold.hold_id), store.expire()]
        for call in calls:
            with pytest.raises(StoreUnavailable, match="not initialised"):
                await call
        assert await raw.exists(STOCK) == 0  # nothing seeded behind the store's back
        await closed(store, raw)

    run(main)


def test_a_stock_replaced_under_a_replica_is_unavailable_to_it(redis_url: str) -> None:
    async def main() -> None:
        old = stock(redis_url)
        raw = client(redis_url)
        await old.open()
        await raw.flushall()
        new = stock(redis_url)
        await new.open()  # a new sale, made by another process
        with pytest.raises(StoreUnavailable, match="not the one opened"):
            await old.sell(1)
        assert await new.stock() == Stock(100, 0, 0, 100)
        await closed(old, new, raw)

    run(main)


def test_a_missing_stock_beside_orders_sold_from_it_is_refused(redis_url: str) -> None:
    async def main() -> None:
        raw = client(redis_url)
        await raw.hset(ORDERS, mapping={"kind": "orders", "store_id": "1" * 32, "peer": "2" * 32})
        store = stock(redis_url)
        with pytest.raises(StoreRefused, match=r"sold from stock store 2{32}"):
            await store.open()
        assert await raw.exists(STOCK) == 0
        await closed(store, raw)

    run(main)


def test_the_stock_of_ticketsys_0_1_is_refused(redis_url: str) -> None:
    async def main() -> None:
        raw = client(redis_url)
        await raw.hset(STOCK, mapping={"capacity": 100, "available": 90})
        store = stock(redis_url)
        with pytest.raises(StoreRefused, match=r"ticketsys 0\.1"):
            await store.open()
        assert await raw.hgetall(STOCK) == {b"capacity": b"100", b"available": b"90"}
        await closed(store, raw)

    run(main)


def test_close_stops_the_sweep(redis_url: str) -> None:
    async def main() -> None:
        store = stock(redis_url)
        await store.open()
        await store.close()
        assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []
        assert repr(store).startswith("<RedisStock redis://127.0.0.1:")

    run(main)
