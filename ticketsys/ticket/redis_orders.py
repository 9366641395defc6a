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
from ticketsys.storage.redis import Redis, RedisError

ORDER_PREFIX = b"{ticketsys}:order:"
KEY_PREFIX = b"{ticketsys}:purchase-key:"

# KEYS: order, [purchase key]. ARGV: order json, key record, ttl ms. Returns the key's record.
_ADD = """
if #KEYS > 1 then
  local seen = redis.call('GET', KEYS[2])
  if seen then return seen end
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[2]
"""


class RedisOrderBook:
    def __init__(self, redis: Redis, key_ttl: float) -> None:
        self._redis = redis
        self._key_ttl_ms = int(key_ttl * 1000)
        self._add = redis.register_script(_ADD)

    async def open(self) -> None:
        try:
            await self._redis.script_load(_ADD)
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    async def close(self) -> None:
        await self._redis.aclose()

    async def get(self, order_id: str) -> Order | None:
        raw = await self._call(self._redis.get(ORDER_PREFIX + order_id.encode()))
        return None if raw is None else Order(**orjson.loads(raw))

    async def recall(self, key: str, fingerprint: str) -> Order | None:
        raw = await self._call(self._redis.get(KEY_PREFIX + key.encode()))
        return None if raw is None else await self._order_for(raw, key, fingerprint)

    async def add(self, order: Order, key: str | None, fingerprint: str) -> Order:
        keys = [ORDER_PREFIX + order.order_id.encode()]
        if key is not None:
            keys.append(KEY_PREFIX + key.encode())
        record = orjson.dumps({"fingerprint": fingerprint, "order_id": order.order_id})
        raw = await self._call(
            self._add(keys=keys, args=[orjson.dumps(asdict(order)), record, self._key_ttl_ms])
        )
        if key is None or raw == record:
            return order
        return await self._order_for(raw, key, fingerprint)

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
            raise StoreUnavailable(f"redis: {exc}") from exc

    def __repr__(self) -> str:
        return f"<RedisOrderBook {self._redis!r}>"
