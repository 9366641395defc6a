"""Moving a sale from the embedded journal store into Redis (``ticketsys move-to-redis``).

The journal's lock is taken first, so the services using DATA_DIR must be stopped: the
stock cannot change while it is copied. The Redis side must be empty (no stock yet), so a
second run, or a run against the wrong Redis, refuses instead of overwriting a live sale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from ticketsys.storage.journal import FsyncPolicy, Journal


@dataclass(frozen=True, slots=True)
class Moved:
    capacity: int
    available: int
    orders: int
    keys: int


class MigrationRefused(RuntimeError):
    pass


async def move_to_redis(data_dir: Path, url: str, *, timeout: float, key_ttl: float) -> Moved:
    from ticketsys.storage.redis import connect
    from ticketsys.ticket.orders import OrderBook
    from ticketsys.ticket.redis_orders import KEY_PREFIX as PURCHASE_KEYS
    from ticketsys.ticket.redis_orders import ORDER_PREFIX
    from ticketsys.vacancy.redis_stock import KEY_PREFIX as STOCK_KEYS
    from ticketsys.vacancy.redis_stock import STOCK_KEY
    from ticketsys.vacancy.stock import StockManager

    if not (data_dir / "stock.snapshot").exists() and not any(data_dir.glob("stock.*.log")):
        raise MigrationRefused(f"no stock store in {data_dir}")
    stock = StockManager(0, Journal(data_dir, "stock", FsyncPolicy.ALWAYS))
    orders = OrderBook(Journal(data_dir, "orders", FsyncPolicy.ALWAYS))
    await stock.open()
    await orders.open()
    redis = connect(url, timeout=timeout, connect_timeout=min(timeout, 1.0))
    try:
        if await redis.exists(STOCK_KEY):
            raise MigrationRefused(f"{url} already holds a stock: refusing to overwrite a live sale")
        state, book = stock.snapshot(), orders.snapshot()
        now = time.time()

        def ttl_ms(at: float) -> int:  # what is left of the key's window (opened ones are current)
            return max(1, int((at + key_ttl - now) * 1000))

        async with redis.pipeline(transaction=True) as pipe:
            for key, op, qty, remaining, at in state["keys"]:
                pipe.set(STOCK_KEYS + key.encode(), f"{op}:{qty}:{remaining}", px=ttl_ms(at))
            for fields in book["orders"]:
                pipe.set(ORDER_PREFIX + fields["order_id"].encode(), orjson.dumps(fields))
            for key, fingerprint, order_id, at in book["keys"]:
                record = orjson.dumps({"fingerprint": fingerprint, "order_id": order_id})
                pipe.set(PURCHASE_KEYS + key.encode(), record, px=ttl_ms(at))
            # The stock goes last, in the same transaction: Redis has all or nothing of it.
            pipe.hset(STOCK_KEY, mapping={"capacity": state["capacity"], "available": state["available"]})
            await pipe.execute()
        return Moved(
            state["capacity"], state["available"], len(book["orders"]), len(state["keys"]) + len(book["keys"])
        )
    finally:
        await redis.aclose()
        await orders.close()
        await stock.close()
