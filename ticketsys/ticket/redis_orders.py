"""Orders and purchase keys in Redis, so any Ticket replica can answer a retry.

Recording an order with a key is one script: if the key is new, store the key (with its TTL)
and the order; if another replica stored it first, return that replica's record. Both
replicas hold the same reservation (its key derives from the purchase key), so the stock was
taken once and exactly one order stands for it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson

from ticketsys.domain.errors import IdempotencyConflict, StoreUnavailable
from ticketsys.domain.models import Order
from ticketsys.storage.redis import Redis, RedisError, never_sent

ORDER_PREFIX = b"{ticketsys}:order:"
KEY_PREFIX = b"{ticketsys}:purchase-key:"

# KEYS: order, [purchase key]. ARGV: order json, key record, ttl ms. Returns the key's record,
# or nil for an order abandoned (below) before this write, which came too late, ran.
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if #KEYS > 1 then
  local seen = redis.call('GET', KEYS[2])
  if seen then return seen end
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[2]
"""

# KEYS: order, [purchase key]. ARGV: ttl ms. 1: nothing stands on the reservation, and the
# order id is taken by a tombstone so that a late _ADD of it records nothing; 0: an order
# stands (this one, or one another replica recorded for the same purchase key).
_ABANDON = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], 'abandoned', 'PX', ARGV[1])
return 1
"""
ABANDONED = b"abandoned"


class RedisOrderBook:
    def __init__(self, redis: Redis, key_ttl: float) -> None:
        self._redis = redis
        self._key_ttl_ms = int(key_ttl * 1000)
        self._add = redis.register_script(_ADD)
        self._abandon = redis.register_script(_ABANDON)

    async def open(self) -> None:
        await self._call(self._redis.script_load(_ADD))
        await self._call(self._redis.script_load(_ABANDON))

    async def close(self) -> None:
        await self._redis.aclose()

    async def get(self, order_id: str) -> Order | None:
        raw = await self._call(self._redis.get(ORDER_PREFIX + order_id.encode()))
        return None if raw is None or raw == ABANDONED else Order(**orjson.loads(raw))

    async def recall(self, key: str, fingerprint: str) -> Order | None:
        raw = await self._call(self._redis.get(KEY_PREFIX + key.encode()))
        return None if raw is None else await self._order_for(raw, key, fingerprint)

    async def add(self, order: Order, key: str | None, fingerprint: str) -> Order:
        record = orjson.dumps({"fingerprint": fingerprint, "order_id": order.order_id})
        raw = await self._call(
            self._add(keys=_keys(order, key), args=[orjson.dumps(asdict(order)), record, self._key_ttl_ms])
        )
        if raw is None:  # only ever a late write, whose caller has given up already
            raise StoreUnavailable(f"redis: order {order.order_id} was abandoned")
        if key is None or raw == record:
            return order
        return await self._order_for(raw, key, fingerprint)

    async def abandon(self, order: Order, key: str | None) -> bool:
        return bool(await self._call(self._abandon(keys=_keys(order, key), args=[self._key_ttl_ms])))

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def durable(self) -> None:
        """Redis acknowledges after its own persistence policy (AOF ``appendfsync``)."""

    async def _order_for(self, raw: bytes, key: str, fingerprint: str) -> Order:
        record = orjson.loads(raw)
        if record["fingerprint"] != fingerprint:
            raise IdempotencyConflict(key)
        found = await self.get(record["order_id"])
        if found is None:
            raise StoreUnavailable(f"redis: order {record['order_id']} of key {key!r} is missing")
        return found

    async def _call(self, command: Any) -> Any:
        try:
            return await command
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}", unsent=never_sent(exc)) from exc

    def __repr__(self) -> str:
        return f"<RedisOrderBook {self._redis!r}>"


def _keys(order: Order, key: str | None) -> list[bytes]:
    order_key = ORDER_PREFIX + order.order_id.encode()
    return [order_key] if key is None else [order_key, KEY_PREFIX + key.encode()]
