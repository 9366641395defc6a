"""Moving a sale from the SQLite stores into Redis (``ticketsys move-to-redis``).

What moves: the stock (its counters and identity), every hold (the held ones keep their
expiry), every order with its state, and the idempotency keys still remembered (with what is
left of their time). Whole or not at all, and never twice:

- The sale's parts move together. The monolith's ``sale.db`` is both; in microservices
  Vacancy's ``stock.db`` and Ticket's ``orders.db`` (in one DATA_DIR, or each in its own, as
  compose keeps them) must be named together, and must belong together (the orders' Vacancy
  is this stock): moving one without the other would leave a sale whose sold tickets have no
  orders, or orders no stock.
- The stores are opened as the services would (every check at open), under their locks, so
  nothing sells while they are read, and marked moved (``moved_to``) before Redis is written:
  from then on nothing serves them, and a rerun of the same move may resume.
- Redis must hold no sale. The move first sets ``{ticketsys}:moving`` (no store opens while
  it exists), writes holds, orders and keys in batches, then, in one MULTI/EXEC, the two
  identity hashes that make the sale servable, deleting the marker. A move cut short leaves
  a Redis nothing opens, and the same command finishes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketsys.domain.models import OrderState
from ticketsys.storage.redis import Redis, connect
from ticketsys.storage.redis.keys import (
    HOLD,
    HOLD_KEY,
    HOLDS_DUE,
    MOVING,
    ORDER,
    ORDER_KEY,
    ORDERS,
    ORDERS_PENDING,
    STOCK,
)
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.ids import IdCodec
from ticketsys.storage.sqlite.stock import STATES

BATCH = 10_000  # commands per pipeline round trip while the marker keeps the sale closed


@dataclass(frozen=True, slots=True)
class Moved:
    capacity: int
    available: int
    holds: int
    orders: int
    keys: int


class MoveRefused(RuntimeError):
    pass


def sources(stock_dir: Path, orders_dir: Path) -> list[Database]:
    """The stores of one sale, or a refusal naming what is missing."""
    sale = stock_dir / "sale.db"
    if sale.exists():
        if orders_dir != stock_dir:
            raise MoveRefused(
                f"{sale} is a monolith's sale, stock and orders in one file: name only its directory"
            )
        return [Database(sale, "sale")]
    stock, orders = stock_dir / "stock.db", orders_dir / "orders.db"
    missing = [str(path) for path in (stock, orders) if not path.exists()]
    if missing:
        raise MoveRefused(
            f"no {' and no '.join(missing)}: a sale moves whole (Vacancy's stock.db with Ticket's orders.db; "
            "name their directories with --stock-dir and --orders-dir)"
        )
    return [Database(stock, "stock"), Database(orders, "orders")]


async def move_to_redis(
    stock_dir: Path, orders_dir: Path, url: str, *, timeout: float, key_ttl: float
) -> Moved:
    databases = sources(stock_dir, orders_dir)
    for database in databases:
        database.open(None, moving_to=url)
    try:
        stock_db, orders_db = databases[0], databases[-1]
        assert stock_db.identity is not None and orders_db.identity is not None
        peer = orders_db.identity.peer
        if orders_db is not stock_db and peer is not None and peer != stock_db.identity.store_id:
            raise MoveRefused(
                f"{orders_db.path}'s orders were sold from stock store {peer}, not from {stock_db.path} "
                f"({stock_db.identity.store_id}): these stores are not one sale"
            )
        redis = connect(url, timeout=timeout, connect_timeout=min(timeout, 1.0))
        try:
            await _refuse_another_sale(redis, url, stock_db)
            for database in databases:
                database.mark_moved(url)
            return await _write(redis, stock_db, orders_db, key_ttl)
        finally:
            await redis.aclose()
    finally:
        for database in databases:
            database.close_now()


async def _refuse_another_sale(redis: Redis, url: str, stock_db: Database) -> None:
    assert stock_db.identity is not None
    found = await redis.hget(STOCK, "store_id")
    there = found.decode() if isinstance(found, bytes) else None
    if await redis.exists(ORDERS) or there is not None:
        if there == stock_db.identity.store_id and not await redis.exists(MOVING):
            raise MoveRefused(f"{url} already holds this sale (stock store {there}): it was moved")
        if there is not None or not await redis.exists(MOVING):
            raise MoveRefused(f"{url} already holds a sale: refusing to overwrite it")


async def _write(redis: Redis, stock_db: Database, orders_db: Database, key_ttl: float) -> Moved:
    assert stock_db.identity is not None and orders_db.identity is not None
    now_ms = int(time.time() * 1000)
    ttl_ms = int(key_ttl * 1000)
    await redis.set(MOVING, now_ms)
    counts = {"holds": 0, "orders": 0, "keys": 0}
    pipe = redis.pipeline(transaction=False)
    queued = 0
    for name, command in _commands(stock_db, orders_db, now_ms, ttl_ms):
        command(pipe)
        counts[name] = counts.get(name, 0) + 1
        queued += 1
        if queued >= BATCH:
            await pipe.execute()
            queued = 0
    await pipe.execute()
    stock = stock_db.connection.execute(
        "SELECT capacity, available, held, sold, sold_direct FROM stock"
    ).fetchone()
    capacity, available, held, sold, direct = stock
    identity = stock_db.identity
    async with redis.pipeline(transaction=True) as final:
        final.hset(
            STOCK,
            mapping={
                "kind": "stock",
                "store_id": identity.store_id,
                "created_ms": int(identity.created_at * 1000),
                "initial": identity.capacity,
                "capacity": capacity,
                "available": available,
                "held": held,
                "sold": sold,
                "sold_direct": direct,
            },
        )
        orders_identity = orders_db.identity
        final.hset(
            ORDERS,
            mapping={
                "kind": "orders",
                "store_id": orders_identity.store_id,
                "created_ms": int(orders_identity.created_at * 1000),
                "peer": identity.store_id
                if orders_db is stock_db
                else (orders_identity.peer or identity.store_id),
            },
        )
        final.delete(MOVING)
        await final.execute()
    keys = counts.get("hold_keys", 0) + counts.get("order_keys", 0)
    return Moved(capacity, available, counts["holds"], counts["orders"], keys)


Command = Callable[[Any], object]  # queues one command on a redis-py pipeline


def _commands(
    stock_db: Database, orders_db: Database, now_ms: int, ttl_ms: int
) -> Iterator[tuple[str, Command]]:
    """Redis commands that write the holds, orders and keys (keys.py has the layout)."""
    assert stock_db.identity is not None and orders_db.identity is not None
    holds = IdCodec(stock_db.identity.secret, b"hold")
    conn = stock_db.connection
    hold_ids: dict[int, str] = {}
    for seq, secret, qty, expires_ms, state, remaining, order in conn.execute(
        "SELECT seq, secret, qty, expires_ms, state, remaining, order_id FROM holds"
    ):
        hold_id = hold_ids[seq] = holds.encode(seq, secret)
        fields: dict[str, Any] = {
            "qty": qty,
            "expires_ms": expires_ms,
            "state": STATES[state].value,
            "remaining": remaining,
        }
        if order is not None:
            fields["order"] = order.hex()
        yield "holds", _hset(HOLD + hold_id, fields)
        if state == 0:
            yield "due", _zadd(HOLDS_DUE, hold_id, expires_ms)
    yield from _keys(conn, "hold_keys", HOLD_KEY, lambda seq: hold_ids[seq], now_ms, ttl_ms)
    orders = IdCodec(orders_db.identity.secret, b"order")
    conn = orders_db.connection
    order_ids: dict[int, str] = {}
    for seq, secret, qty, created_ms, remaining, state, hold, expires_ms in conn.execute(
        "SELECT seq, secret, qty, created_ms, remaining, state, hold, expires_ms FROM orders"
    ):
        order_id = order_ids[seq] = orders.encode(seq, secret)
        fields = {
            "qty": qty,
            "created_ms": created_ms,
            "remaining": remaining,
            "state": OrderState(state).name.lower(),
        }
        if hold is not None:
            fields["hold"] = hold.hex()
        if expires_ms is not None:
            fields["expires_ms"] = expires_ms
        yield "orders", _hset(ORDER + order_id, fields)
        if state == OrderState.PENDING:
            yield "pending", _zadd(ORDERS_PENDING, order_id, created_ms)
    yield from _keys(conn, "order_keys", ORDER_KEY, lambda seq: order_ids[seq], now_ms, ttl_ms)


def _keys(
    conn: Any, table: str, prefix: str, id_of: Callable[[int], str], now_ms: int, ttl_ms: int
) -> Iterator[tuple[str, Command]]:
    for key, fingerprint, ref, at_ms in conn.execute(f"SELECT key, fingerprint, ref, at_ms FROM {table}"):
        left = at_ms + ttl_ms - now_ms
        if left > 0:  # what is left of the key's time; an expired one is not moved
            yield table, _set(prefix + key, f"{id_of(ref)}:{fingerprint}", left)


def _set(name: str, value: str, ttl_ms: int) -> Command:
    return lambda pipe: pipe.set(name, value, px=ttl_ms)


def _hset(name: str, fields: dict[str, Any]) -> Command:
    return lambda pipe: pipe.hset(name, mapping=fields)


def _zadd(name: str, member: str, score: int) -> Command:
    return lambda pipe: pipe.zadd(name, {member: score})
