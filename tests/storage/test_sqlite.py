"""The SQLite engine in-process: group commit, identity, refusals at open, ids, key expiry.

Crashes are real: a child process opens the store, sells, and dies with ``os._exit`` (as
``kill -9`` would leave it: the log and its index on disk, no clean close); the files are then
damaged the way the issue found them damaged, and the store must refuse to open with one line
naming the file, never open on a guess.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from ticketsys.domain.errors import IdempotencyConflict, InvalidQuantity, SoldOut, StoreRefused
from ticketsys.domain.models import MAX_STOCK, OrderState
from ticketsys.storage.fsync import FsyncPolicy
from ticketsys.storage.sqlite import database as database_module
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.orders import SqliteOrders
from ticketsys.storage.sqlite.sale import SqliteSale
from ticketsys.storage.sqlite.stock import SqliteStock

from .engines import Clock


def sale(directory: Path, initial: int = 100, clock: Clock | None = None) -> SqliteSale:
    return SqliteSale(Database(directory / "sale.db", "sale"), initial, clock=clock or Clock())


async def sell_some(store: SqliteSale, count: int) -> list[str]:
    return [(await store.purchase(1, None, "qty=1")).order_id for _ in range(count)]


def crash_after_selling(directory: Path, count: int) -> list[str]:
    """A child process sells ``count`` tickets one purchase at a time, prints the order ids,
    and dies without closing the store."""
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys
        from pathlib import Path
        from ticketsys.storage.sqlite.database import Database
        from ticketsys.storage.sqlite.sale import SqliteSale

        async def main():
            store = SqliteSale(Database(Path({str(directory)!r}) / "sale.db", "sale"), 100)
            await store.open()
            for _ in range({count}):
                print((await store.purchase(1, None, "qty=1")).order_id, flush=True)
            os._exit(0)

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


async def refusal(store: SqliteSale | SqliteStock | SqliteOrders) -> str:
    with pytest.raises(StoreRefused) as refused:
        await store.open()
    message = str(refused.value)
    assert "\n" not in message
    return message


# -- group commit ------------------------------------------------------------------------


async def test_changes_of_one_tick_share_one_commit(tmp_path: Path) -> None:
    store = sale(tmp_path)
    await store.open()
    database = store._db
    before = database._commits
    orders = await asyncio.gather(*(store.purchase(1, None, "qty=1") for _ in range(50)))
    assert database._commits == before + 1
    assert len({order.order_id for order in orders}) == 50
    assert (await store.stock()).sold == 50
    await store.close()


async def test_an_answer_waits_for_its_commit(tmp_path: Path) -> None:
    store = sale(tmp_path)
    await store.open()
    purchase = asyncio.ensure_future(store.purchase(1, None, "qty=1"))
    await asyncio.sleep(0)  # the purchase ran its statements, its commit is the next tick's
    assert not purchase.done() and store._db.pending() is not None
    order = await purchase
    # committed: another connection (another process, for all it knows) reads it
    with sqlite3.connect(tmp_path / "sale.db") as other:
        assert other.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    assert (await store.get_order(order.order_id)) == order
    await store.close()


@pytest.mark.parametrize("policy", list(FsyncPolicy))
async def test_every_fsync_policy_commits_and_recovers(tmp_path: Path, policy: FsyncPolicy) -> None:
    store = SqliteSale(Database(tmp_path / "sale.db", "sale", policy), 10)
    await store.open()
    ids = await sell_some(store, 3)
    await store.close()
    again = sale(tmp_path)
    await again.open()
    assert [await again.get_order(i) is not None for i in ids] == [True] * 3
    assert (await again.stock()).available == 7
    await again.close()


async def test_a_clean_close_leaves_one_file(tmp_path: Path) -> None:
    store = sale(tmp_path)
    await store.open()
    await sell_some(store, 2)
    await store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sale.db"]


@pytest.mark.parametrize("policy", list(FsyncPolicy))
async def test_a_log_written_all_the_time_starts_over_without_failing_a_change(
    tmp_path: Path, policy: FsyncPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Buyers never let the log rest (a purchase in every tick, holds made, confirmed and read
    between them): a passive checkpoint alone would let it grow for ever. Past its limit the
    log starts over in a pause of the writes; every change is answered, none twice."""
    monkeypatch.setattr(database_module, "CHECKPOINT_EVERY", 0.02)
    store = SqliteSale(Database(tmp_path / "sale.db", "sale", policy), 1_000_000, clock=Clock())
    store._db.log_restart_bytes = 64 * 1024
    await store.open()
    orders: list[str] = []
    stop = asyncio.get_running_loop().time() + 1.5

    async def buyer() -> None:
        while asyncio.get_running_loop().time() < stop or store._db.restarts < 2:
            orders.append((await store.purchase(1, None, "qty=1")).order_id)
            hold = await store.hold(1, 60.0)
            await store.confirm_hold(hold.hold_id, None, "")
            assert (await store.get_hold(hold.hold_id)).order_id is not None
            await store.stock()

    await asyncio.wait_for(asyncio.gather(*(buyer() for _ in range(8))), 30)
    assert store._db.restarts >= 2
    wal = tmp_path / "sale.db-wal"
    assert (
        wal.stat().st_size < 8 * 1024 * 1024
    )  # under FSYNC=no up to LOG_LIMIT_BYTES; without the pauses, ~100 MB
    stock = await store.stock()
    assert stock.sold == 2 * len(orders) and stock.available + stock.sold == 1_000_000
    await store.close()
    again = sale(tmp_path)
    await again.open()
    assert all([await again.get_order(order_id) is not None for order_id in orders[-50:]])
    assert (await again.stock()).sold == 2 * len(orders)
    await again.close()


async def test_the_pause_that_starts_the_log_over_runs_at_the_loops_priority(tmp_path: Path) -> None:
    """The copies go on at a low priority; the pause, which every change waits for, must not:
    a low-priority thread on a busy core made it last 20-80 ms."""
    store = sale(tmp_path)
    await store.open()
    nice = {t.name: os.getpriority(os.PRIO_PROCESS, t.native_id or 0) for t in threading.enumerate()}
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert nice["checkpoint sale.db"] == min(loop_nice + 10, 19)
    assert [n for name, n in nice.items() if name.startswith("log restart sale.db")] == [loop_nice]
    await store.close()
    assert not any(
        t.name.startswith(("checkpoint sale.db", "log restart sale.db")) for t in threading.enumerate()
    )


def _posix_locks_held(path: Path) -> list[str]:
    """The POSIX (fcntl) locks this process holds on ``path``, as /proc/locks lists them."""
    inode = os.stat(path).st_ino
    return [
        line
        for line in Path("/proc/locks").read_text().splitlines()
        if " POSIX " in line and f" {os.getpid()} " in line and line.split()[5].endswith(f":{inode}")
    ]


async def test_the_owner_keeps_sqlites_locks_on_the_wal_index(tmp_path: Path) -> None:
    """Checking the WAL index at open once closed a descriptor of ``-shm`` while SQLite had it
    open, which drops every POSIX lock the process held on it: the next process to open the
    store (an export, a check) took itself for the first, rebuilt the index under the owner,
    and the owner died of SIGBUS (seen in the frozen-Vacancy fault test, whose exports poll
    Ticket's running store)."""
    crash_after_selling(tmp_path, 3)  # a log and its index left behind: both reads at open run
    store = sale(tmp_path)
    await store.open()
    await sell_some(store, 2)
    assert _posix_locks_held(tmp_path / "sale.db-shm"), "SQLite's lock on the WAL index is gone"
    reader = subprocess.run(
        [sys.executable, "-m", "ticketsys", "orders", "export", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reader.returncode == 0, reader.stderr
    assert len(reader.stdout.splitlines()) == 5
    await sell_some(store, 2)  # the owner's mapping of the index is intact
    assert (await store.stock()).sold == 7
    await store.close()


# -- identity and refusals -------------------------------------------------------------------


async def test_initial_stock_seeds_only_a_new_store(tmp_path: Path) -> None:
    store = sale(tmp_path, initial=10)
    await store.open()
    await sell_some(store, 4)
    identity = store.store_id
    await store.close()
    again = sale(tmp_path, initial=5000)
    await again.open()
    assert (await again.stock()).capacity == 10 and again.store_id == identity
    await again.close()


async def test_a_second_owner_is_refused_even_without_lock_files(tmp_path: Path) -> None:
    store = sale(tmp_path)
    await store.open()
    assert not list(tmp_path.glob("*.lock"))  # the lock is on the store itself
    second = sale(tmp_path)
    assert "another process owns this store" in await refusal(second)
    await store.close()


async def test_a_store_of_another_kind_is_refused(tmp_path: Path) -> None:
    orders = SqliteOrders(Database(tmp_path / "sale.db", "orders"))
    created = sale(tmp_path)
    await created.open()
    await created.close()
    assert "is a sale store, not a orders store" in await refusal(orders)


async def test_a_foreign_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sale.db").write_bytes(b"name,qty\nalice,3\n" * 100)
    assert "is not a SQLite database" in await refusal(sale(tmp_path))


async def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "sale.db") as other:
        other.execute("CREATE TABLE photos (name TEXT)")
    assert "another application" in await refusal(sale(tmp_path))


async def test_a_store_cut_short_is_refused(tmp_path: Path) -> None:
    store = sale(tmp_path)
    await store.open()
    await sell_some(store, 30)
    await store.close()
    path = tmp_path / "sale.db"
    os.truncate(path, path.stat().st_size - 4096)
    message = await refusal(sale(tmp_path))
    assert str(path) in message and "cut short" in message


async def test_a_damaged_header_is_refused(tmp_path: Path) -> None:
    store = sale(tmp_path)
    await store.open()
    await store.close()
    path = tmp_path / "sale.db"
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01  # "SQLite format 3" no more
    path.write_bytes(bytes(data))
    assert "is not a SQLite database" in await refusal(sale(tmp_path))


async def test_a_moved_store_is_refused(tmp_path: Path) -> None:
    store = sale(tmp_path)
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "sale.db") as conn:
        conn.execute("UPDATE identity SET moved_to = 'redis://elsewhere:6379/0'")
    assert "was moved to redis://elsewhere:6379/0" in await refusal(sale(tmp_path))


# -- crashes ---------------------------------------------------------------------------------


async def test_a_crash_loses_nothing_acknowledged(tmp_path: Path) -> None:
    ids = crash_after_selling(tmp_path, 25)
    assert (tmp_path / "sale.db-wal").exists()
    store = sale(tmp_path)
    await store.open()
    assert all([await store.get_order(order_id) is not None for order_id in ids])
    stock = await store.stock()
    assert (stock.sold, stock.available) == (25, 75)
    await store.close()


async def test_a_settled_order_is_stored_before_settle_returns(tmp_path: Path) -> None:
    """Ticket answers a buyer as soon as ``settle`` returns: a process that dies the next
    instant must still hold the order confirmed (it once committed a tick later: lost)."""
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from pathlib import Path
        from ticketsys.domain.models import OrderState
        from ticketsys.storage.sqlite.database import Database
        from ticketsys.storage.sqlite.orders import SqliteOrders

        async def main():
            orders = SqliteOrders(Database(Path({str(tmp_path)!r}) / "orders.db", "orders"))
            await orders.open()
            record = await orders.add(1, None, "", expires_at=4e9)
            await orders.settle(record, OrderState.CONFIRMED, hold_id="ab" * 16, remaining=5)
            print(record.order.order_id, flush=True)
            os._exit(0)

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    orders = SqliteOrders(Database(tmp_path / "orders.db", "orders"))
    await orders.open()
    found = await orders.get(done.stdout.strip())
    assert found is not None and found.state is OrderState.CONFIRMED and found.order.remaining == 5
    await orders.close()


async def test_a_log_deleted_after_a_crash_is_refused(tmp_path: Path) -> None:
    crash_after_selling(tmp_path, 5)
    (tmp_path / "sale.db-wal").unlink()
    message = await refusal(sale(tmp_path))
    assert "was not closed cleanly" in message and "sale.db-wal is missing" in message


async def test_a_log_cut_short_after_a_crash_is_refused(tmp_path: Path) -> None:
    crash_after_selling(tmp_path, 25)
    log = tmp_path / "sale.db-wal"
    os.truncate(log, log.stat().st_size - 100)
    message = await refusal(sale(tmp_path))
    assert str(log) in message and "cut short or damaged" in message


async def test_a_bit_flipped_in_the_log_after_a_crash_is_refused(tmp_path: Path) -> None:
    crash_after_selling(tmp_path, 25)
    log = tmp_path / "sale.db-wal"
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0x10
    log.write_bytes(bytes(data))
    assert "cut short or damaged" in await refusal(sale(tmp_path))


async def test_holds_that_expired_while_down_are_released_at_start(tmp_path: Path) -> None:
    clock = Clock()
    store = sale(tmp_path, clock=clock)
    await store.open()
    await store.hold(7, 10.0)
    await store.hold(2, 100.0)
    await store.close()
    clock.advance(50)
    again = sale(tmp_path, clock=clock)
    await again.open()
    stock = await again.stock()
    assert (stock.available, stock.held) == (98, 2)
    await again.close()


# -- values and ids --------------------------------------------------------------------------


async def test_restock_is_bounded(tmp_path: Path) -> None:
    store = sale(tmp_path)
    await store.open()
    with pytest.raises(InvalidQuantity):
        await store.restock(MAX_STOCK)
    assert (await store.stock()).capacity == 100
    await store.close()


async def test_the_stored_counters_refuse_any_change_that_breaks_the_invariant(tmp_path: Path) -> None:
    store = sale(tmp_path)
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "sale.db") as conn:
        for change in (
            "available = available + 5",
            "sold = -1",
            "held = held + 1, available = available - 2",
        ):
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(f"UPDATE stock SET {change}")


async def test_ids_are_unguessable_and_leak_no_count(tmp_path: Path) -> None:
    store = sale(tmp_path)
    await store.open()
    first, second = await sell_some(store, 2)
    assert len(first) == 32 and first[:20] != second[:20]
    forged = first[:20] + second[20:]  # a real row number with another order's secret
    for probe in (forged, "0" * 32, "zz", first.upper(), first + "00"):
        assert await store.get_order(probe) is None
    await store.close()


async def test_keys_are_remembered_for_their_ttl_and_expire_in_the_background(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteSale(Database(tmp_path / "sale.db", "sale"), 1000, clock=clock, key_ttl=60)
    await store.open()
    first = await store.purchase(2, "k", "qty=2")
    assert await store.purchase(2, "k", "qty=2") == first
    with pytest.raises(IdempotencyConflict):
        await store.purchase(3, "k", "qty=3")
    for n in range(450):
        await store.purchase(1, f"key-{n}", "qty=1")
    assert store.figures()["keys"] == 451  # /status's count: the same as count(*)
    assert store._db.read("SELECT count(*) FROM order_keys").fetchone()[0] == 451
    clock.advance(61)
    assert await store.recall("k", "qty=2") is None  # past its time: gone for every decision
    while store._maintain() or store._order_keys.expire(store._now()):
        await store._db.flush()
    await store._db.flush()
    assert store._db.read("SELECT count(*) FROM order_keys").fetchone()[0] == 0
    assert store.figures()["keys"] == 0
    assert (await store.purchase(2, "k", "qty=2")) != first  # a new purchase
    await store.close()


async def test_sold_out_takes_nothing(tmp_path: Path) -> None:
    store = sale(tmp_path, initial=3)
    await store.open()
    with pytest.raises(SoldOut) as caught:
        await store.purchase(4, None, "qty=4")
    assert caught.value.remaining == 3
    assert (await store.stock()).available == 3
    await store.close()
