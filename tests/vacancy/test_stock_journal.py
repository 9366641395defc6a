"""StockManager on a journal: recovery, seeding, idempotency keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ticketsys.domain.errors import IdempotencyConflict
from ticketsys.domain.models import Reservation
from ticketsys.storage.journal import FsyncPolicy, Journal
from ticketsys.vacancy.stock import StockManager


def _open(path: Path, initial: int = 100, key_ttl: float = 3600) -> StockManager:
    stock = StockManager(initial, Journal(path, "stock", FsyncPolicy.NO), key_ttl=key_ttl)
    asyncio.run(stock.open())
    return stock


def test_sales_survive_a_restart(tmp_path: Path) -> None:
    stock = _open(tmp_path)
    asyncio.run(stock.reserve(30))
    asyncio.run(stock.release(5))
    asyncio.run(stock.close())
    again = _open(tmp_path)
    assert (again.available, again.capacity) == (75, 100)
    asyncio.run(again.close())


def test_sales_survive_a_process_that_never_closed(tmp_path: Path) -> None:
    stock = _open(tmp_path)
    asyncio.run(stock.reserve(30))
    # No close(): the journal's fd and lock are dropped as if the process had died.
    assert stock._journal is not None
    import os

    os.close(stock._journal._fd)
    os.close(stock._journal._lock_fd)
    again = _open(tmp_path)
    assert again.available == 70
    asyncio.run(again.close())


def test_initial_stock_seeds_only_a_new_store(tmp_path: Path) -> None:
    stock = _open(tmp_path, initial=100)
    asyncio.run(stock.reserve(1))
    asyncio.run(stock.close())
    again = _open(tmp_path, initial=5000)
    assert (again.available, again.capacity) == (99, 100)
    asyncio.run(again.close())


def test_restock_is_durable(tmp_path: Path) -> None:
    stock = _open(tmp_path, initial=10)
    asyncio.run(stock.restock(5))
    asyncio.run(stock.close())
    again = _open(tmp_path)
    assert (again.available, again.capacity) == (15, 15)
    asyncio.run(again.close())


def test_a_repeated_key_takes_stock_once(tmp_path: Path) -> None:
    stock = _open(tmp_path)
    first = asyncio.run(stock.reserve(10, key="k1"))
    asyncio.run(stock.reserve(1))
    assert asyncio.run(stock.reserve(10, key="k1")) == first == Reservation(True, 90)
    assert stock.available == 89
    asyncio.run(stock.close())


def test_keys_survive_a_restart(tmp_path: Path) -> None:
    stock = _open(tmp_path)
    asyncio.run(stock.reserve(10, key="k1"))
    asyncio.run(stock.close())
    again = _open(tmp_path)
    assert asyncio.run(again.reserve(10, key="k1")) == Reservation(True, 90)
    assert again.available == 90
    asyncio.run(again.close())


def test_a_key_reused_for_another_change_is_refused(tmp_path: Path) -> None:
    stock = _open(tmp_path)
    asyncio.run(stock.reserve(10, key="k1"))
    with pytest.raises(IdempotencyConflict):
        asyncio.run(stock.reserve(11, key="k1"))
    with pytest.raises(IdempotencyConflict):
        asyncio.run(stock.release(10, key="k1"))
    assert stock.available == 90
    asyncio.run(stock.close())


def test_concurrent_requests_with_one_key_take_stock_once() -> None:
    stock = StockManager(100)

    async def main() -> list[Reservation]:
        return await asyncio.gather(*(stock.reserve(7, key="same") for _ in range(50)))

    assert set(asyncio.run(main())) == {Reservation(True, 93)}
    assert stock.available == 93


def test_unsuccessful_reserves_are_not_remembered() -> None:
    stock = StockManager(5)
    assert asyncio.run(stock.reserve(6, key="k")) == Reservation(False, 5)
    asyncio.run(stock.restock(1))
    assert asyncio.run(stock.reserve(6, key="k")) == Reservation(True, 0)


def test_keys_expire(tmp_path: Path) -> None:
    stock = StockManager(100, key_ttl=0.0)
    asyncio.run(stock.reserve(10, key="k"))
    asyncio.run(stock.reserve(10, key="k"))  # forgotten at once: a new change
    assert stock.available == 80


def test_a_failed_append_changes_nothing(tmp_path: Path) -> None:
    from ticketsys.domain.errors import StoreUnavailable

    stock = _open(tmp_path)
    assert stock._journal is not None
    import os

    os.close(stock._journal._fd)  # every write now fails with EBADF
    with pytest.raises(StoreUnavailable):
        asyncio.run(stock.reserve(10))
    assert stock.available == 100
    stock._journal._fd = -1
    asyncio.run(stock.close())


def test_per_call_keys_are_remembered_briefly() -> None:
    import time

    from ticketsys.domain.models import CALL_KEY_PREFIX, CALL_KEY_TTL

    stock = StockManager(100, key_ttl=3600)
    key = CALL_KEY_PREFIX + "abc"
    asyncio.run(stock.reserve(1, key=key))
    asyncio.run(stock.reserve(1, key="buyer"))
    later = time.time() + CALL_KEY_TTL + 1
    assert stock._call_keys.get(key, later) is None  # forgotten after a minute
    assert stock._keys.get("buyer", later) is not None  # a buyer's key lives its full window


def test_cancel_undoes_a_keyed_reserve_once_and_forgets_its_key(tmp_path: Path) -> None:
    stock = _open(tmp_path)
    asyncio.run(stock.reserve(30, key="purchase:a"))
    assert asyncio.run(stock.cancel(30, "purchase:a")) == Reservation(True, 100)
    assert asyncio.run(stock.cancel(30, "purchase:a")) == Reservation(True, 100)  # a repeat: nothing
    assert asyncio.run(stock.cancel(5, "never-used")) == Reservation(True, 100)
    assert asyncio.run(stock.reserve(30, key="purchase:a")) == Reservation(True, 70)  # anew
    with pytest.raises(IdempotencyConflict):
        asyncio.run(stock.cancel(29, "purchase:a"))
    asyncio.run(stock.cancel(30, "purchase:a"))
    asyncio.run(stock.close())
    again = _open(tmp_path)  # the journal replays the cancels: the key is forgotten there too
    assert again.available == 100
    assert asyncio.run(again.reserve(30, key="purchase:a")) == Reservation(True, 70)
    asyncio.run(again.close())
