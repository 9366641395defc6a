"""Ticket's orders and purchase keys in Redis, shared by any number of Ticket replicas.

An order is recorded pending, standing on a hold at Vacancy, before that hold is confirmed,
and settled confirmed or void once Ticket learns the outcome (ticket/checkout.py has the
argument). Every operation is one Lua script, so replicas never interleave inside one:

- ``add`` with a key: if the key is new, store the key (for ``key_ttl``, Redis's ``PX``)
  and the order in one step; if another replica stored it first, answer that replica's
  record, so both confirm the same hold to the same order. A key whose order is void
  (nothing was sold to it) is bound to the new order instead: a retry buys anew.
- ``settle`` changes a pending order only: a settled order stays as it was settled, and a
  void order is kept (``get`` answers it as void, which Ticket never shows as sold).
- The pending orders are a sorted set by creation time besides the orders, so settling after
  a crash reads only them, oldest first.

The identity hash ``{ticketsys}:orders`` holds the random ``store_id`` made when the first
replica opened the store (so replicas on one Redis share it, and their keys at Vacancy) and
``peer``, the Vacancy store the orders were sold from. Every script checks the id this
process opened, so a Redis that lost its data answers ``StoreUnavailable``, not an empty
order book. Keys and layout: keys.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from string import Template
from typing import Any

from redis.commands.core import AsyncScript

from ticketsys.domain.errors import IdempotencyConflict, StoreRefused
from ticketsys.domain.models import Order, OrderRecord, OrderState
from ticketsys.storage.redis import Redis, describe, load, store_errors
from ticketsys.storage.redis.keys import (
    MOVING,
    ORDER,
    ORDER_KEY,
    ORDERS,
    ORDERS_PENDING,
    STOCK,
    is_id,
    new_id,
)
from ticketsys.storage.redis.ticks import TickBatch
from ticketsys.storage.window import DAY

log = logging.getLogger("ticketsys.storage")

Clock = Callable[[], float]

# How each state is stored: its name, so that redis-cli shows it.
_STORED = {state: state.name.lower() for state in OrderState}
_STATES = {name.encode(): state for state, name in _STORED.items()}
_LUA_STATES = {state.name: name for state, name in _STORED.items()}  # $PENDING, $CONFIRMED, $VOID


def order_lua(body: str) -> str:
    """``body`` with the order functions before it and the key prefixes and states filled in."""
    return Template(ORDER_FUNCTIONS + body).substitute(ORDER=ORDER, **_LUA_STATES)


def _lua(body: str) -> str:
    return _PRELUDE + order_lua(body)


# Every script starts here. KEYS: the identity hash[, more]; ARGV: the store id this process
# opened[, more].
_PRELUDE = """
local owner = redis.call('HGET', KEYS[1], 'store_id')
if not owner then
  return redis.error_reply('ticketsys: the order store is not initialised (Redis emptied, or data lost?)')
end
if owner ~= ARGV[1] then
  return redis.error_reply('ticketsys: the order store is now ' .. owner .. ', not the one opened')
end
"""

# What reads an order or a purchase key, for these scripts and the monolith's purchase (sale.py).
ORDER_FUNCTIONS = """
local function order_reply(id)
  local o = redis.call('HMGET', '$ORDER' .. id,
    'qty', 'created_ms', 'remaining', 'state', 'hold', 'expires_ms')
  if not o[1] then return {'none'} end
  return {'ok', id, o[1], o[2], o[3], o[4], o[5] or '', o[6] or ''}
end

-- The order a key was bound to, if it still is: (id, nil), (nil, 'conflict') or (nil, nil).
local function bound(key, fingerprint)
  local seen = redis.call('GET', key)
  if not seen then return nil, nil end
  local at = string.find(seen, ':', 1, true)
  if string.sub(seen, at + 1) ~= fingerprint then return nil, 'conflict' end
  return string.sub(seen, 1, at - 1), nil
end

-- What a purchase key answers before anything is bought: {'conflict'}, the order it is bound
-- to, or nil (a new key, or one whose order is void: nothing was sold to it, a retry buys anew).
local function answered(key, fingerprint)
  local id, problem = bound(key, fingerprint)
  if problem then return {problem} end
  if not id then return nil end
  local state = redis.call('HGET', '$ORDER' .. id, 'state')
  if not state then
    return redis.error_reply('ticketsys: order ' .. id .. ' of a purchase key is missing')
  end
  if state ~= '$VOID' then return order_reply(id) end
  return nil
end
"""


_GET = _lua("""
return order_reply(ARGV[2])
""")

# KEYS[2]: the order key. ARGV: fingerprint.
_RECALL = _lua("""
local id, problem = bound(KEYS[2], ARGV[2])
if problem then return {problem} end
if not id then return {'none'} end
local reply = order_reply(id)
if reply[1] ~= 'ok' then
  return redis.error_reply('ticketsys: order ' .. id .. ' of a purchase key is missing')
end
return reply
""")

# KEYS[2]: pending orders; KEYS[3]: the order key, if any. ARGV: now (ms), the new order's
# id, qty, the hold it stands on ('' none), its expires_ms ('' none), fingerprint, key ttl (ms).
_ADD = _lua("""
if KEYS[3] then
  local seen = answered(KEYS[3], ARGV[7])
  if seen then return seen end
end
local id, order = ARGV[3], '$ORDER' .. ARGV[3]
redis.call('HSET', order, 'qty', ARGV[4], 'created_ms', ARGV[2], 'remaining', 0, 'state', '$PENDING')
if ARGV[5] ~= '' then redis.call('HSET', order, 'hold', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', order, 'expires_ms', ARGV[6]) end
redis.call('ZADD', KEYS[2], ARGV[2], id)
if KEYS[3] then redis.call('SET', KEYS[3], id .. ':' .. ARGV[7], 'PX', ARGV[8]) end
return order_reply(id)
""")

# KEYS[2]: pending orders. ARGV: order id, the state to settle it in, the hold it was sold on
# ('' none), what was left after it ('' unknown).
_SETTLE = _lua("""
local order = '$ORDER' .. ARGV[2]
local state = redis.call('HGET', order, 'state')
if state == '$PENDING' then
  redis.call('HSET', order, 'state', ARGV[3])
  if ARGV[4] ~= '' then redis.call('HSET', order, 'hold', ARGV[4]) end
  if ARGV[5] ~= '' then redis.call('HSET', order, 'remaining', ARGV[5]) end
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return order_reply(ARGV[2])
""")

# KEYS[2]: pending orders. ARGV: how many.
_PENDING = _lua("""
local found = {}
for i, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1)) do
  found[i] = order_reply(id)
end
return found
""")

_PEER = _lua("""
return {'ok', redis.call('HGET', KEYS[1], 'peer')}
""")

# ARGV: the peer. Another replica may have recorded a different one first: never overwritten.
_SET_PEER = _lua("""
local peer = redis.call('HGET', KEYS[1], 'peer')
if peer and peer ~= ARGV[2] then return {'other', peer} end
redis.call('HSET', KEYS[1], 'peer', ARGV[2])
return {'ok'}
""")

# Finds or creates the store. KEYS: identity, the stock. ARGV: a new store id, now (ms). A
# stock hash without a kind is ticketsys 0.1's, whose orders this version does not read.
_OPEN = """
if redis.call('EXISTS', KEYS[3]) == 1 then return {'moving'} end
local found = redis.call('HMGET', KEYS[1], 'kind', 'store_id')
if found[1] then return {'open', found[1], found[2]} end
local stock = redis.call('HMGET', KEYS[2], 'kind', 'capacity')
if stock[2] and not stock[1] then return {'legacy'} end
redis.call('HSET', KEYS[1], 'kind', 'orders', 'store_id', ARGV[1], 'created_ms', ARGV[2])
return {'created', 'orders', ARGV[1]}
"""


class RedisOrders:
    def __init__(self, redis: Redis, *, clock: Clock = time.time, key_ttl: float = DAY) -> None:
        self._redis = redis
        self._batch = TickBatch(redis)  # the scripts of one tick: one pipeline
        self._clock = clock
        self._key_ttl_ms = max(1, round(key_ttl * 1000))
        self.store_id = ""
        self._open = redis.register_script(_OPEN)
        self._get = redis.register_script(_GET)
        self._recall = redis.register_script(_RECALL)
        self._add = redis.register_script(_ADD)
        self._settle = redis.register_script(_SETTLE)
        self._pending = redis.register_script(_PENDING)
        self._peer = redis.register_script(_PEER)
        self._set_peer = redis.register_script(_SET_PEER)
        self._scripts = [self._get, self._recall, self._add, self._settle, self._pending]
        self._scripts += [self._peer, self._set_peer]

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        with store_errors():
            status, *found = await self._open(keys=[ORDERS, STOCK, MOVING], args=[new_id(), self._now()])
            await load(self._redis, self._scripts)
        where = describe(self._redis)
        if status == b"moving":
            raise StoreRefused(f"{where}: a move-to-redis into this Redis did not finish: run it again")
        if status == b"legacy":
            raise StoreRefused(
                f"{where}: {STOCK} is the stock of ticketsys 0.1, whose orders this version does "
                "not read; start on an empty Redis database"
            )
        self.store_id = found[1].decode()
        pending = len(await self.pending(1000))
        log.info(
            "order store %s %s %s%s",
            where,
            "created" if status == b"created" else "opened",
            self.store_id,
            f": {pending} pending orders to settle" if pending else "",
        )

    async def close(self) -> None:
        await self._batch.aclose()
        await self._redis.aclose()

    def figures(self) -> dict[str, int]:
        return {}  # every count is a round trip (or a scan) of Redis: /status does without

    async def ping(self) -> None:
        await self._run(self._peer)

    # -- orders -------------------------------------------------------------------------------

    async def get(self, order_id: str) -> OrderRecord | None:
        if not is_id(order_id):
            return None
        return _record(await self._run(self._get, order_id))

    async def recall(self, key: str, fingerprint: str) -> OrderRecord | None:
        reply = await self._run(self._recall, fingerprint, keys=(ORDER_KEY + key,))
        if reply[0] == b"conflict":
            raise IdempotencyConflict(key)
        return _record(reply)

    async def add(
        self,
        qty: int,
        key: str | None,
        fingerprint: str,
        *,
        hold_id: str | None = None,
        expires_at: float | None = None,
    ) -> OrderRecord:
        reply = await self._run(
            self._add,
            self._now(),
            new_id(),
            qty,
            hold_id or "",
            "" if expires_at is None else round(expires_at * 1000),
            fingerprint,
            self._key_ttl_ms,
            keys=(ORDERS_PENDING,) if key is None else (ORDERS_PENDING, ORDER_KEY + key),
        )
        if reply[0] == b"conflict":
            raise IdempotencyConflict(key or "")
        return order_found(reply)  # the order it stored, or the one the key is bound to

    async def settle(
        self,
        record: OrderRecord,
        state: OrderState,
        *,
        hold_id: str | None = None,
        remaining: int | None = None,
    ) -> OrderRecord:
        if state is OrderState.PENDING:
            raise ValueError("an order is settled confirmed or void")
        order_id = record.order.order_id
        found = await self._run(
            self._settle,
            order_id,
            _STORED[state],
            hold_id or "",
            "" if remaining is None else remaining,
            keys=(ORDERS_PENDING,),
        )
        settled = _record(found)
        if settled is None:
            raise LookupError(f"order {order_id} is not in this store")
        return settled

    async def pending(self, limit: int) -> list[OrderRecord]:
        if limit < 1:
            return []
        replies = await self._run(self._pending, limit, keys=(ORDERS_PENDING,))
        return [record for record in map(_record, replies) if record is not None]

    # -- identity -----------------------------------------------------------------------------

    async def peer(self) -> str | None:
        peer = (await self._run(self._peer))[1]
        return None if peer is None else str(peer.decode())

    async def set_peer(self, store_id: str) -> None:
        reply = await self._run(self._set_peer, store_id)
        if reply[0] == b"other":
            raise StoreRefused(
                f"{describe(self._redis)}: the orders in this store were sold from stock store "
                f"{reply[1].decode()}, not {store_id}: refusing to sell from another sale"
            )

    # -- helpers ------------------------------------------------------------------------------

    async def _run(self, script: AsyncScript, *args: str | int, keys: tuple[str, ...] = ()) -> list[Any]:
        with store_errors():
            reply: list[Any] = await self._batch.run(script, [ORDERS, *keys], [self.store_id, *args])
        return reply

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def __repr__(self) -> str:
        return f"<RedisOrders {describe(self._redis)} {self.store_id or 'not open'}>"


def _record(reply: list[Any]) -> OrderRecord | None:
    return None if reply[0] == b"none" else order_found(reply)


def order_found(reply: list[Any]) -> OrderRecord:
    _, order_id, qty, created_ms, remaining, state, hold, expires_ms = reply
    order = Order(order_id.decode(), int(qty), int(created_ms) / 1000, int(remaining))
    expires_at = int(expires_ms) / 1000 if expires_ms else None
    return OrderRecord(order, _STATES[state], hold.decode() if hold else None, expires_at)
