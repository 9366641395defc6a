"""The SQLite store at a size that would have hurt the journal: functional checks, no timings.

* 200,000 orders (every other one keyed), then ``kill -9`` of the process that sold them: after
  reopening, every order and every key is readable and the stock balances.
* The heap does not grow with the sale: over 100,000 keyed purchases through the app's own
  request path (the router, the service, the store), what tracemalloc sees allocated grows by
  less than a constant that does not depend on the count (the same bound after 20,000 and
  after 100,000).
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import orjson
import pytest

from ticketsys.apps.monolith import build_monolith
from ticketsys.config import Settings
from ticketsys.http.models import Request
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.sale import SqliteSale

pytestmark = pytest.mark.slow

ORDERS = 200_000


def test_200k_orders_survive_kill_9(tmp_path: Path) -> None:
    sold = tmp_path / "sold.jsonl"
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        import orjson
        from pathlib import Path
        from ticketsys.storage.sqlite.database import Database
        from ticketsys.storage.sqlite.sale import SqliteSale

        async def main():
            store = SqliteSale(Database(Path({str(tmp_path)!r}) / "sale.db", "sale"), {ORDERS * 2})
            await store.open()
            with open({str(sold)!r}, "wb") as out:
                for start in range(0, {ORDERS}, 500):
                    keys = [f"key-{{n}}" if n % 2 else None for n in range(start, start + 500)]
                    orders = await asyncio.gather(*(store.purchase(1 + n % 3, k, f"qty={{1 + n % 3}}")
                                                    for n, k in zip(range(start, start + 500), keys)))
                    for key, order in zip(keys, orders):
                        out.write(orjson.dumps([order.order_id, order.qty, key]) + b"\\n")
                    out.flush()  # what the buyers were told, before the next batch is sold
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=600)
    assert done.returncode == -9, done.stderr.decode()
    told = [orjson.loads(line) for line in sold.read_bytes().splitlines()]
    assert len(told) == ORDERS

    async def verify() -> None:
        store = SqliteSale(Database(tmp_path / "sale.db", "sale"), 1)
        await store.open()
        try:
            for order_id, qty, key in told:
                order = await store.get_order(order_id)
                assert order is not None and order.qty == qty, order_id
                if key is not None:
                    assert await store.recall(key, f"qty={qty}") == order
            stock = await store.stock()
            assert stock.sold == sum(qty for _, qty, _ in told)
            assert stock.available + stock.held + stock.sold == stock.capacity == ORDERS * 2
        finally:
            await store.close()

    asyncio.run(verify())


def test_the_heap_does_not_grow_with_the_sale(tmp_path: Path) -> None:
    app = build_monolith(Settings(initial_stock=10**9, data_dir=str(tmp_path), max_qty=10))
    body = orjson.dumps({"qty": 1})

    async def sell(start: int, count: int) -> None:
        for first in range(start, start + count, 100):
            requests = [
                Request(
                    "POST",
                    "/api/v1/purchase",
                    ((b"content-type", b"application/json"), (b"idempotency-key", b"k%d" % n)),
                    body,
                )
                for n in range(first, first + 100)
            ]
            answers = await asyncio.gather(*(app.handle(request) for request in requests))
            assert all(answer.status == 200 for answer in answers)

    async def main() -> list[int]:
        await app.startup()
        try:
            await sell(0, 5_000)  # warm: caches, interned strings, the page cache
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            growth: list[int] = []
            for step in (20_000, 80_000):
                await sell(10**7 * (len(growth) + 1), step)
                gc.collect()
                growth.append(tracemalloc.get_traced_memory()[0] - base)
            tracemalloc.stop()
            return growth
        finally:
            await app.shutdown()

    after_20k, after_100k = asyncio.run(main())
    # Python objects per purchase would be ~200 bytes each: 20 MB after 100k, 4 MB after 20k.
    assert after_100k < 1_000_000, f"{after_100k} bytes more after 100k keyed purchases"
    assert after_100k - after_20k < 500_000, (after_20k, after_100k)
