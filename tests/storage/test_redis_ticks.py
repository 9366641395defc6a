"""TickBatch against a real redis-server: the scripts of one tick go out as one pipeline, and
each call keeps its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from ticketsys.domain.errors import StoreUnavailable
from ticketsys.domain.models import HoldState, Stock
from ticketsys.storage.redis import store_errors
from ticketsys.storage.redis.keys import ORDER_KEY

from .redis_stores import client, orders, run, stock


async def _connections_made(url: str) -> int:
    raw = client(url)
    made = int((await raw.info("stats"))["total_connections_received"])
    await raw.aclose()
    return made - 1  # this one


def test_the_scripts_of_one_tick_share_one_pipeline(redis_url: str) -> None:
    async def main() -> None:
        store = stock(redis_url, 100)
        await store.open()
        await store.stock()
        before = await _connections_made(redis_url)
        holds = await asyncio.gather(*(store.hold(1, 30) for _ in range(40)))
        # One connection for all 40: each alone would have taken one from the pool at once.
        assert await _connections_made(redis_url) - before - 1 <= 1
        assert len({hold.hold_id for hold in holds}) == 40
        assert sorted(hold.remaining for hold in holds) == list(range(60, 100))
        assert await store.stock() == Stock(60, 40, 0, 100)
        await store.close()

    run(main)


def test_a_refusal_or_an_error_fails_only_its_own_call(redis_url: str) -> None:
    async def main() -> None:
        store, book = stock(redis_url, 10), orders(redis_url)
        await store.open()
        await book.open()
        raw = client(redis_url)
        await raw.hset(ORDER_KEY + "broken", "not", "a string")  # GET in the script: WRONGTYPE
        results = await asyncio.gather(
            book.recall("fine", "qty=1"),
            book.recall("broken", "qty=1"),
            book.recall("fine-too", "qty=1"),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], StoreUnavailable) and "WRONGTYPE" in str(results[1])
        held = await asyncio.gather(store.hold(6, 30), store.hold(6, 30), return_exceptions=True)
        assert sorted(type(r).__name__ for r in held) == ["Hold", "SoldOut"]
        assert await store.stock() == Stock(4, 6, 0, 10)
        await raw.aclose()
        await book.close()
        await store.close()

    run(main)


def test_scripts_redis_forgot_are_loaded_and_run_once(redis_url: str) -> None:
    async def main() -> None:
        store = stock(redis_url, 100)
        await store.open()
        raw = client(redis_url)
        await raw.script_flush()  # as a restarted Redis without its script cache
        holds = await asyncio.gather(*(store.hold(2, 30) for _ in range(10)))
        assert all(hold.state is HoldState.HELD for hold in holds)
        assert await store.stock() == Stock(80, 20, 0, 100)  # each ran exactly once
        await raw.aclose()
        await store.close()

    run(main)


@pytest.mark.parametrize("calls", [1, 16])
def test_a_store_closed_with_calls_in_flight_answers_them_first(redis_url: str, calls: int) -> None:
    async def main() -> None:
        store = stock(redis_url, 100)
        await store.open()
        pending = [asyncio.ensure_future(store.hold(1, 30)) for _ in range(calls)]
        await asyncio.sleep(0)  # sent, not answered yet
        await store.close()
        assert all(task.result().qty == 1 for task in pending)

    run(main)


def test_a_transport_closed_under_redis_py_is_unavailable_other_runtime_errors_are_bugs() -> None:
    closed = "unable to perform operation on <TCPTransport closed=True>; the handler is closed"
    with pytest.raises(StoreUnavailable, match="unreachable"), store_errors():
        raise RuntimeError(closed)  # uvloop's, when Redis dies as redis-py connects
    with pytest.raises(RuntimeError, match="other"), store_errors():
        raise RuntimeError("other")
