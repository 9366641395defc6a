"""Making Redis stores for the tests of the Redis engine: each on its own client, as each
replica has its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from ticketsys.storage.redis import Redis, connect
from ticketsys.storage.redis.orders import RedisOrders
from ticketsys.storage.redis.stock import RedisStock
from ticketsys.storage.window import DAY

from .engines import Clock

# Far above a loopback round trip, so that a burst of connects on a busy 2-core machine
# fails no test; the fault tests set REDIS_TIMEOUT's default (0.5 s) themselves.
TIMEOUT = 5.0


def client(url: str, timeout: float = TIMEOUT) -> Redis:
    return connect(url, timeout=timeout, connect_timeout=min(timeout, 1.0))


def stock(url: str, initial: int = 100, clock: Clock | None = None, key_ttl: float = DAY) -> RedisStock:
    return RedisStock(client(url), initial, clock=clock or Clock(), key_ttl=key_ttl)


def orders(url: str, clock: Clock | None = None, key_ttl: float = DAY) -> RedisOrders:
    return RedisOrders(client(url), clock=clock or Clock(), key_ttl=key_ttl)


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())
