"""The stock in Redis, shared by any number of Vacancy (or monolith) processes.

Every change is one Lua script, so the check and the change cannot interleave with another
client's: reserve is check-and-decrement, release the reverse bounded by the capacity,
restock raises both. A change with an idempotency key stores ``op:qty:remaining`` under the
key (with its TTL) in the same script, so a repeated key returns the first result from any
replica. Scripts are loaded once (``SCRIPT LOAD``) and run by ``EVALSHA``; redis-py reloads
them if the server lost its script cache (a restart).

All keys share the hash tag ``{ticketsys}``, so they live in one slot of a cluster: one
sale's stock is one hot key. README ("Scaling out") says what that limits and how the design
would shard the stock across keys if a sale outgrew one Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from ticketsys.domain.errors import IdempotencyConflict, OverRelease, StoreUnavailable
from ticketsys.domain.models import Reservation, remembered_for
from ticketsys.storage.redis import Redis, RedisError, never_sent

log = logging.getLogger("ticketsys.vacancy")

STOCK_KEY = b"{ticketsys}:stock"
KEY_PREFIX = b"{ticketsys}:stock-key:"

_SEED = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'capacity', ARGV[1], 'available', ARGV[1])
  return 1
end
return 0
"""

# Returns {1, available} on success, {0, available} when too few are left, {2, available,
# capacity} when a release would exceed the capacity, {3, seen} for a key already used.
_CHANGE = """
if #KEYS > 1 then
  local seen = redis.call('GET', KEYS[2])
  if seen then return {3, seen} end
end
local op, qty = ARGV[1], tonumber(ARGV[2])
local available = tonumber(redis.call('HGET', KEYS[1], 'available'))
if available == nil then return redis.error_reply('ticketsys: the stock is not initialised') end
if op == 'reserve' then
  if qty > available then return {0, available} end
  available = redis.call('HINCRBY', KEYS[1], 'available', -qty)
elseif op == 'release' then
  local capacity = tonumber(redis.call('HGET', KEYS[1], 'capacity'))
  if available + qty > capacity then return {2, available, capacity} end
  available = redis.call('HINCRBY', KEYS[1], 'available', qty)
else
  redis.call('HINCRBY', KEYS[1], 'capacity', qty)
  available = redis.call('HINCRBY', KEYS[1], 'available', qty)
end
if #KEYS > 1 then
  redis.call('SET', KEYS[2], op .. ':' .. qty .. ':' .. available, 'PX', ARGV[3])
end
return {1, available}
"""

# Undo the reserve of ARGV[1] tickets remembered under KEYS[2] (as _CHANGE stores it:
# 'reserve:qty:remaining') and forget it. {1, available}; {3, seen} if the key made another
# change. No key remembered: cancelled already, nothing to do.
_CANCEL = """
local available = tonumber(redis.call('HGET', KEYS[1], 'available'))
if available == nil then return redis.error_reply('ticketsys: the stock is not initialised') end
local seen = redis.call('GET', KEYS[2])
if not seen then return {1, available} end
local made = 'reserve:' .. ARGV[1] .. ':'
if string.sub(seen, 1, #made) ~= made then return {3, seen} end
redis.call('DEL', KEYS[2])
return {1, redis.call('HINCRBY', KEYS[1], 'available', ARGV[1])}
"""


class RedisStock:
    def __init__(self, redis: Redis, initial: int, key_ttl: float) -> None:
        self._redis = redis
        self.initial = initial
        self._key_ttl = key_ttl
        self._seed = redis.register_script(_SEED)
        self._change = redis.register_script(_CHANGE)
        self._cancel = redis.register_script(_CANCEL)

    async def open(self) -> None:
        created = await self._call(self._seed(keys=[STOCK_KEY], args=[self.initial]))
        # Load the change scripts now, so the first purchase does not pay for it.
        await self._call(self._redis.script_load(_CHANGE))
        await self._call(self._redis.script_load(_CANCEL))
        if created:
            log.info("created the stock in redis with %d tickets", self.initial)

    async def close(self) -> None:
        await self._redis.aclose()

    async def current(self) -> int:
        value = await self._call(self._redis.hget(STOCK_KEY, "available"))
        if value is None:
            raise StoreUnavailable("redis: the stock is not initialised")
        return int(value)

    async def reserve(self, qty: int, key: str | None = None) -> Reservation:
        return await self._run("reserve", qty, key)

    async def release(self, qty: int, key: str | None = None) -> Reservation:
        return await self._run("release", qty, key)

    async def cancel(self, qty: int, key: str) -> Reservation:
        keys = [STOCK_KEY, KEY_PREFIX + key.encode()]
        reply = await self._call(self._cancel(keys=keys, args=[qty]))
        if int(reply[0]) == 3:
            raise IdempotencyConflict(key)
        return Reservation(True, int(reply[1]))

    async def restock(self, qty: int) -> Reservation:
        return await self._run("restock", qty, None)

    async def _call(self, command: Awaitable[Any]) -> Any:
        try:
            return await command
        except RedisError as exc:
            # For a reserve, the outcome is unknown: it may have run. Only a keyed repeat is safe.
            raise StoreUnavailable(f"redis: {exc}", unsent=never_sent(exc)) from exc

    async def _run(self, op: str, qty: int, key: str | None) -> Reservation:
        keys = [STOCK_KEY] if key is None else [STOCK_KEY, KEY_PREFIX + key.encode()]
        ttl_ms = int(remembered_for(key, self._key_ttl) * 1000) if key is not None else 0
        reply = await self._call(self._change(keys=keys, args=[op, qty, ttl_ms]))
        status = int(reply[0])
        if status == 3:
            seen_op, seen_qty, remaining = reply[1].decode().split(":")
            if (seen_op, int(seen_qty)) != (op, qty):
                raise IdempotencyConflict(key or "")
            return Reservation(True, int(remaining))
        if status == 2:
            raise OverRelease(qty, int(reply[1]), int(reply[2]))
        return Reservation(status == 1, int(reply[1]))

    def __repr__(self) -> str:
        return f"<RedisStock {self._redis!r}>"
