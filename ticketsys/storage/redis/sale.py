"""The monolith's purchase on Redis: the stock sold and its order recorded by one script.

Where one process owns the stock and the orders and both are in one Redis, nothing needs a
hold to cross a process boundary: one script checks both stores' identities, answers a
purchase key already bound to an order, expires the holds that are due, sells ``qty`` and
writes the order confirmed, with its key. Redis runs it whole or not at all, so a purchase is
one round trip and a crash can strand nothing. Everything else (a buyer's holds, reading
orders, settling the pending orders a Ticket replica sharing this Redis left behind) goes
through the stock and order stores as in microservices: the records are the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ticketsys.domain.errors import IdempotencyConflict, SoldOut
from ticketsys.domain.models import OrderRecord
from ticketsys.storage.redis import Redis, load, store_errors
from ticketsys.storage.redis.keys import HOLDS_DUE, ORDER_KEY, ORDERS, STOCK, new_id
from ticketsys.storage.redis.orders import RedisOrders, order_found, order_lua
from ticketsys.storage.redis.stock import RedisStock, stock_lua
from ticketsys.storage.redis.ticks import TickBatch
from ticketsys.storage.window import DAY

Clock = Callable[[], float]

# KEYS: stock, holds due, the order store's identity[, the purchase key]. ARGV: the stock's
# store id, now (ms), the order store's id, qty, the new order's id, fingerprint, key ttl (ms).
_PURCHASE = stock_lua(
    order_lua("""
if redis.call('HGET', KEYS[3], 'store_id') ~= ARGV[3] then
  return redis.error_reply('ticketsys: the order store is not the one opened (Redis emptied, or data lost?)')
end
if KEYS[4] then
  local seen = answered(KEYS[4], ARGV[6])
  if seen then return seen end
end
local available, short = take_available(ARGV[4], 'sold')
if not available then return {'sold_out', short} end
redis.call('HINCRBY', stock, 'sold_direct', ARGV[4])
local id = ARGV[5]
redis.call('HSET', '$ORDER' .. id, 'qty', ARGV[4], 'created_ms', now, 'remaining', available,
  'state', '$CONFIRMED')
if KEYS[4] then redis.call('SET', KEYS[4], id .. ':' .. ARGV[6], 'PX', ARGV[7]) end
return order_reply(id)
""")
)


class RedisDirectSale:
    """``purchase`` for a process that opened both ``stock`` and ``orders`` on one Redis."""

    def __init__(
        self,
        redis: Redis,
        stock: RedisStock,
        orders: RedisOrders,
        *,
        clock: Clock = time.time,
        key_ttl: float = DAY,
    ) -> None:
        self._redis = redis
        self._batch = TickBatch(redis)  # the scripts of one tick: one pipeline
        self._stock = stock
        self._orders = orders
        self._clock = clock
        self._key_ttl_ms = max(1, round(key_ttl * 1000))
        self._purchase = redis.register_script(_PURCHASE)

    async def open(self) -> None:
        """After both stores have opened (their ids are in every call)."""
        with store_errors():
            await load(self._redis, [self._purchase])

    async def close(self) -> None:
        await self._batch.aclose()
        await self._redis.aclose()

    async def ping(self) -> None:
        with store_errors():
            await self._redis.ping()

    async def purchase(self, qty: int, key: str | None, fingerprint: str) -> OrderRecord:
        """The order sold now, confirmed; or the one ``key`` is bound to (a pending one, if a
        Ticket replica recorded it: the caller completes it as Ticket would)."""
        args = (self._stock.store_id, int(self._clock() * 1000), self._orders.store_id, qty, new_id())
        with store_errors():
            keys = [STOCK, HOLDS_DUE, ORDERS] if key is None else [STOCK, HOLDS_DUE, ORDERS, ORDER_KEY + key]
            reply = await self._batch.run(self._purchase, keys, [*args, fingerprint, self._key_ttl_ms])
        if reply[0] == b"sold_out":
            raise SoldOut(qty, int(reply[1]))
        if reply[0] == b"conflict":
            raise IdempotencyConflict(key or "")
        return order_found(reply)
