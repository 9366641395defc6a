"""Vacancy's stock and holds in Redis, shared by any number of Vacancy (or monolith) replicas.

Every operation, reads included, is one Lua script (loaded at open, run by ``EVALSHA``), and
Redis runs one script at a time: a script's checks and its writes cannot interleave with any
other replica's, so no replica can oversell or break ``available + held + sold ==
capacity``, and a refused operation (sold out, a hold already confirmed) writes nothing.

Each script first expires the holds that are due, then decides: a hold past its
``expires_at`` never counts as held for any decision. The held holds are a sorted set by
expiry, so finding the due ones is a ``ZRANGEBYSCORE`` that reads only them: O(expired). A
background round each second does the same for a sale nobody asks.

Time is the caller's: each script gets "now" from the replica that runs it (ms since the
epoch), so a test can drive it by hand. Replicas therefore decide expiry by their own clocks:
one whose clock runs ahead expires holds that early (never late: a hold once expired stays
so), which NTP keeps to milliseconds. Idempotency keys, instead, live ``key_ttl`` by
Redis's own clock (``PX``): a day, where skew does not matter.

The stock hash carries the store's identity (a random ``store_id``, kind, creation time,
initial capacity), made when ``open`` creates the store; ``INITIAL_STOCK`` seeds only that.
Every script checks the id it was opened on, so a Redis that lost its data (or was emptied
and seeded anew by someone else) answers ``StoreUnavailable``, never a sale from a reset
stock. Keys and layout: keys.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from string import Template
from typing import Any

from redis.commands.core import AsyncScript

from ticketsys.domain.errors import (
    HoldNotFound,
    HoldUnavailable,
    IdempotencyConflict,
    InvalidQuantity,
    OverRelease,
    SoldOut,
    StoreRefused,
)
from ticketsys.domain.models import MAX_STOCK, Hold, HoldState, Stock, sale_fingerprint
from ticketsys.storage.redis import Redis, describe, load, store_errors
from ticketsys.storage.redis.keys import HOLD, HOLD_KEY, HOLDS_DUE, MOVING, ORDERS, STOCK, is_id, new_id
from ticketsys.storage.redis.ticks import TickBatch
from ticketsys.storage.window import DAY

log = logging.getLogger("ticketsys.storage")

Clock = Callable[[], float]

SWEEP_EVERY = 1.0  # seconds between background expiry rounds
# Due holds are read this many at a time, so one script's Lua table stays small however
# many holds came due together (after every replica was down, say).
EXPIRY_BATCH = 256


def stock_lua(body: str) -> str:
    """``body`` after the prelude every stock script starts with (monolith purchases too: sale.py)."""
    return Template(_PRELUDE + body).substitute(HOLD=HOLD, BATCH=EXPIRY_BATCH)


# Every operation's script starts here. KEYS: stock, holds-due[, more]; ARGV: the store id
# this process opened, now (ms)[, more]. Timestamps are written from ARGV strings; the only
# numbers Lua formats are counts, at most MAX_STOCK (10^12), which its "%.14g" prints exactly.
_PRELUDE = """
local stock, due, now = KEYS[1], KEYS[2], ARGV[2]
local owner = redis.call('HGET', stock, 'store_id')
if not owner then
  return redis.error_reply('ticketsys: the stock is not initialised (Redis emptied, or data lost?)')
end
if owner ~= ARGV[1] then
  return redis.error_reply('ticketsys: the stock is now store ' .. owner .. ', not the one opened')
end

local function hold_reply(id)
  local h = redis.call('HMGET', '$HOLD' .. id, 'qty', 'expires_ms', 'state', 'remaining', 'order')
  if not h[1] then return {'not_found'} end
  return {'ok', id, h[1], h[2], h[3], h[4], h[5]}
end

-- The answer already given under an idempotency key (its value: "<hold id>:<fingerprint>"),
-- a conflict if the key came with another body, or nil for a key not seen.
local function recall_hold(key, fingerprint)
  local seen = redis.call('GET', key)
  if not seen then return nil end
  local at = string.find(seen, ':', 1, true)
  if string.sub(seen, at + 1) ~= fingerprint then return {'conflict'} end
  return hold_reply(string.sub(seen, 1, at - 1))
end

local function take(qty, from, into)
  redis.call('HINCRBY', stock, from, -qty)
  return redis.call('HINCRBY', stock, into, qty)
end

-- qty moved from 'available' into ``into`` (every way a sale or a hold begins): what is left
-- available; or nil and what there is, when that is less than qty (nothing moved).
local function take_available(qty, into)
  qty = tonumber(qty)
  local available = redis.call('HGET', stock, 'available')
  if qty > tonumber(available) then return nil, available end
  take(qty, 'available', into)
  return tonumber(available) - qty
end

local expired, freed = 0, 0
repeat
  local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, $BATCH)
  for _, id in ipairs(ids) do
    local hold = '$HOLD' .. id
    freed = freed + tonumber(redis.call('HGET', hold, 'qty'))
    redis.call('HSET', hold, 'state', 'expired')
  end
  if #ids > 0 then redis.call('ZREM', due, unpack(ids)) end
  expired = expired + #ids
until #ids < $BATCH
if freed > 0 then take(freed, 'held', 'available') end
"""

_STOCK = stock_lua("""
return {'ok', unpack(redis.call('HMGET', stock, 'available', 'held', 'sold', 'capacity'))}
""")

_EXPIRE = stock_lua("""
return {'ok', expired}
""")

_GET_HOLD = stock_lua("""
return hold_reply(ARGV[3])
""")

# KEYS[3]: the hold key, if any. ARGV: qty, expires (ms), the new hold's id, fingerprint, key ttl (ms).
_HOLD = stock_lua("""
if KEYS[3] then
  local seen = recall_hold(KEYS[3], ARGV[6])
  if seen then return seen end
end
local available, short = take_available(ARGV[3], 'held')
if not available then return {'sold_out', short} end
local id = ARGV[5]
redis.call('HSET', '$HOLD' .. id, 'qty', ARGV[3], 'expires_ms', ARGV[4], 'state', 'held',
  'remaining', available)
redis.call('ZADD', due, ARGV[4], id)
if KEYS[3] then redis.call('SET', KEYS[3], id .. ':' .. ARGV[6], 'PX', ARGV[7]) end
return {'ok', id, ARGV[3], ARGV[4], 'held', available, false}
""")

# A hold sold at once to an order, before its expiry (StockStore.sell_hold). KEYS[3]: the
# hold key. ARGV: qty, expires (ms), the new hold's id, fingerprint, key ttl (ms), order id.
_SELL_HOLD = stock_lua("""
local seen = recall_hold(KEYS[3], ARGV[6])
if seen then return seen end
if tonumber(ARGV[4]) <= tonumber(now) then return {'expired'} end
local available, short = take_available(ARGV[3], 'sold')
if not available then return {'sold_out', short} end
local id = ARGV[5]
redis.call('HSET', '$HOLD' .. id, 'qty', ARGV[3], 'expires_ms', ARGV[4], 'state', 'confirmed',
  'remaining', available, 'order', ARGV[8])
redis.call('SET', KEYS[3], id .. ':' .. ARGV[6], 'PX', ARGV[7])
return {'ok', id, ARGV[3], ARGV[4], 'confirmed', available, ARGV[8]}
""")

# ARGV: hold id, order id.
_CONFIRM = stock_lua("""
local hold = '$HOLD' .. ARGV[3]
local h = redis.call('HMGET', hold, 'qty', 'expires_ms', 'state', 'remaining', 'order')
if not h[1] then return {'not_found'} end
if h[3] == 'held' then
  redis.call('HSET', hold, 'state', 'confirmed', 'order', ARGV[4])
  redis.call('ZREM', due, ARGV[3])
  take(tonumber(h[1]), 'held', 'sold')
elseif h[3] ~= 'confirmed' or h[5] ~= ARGV[4] then
  return {'unavailable', h[3], h[5]}
end
return {'ok', ARGV[3], h[1], h[2], 'confirmed', h[4], ARGV[4]}
""")

# ARGV: hold id.
_RELEASE = stock_lua("""
local hold = '$HOLD' .. ARGV[3]
local h = redis.call('HMGET', hold, 'qty', 'state', 'order')
if not h[1] then return {'not_found'} end
if h[2] == 'confirmed' then return {'unavailable', h[2], h[3]} end
if h[2] == 'held' then
  redis.call('HSET', hold, 'state', 'released')
  redis.call('ZREM', due, ARGV[3])
  take(tonumber(h[1]), 'held', 'available')
end
return {'ok', redis.call('HGET', stock, 'available')}
""")

# ARGV: qty.
_SELL = stock_lua("""
local available, short = take_available(ARGV[3], 'sold')
if not available then return {'sold_out', short} end
redis.call('HINCRBY', stock, 'sold_direct', ARGV[3])
return {'ok', available}
""")

# Only what was sold outside holds: the tickets of a confirmed hold stand on an order.
_UNSELL = stock_lua("""
local s = redis.call('HMGET', stock, 'available', 'sold_direct')
local direct = tonumber(s[2]) or 0
if tonumber(ARGV[3]) > direct then return {'over_release', s[1], direct} end
redis.call('HINCRBY', stock, 'sold', '-' .. ARGV[3])
redis.call('HINCRBY', stock, 'sold_direct', '-' .. ARGV[3])
return {'ok', redis.call('HINCRBY', stock, 'available', ARGV[3])}
""")

# ARGV: qty, MAX_STOCK.
_RESTOCK = stock_lua("""
if tonumber(redis.call('HGET', stock, 'capacity')) + tonumber(ARGV[3]) > tonumber(ARGV[4]) then
  return {'too_many'}
end
redis.call('HINCRBY', stock, 'capacity', ARGV[3])
return {'ok', redis.call('HINCRBY', stock, 'available', ARGV[3])}
""")

# Finds or creates the store. KEYS: stock, the order store's identity. ARGV: a new store id,
# now (ms), the initial stock. A stock hash without a kind is ticketsys 0.1's (no holds, no
# identity); orders with a peer but no stock mean this Redis lost the stock their tickets
# were sold from: neither is seeded over.
_OPEN = """
if redis.call('EXISTS', KEYS[3]) == 1 then return {'moving'} end
local found = redis.call('HMGET', KEYS[1], 'kind', 'store_id')
if found[1] then return {'open', found[1], found[2]} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'legacy'} end
local peer = redis.call('HGET', KEYS[2], 'peer')
if peer then return {'orphaned', peer} end
redis.call('HSET', KEYS[1], 'kind', 'stock', 'store_id', ARGV[1], 'created_ms', ARGV[2],
  'initial', ARGV[3], 'capacity', ARGV[3], 'available', ARGV[3], 'held', 0, 'sold', 0, 'sold_direct', 0)
return {'created', 'stock', ARGV[1]}
"""

_OK = b"ok"


class RedisStock:
    def __init__(self, redis: Redis, initial: int, *, clock: Clock = time.time, key_ttl: float = DAY) -> None:
        self._redis = redis
        self._batch = TickBatch(redis)  # the scripts of one tick: one pipeline
        self.initial = initial
        self._clock = clock
        self._key_ttl_ms = max(1, round(key_ttl * 1000))
        self.store_id = ""
        self._open = redis.register_script(_OPEN)
        self._stock = redis.register_script(_STOCK)
        self._expire = redis.register_script(_EXPIRE)
        self._get_hold = redis.register_script(_GET_HOLD)
        self._hold = redis.register_script(_HOLD)
        self._sell_hold = redis.register_script(_SELL_HOLD)
        self._confirm = redis.register_script(_CONFIRM)
        self._release = redis.register_script(_RELEASE)
        self._sell = redis.register_script(_SELL)
        self._unsell = redis.register_script(_UNSELL)
        self._restock = redis.register_script(_RESTOCK)
        self._scripts = [
            self._stock,
            self._expire,
            self._get_hold,
            self._hold,
            self._sell_hold,
            self._confirm,
        ]
        self._scripts += [self._release, self._sell, self._unsell, self._restock]
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        with store_errors():
            args: list[str | int] = [new_id(), self._now(), self.initial]
            status, *found = await self._open(keys=[STOCK, ORDERS, MOVING], args=args)
            await load(self._redis, self._scripts)
        where = describe(self._redis)
        if status == b"moving":
            raise StoreRefused(f"{where}: a move-to-redis into this Redis did not finish: run it again")
        if status == b"legacy":
            raise StoreRefused(
                f"{where}: {STOCK} is the stock of ticketsys 0.1 (no holds, no store identity), "
                "which this version does not read; start on an empty Redis database"
            )
        if status == b"orphaned":
            raise StoreRefused(
                f"{where}: {STOCK} is missing, but the orders in this Redis were sold from stock "
                f"store {found[0].decode()}: refusing to start a new sale over them (restore "
                "Redis's data, or delete the orders to start anew)"
            )
        self.store_id = found[1].decode()
        stock = await self.stock()
        log.info(
            "stock store %s %s %s: %d available, %d held, %d sold of %d",
            where,
            "created" if status == b"created" else "opened",
            self.store_id,
            stock.available,
            stock.held,
            stock.sold,
            stock.capacity,
        )
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self._batch.aclose()
        await self._redis.aclose()

    def figures(self) -> dict[str, int]:
        return {}  # every count is a round trip (or a scan) of Redis: /status does without

    async def ping(self) -> None:
        await self.stock()

    async def _sweep_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            try:
                await self.expire()
            except Exception as exc:  # the next round tries again; requests report it themselves
                if not failing:
                    log.warning("expiring the holds due in %s failed: %s", describe(self._redis), exc)
                failing = True
            else:
                failing = False

    # -- reads --------------------------------------------------------------------------------

    async def stock(self) -> Stock:
        _, available, held, sold, capacity = await self._run(self._stock)
        return Stock(int(available), int(held), int(sold), int(capacity))

    async def available(self) -> int:
        return (await self.stock()).available

    async def get_hold(self, hold_id: str) -> Hold:
        if not is_id(hold_id):
            raise HoldNotFound(hold_id)
        return _hold(await self._run(self._get_hold, hold_id), hold_id)

    # -- holds --------------------------------------------------------------------------------

    async def hold(self, qty: int, ttl: float, key: str | None = None, fingerprint: str = "") -> Hold:
        now = self._now()
        expires = now + max(1, round(ttl * 1000))
        hold_id = new_id()
        reply = await self._run(
            self._hold,
            qty,
            expires,
            hold_id,
            fingerprint,
            self._key_ttl_ms,
            now=now,
            keys=() if key is None else (HOLD_KEY + key,),
        )
        if reply[0] == b"sold_out":
            raise SoldOut(qty, int(reply[1]))
        if reply[0] == b"conflict":
            raise IdempotencyConflict(key or "")
        return _hold(reply, hold_id)

    async def sell_hold(self, qty: int, expires_at: float, key: str, order_id: str) -> Hold:
        now = self._now()
        hold_id = new_id()
        fingerprint = sale_fingerprint(qty, order_id)
        args = (qty, round(expires_at * 1000), hold_id, fingerprint, self._key_ttl_ms, order_id)
        reply = await self._run(self._sell_hold, *args, now=now, keys=(HOLD_KEY + key,))
        if reply[0] == b"sold_out":
            raise SoldOut(qty, int(reply[1]))
        if reply[0] == b"conflict":
            raise IdempotencyConflict(key)
        if reply[0] == b"expired":
            raise HoldUnavailable("", HoldState.EXPIRED)
        return _hold(reply, hold_id)

    async def sell_holds(self, sales: list[tuple[int, float, str, str]]) -> list[Hold | Exception]:
        # Called in one tick, the scripts leave in one pipeline (ticks.py): one round trip.
        answers = await asyncio.gather(*(self.sell_hold(*sale) for sale in sales), return_exceptions=True)
        for answer in answers:
            if not isinstance(answer, Hold | Exception):  # a cancellation: not an answer
                raise answer
        return answers  # type: ignore[return-value]  # checked above

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        if not is_id(hold_id):
            raise HoldNotFound(hold_id)
        return _hold(await self._run(self._confirm, hold_id, order_id), hold_id)

    async def release(self, hold_id: str) -> int:
        if not is_id(hold_id):
            raise HoldNotFound(hold_id)
        reply = await self._run(self._release, hold_id)
        if reply[0] != _OK:
            _hold(reply, hold_id)  # raises what the reply says
        return int(reply[1])

    async def expire(self) -> int:
        return int((await self._run(self._expire))[1])

    # -- direct changes ----------------------------------------------------------------------

    async def sell(self, qty: int) -> int:
        reply = await self._run(self._sell, qty)
        if reply[0] == b"sold_out":
            raise SoldOut(qty, int(reply[1]))
        return int(reply[1])

    async def unsell(self, qty: int) -> int:
        reply = await self._run(self._unsell, qty)
        if reply[0] == b"over_release":
            raise OverRelease(qty, int(reply[1]), int(reply[2]))
        return int(reply[1])

    async def restock(self, qty: int) -> int:
        reply = await self._run(self._restock, qty, MAX_STOCK)
        if reply[0] == b"too_many":
            raise InvalidQuantity(f"restocking {qty} would put more than {MAX_STOCK} tickets on sale")
        return int(reply[1])

    # -- helpers ------------------------------------------------------------------------------

    async def _run(
        self, script: AsyncScript, *args: str | int, now: int | None = None, keys: tuple[str, ...] = ()
    ) -> list[Any]:
        with store_errors():
            reply: list[Any] = await self._batch.run(
                script,
                [STOCK, HOLDS_DUE, *keys],
                [self.store_id, self._now() if now is None else now, *args],
            )
        return reply

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def __repr__(self) -> str:
        return f"<RedisStock {describe(self._redis)} {self.store_id or 'not open'}>"


def _hold(reply: list[Any], hold_id: str) -> Hold:
    """The hold a script answered with, or the error it stands for."""
    status = reply[0]
    if status == b"not_found":
        raise HoldNotFound(hold_id)
    if status == b"unavailable":
        _, state, order = reply
        raise HoldUnavailable(hold_id, HoldState(state.decode()), None if order is None else order.decode())
    _, found_id, qty, expires_ms, state, remaining, order = reply
    return Hold(
        found_id.decode(),
        int(qty),
        int(expires_ms) / 1000,
        HoldState(state.decode()),
        int(remaining),
        None if order is None else order.decode(),
    )
