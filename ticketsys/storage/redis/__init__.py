"""The Redis engine: a connection pool for the stores that live in Redis, and its one error
boundary.

Every command ends within ``REDIS_TIMEOUT``, whatever the time goes to: redis-py's own
timeouts are per step (waiting for a pooled connection, connecting, its ``CLIENT SETINFO``
hand-shake, each read), so behind a proxy that trickles bytes a command answered 503 only after
twice the timeout. One deadline around the whole command bounds them all.

redis-py retries failed commands by default (three times, on connection errors and
timeouts). A store command that timed out may have run, and repeating a non-idempotent one
could apply it twice, so retries are off here: callers repeat only what is safe to repeat.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    BusyLoadingError,
    ConnectionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError,
)
from redis.maint_notifications import MaintNotificationsConfig

from ticketsys.domain.errors import StoreUnavailable

__all__ = ["Redis", "RedisError", "connect", "describe", "load", "store_errors"]


# Told how long each command took: ("redis", the command's name, seconds).
Timer = Callable[[str, str, float], None]


class TimedRedis(Redis):
    """A client whose every command (scripts included: they are EVALSHA) ends within
    ``deadline`` seconds, and that reports each one's round trip to ``timer``."""

    timer: Timer | None = None
    deadline: float = 0.5

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        began = time.perf_counter()
        try:
            # Cancelled mid-command, redis-py drops that connection: no late answer is read
            # as the next command's.
            async with asyncio.timeout(self.deadline):
                return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except builtins.TimeoutError as exc:
            raise TimeoutError(f"no answer within {self.deadline:g} s") from exc
        finally:
            timer = self.timer
            if timer is not None:
                name = args[0] if args else "?"
                seconds = time.perf_counter() - began
                timer("redis", name.decode() if isinstance(name, bytes) else str(name), seconds)


def connect(
    url: str, *, timeout: float, connect_timeout: float, max_connections: int = 32, timer: Timer | None = None
) -> Redis:
    """A client on its own pool for ``redis://`` or ``rediss://`` ``url``; connects lazily.

    The pool is bounded and blocking: a burst of commands waits (up to ``timeout``) for one of
    ``max_connections`` instead of opening a connection each, which under a burst of buyers
    would mean hundreds of simultaneous connects, each racing ``connect_timeout``. Each command
    holds its connection only for one round trip (~50 us on loopback), so 32 serve tens of
    thousands of commands a second.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        # Maintenance notifications ("auto" by default since redis-py 7) make the pool skip its
        # check for a connection the server closed, so after a Redis restart every pooled
        # connection would fail one command (a 503 with Redis back). Redis Enterprise's
        # rebinding notices are of no use here.
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    # The client owns the pool: aclose() closes both. (from_pool makes a ``cls``.)
    client = cast(TimedRedis, TimedRedis.from_pool(pool))
    client.timer = timer
    client.deadline = timeout
    return client


def describe(redis: Redis) -> str:
    """Where ``redis`` connects, for messages (no password)."""
    kwargs = redis.connection_pool.connection_kwargs
    place = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
    return f"redis://{place}/{kwargs.get('db', 0)}"


async def load(redis: Redis, scripts: Iterable[AsyncScript]) -> None:
    """Load ``scripts`` at start-up, so that no request pays for it. (Each is run by
    ``EVALSHA``; should Redis lose its script cache, a restart, redis-py loads it again.)"""
    for script in scripts:
        await redis.script_load(script.script)


# What each redis-py error means for a store, most specific first (the first match wins). A
# command that failed after it was sent may still have run: no StoreUnavailable from here
# claims otherwise (``unsent`` stays False), and nothing here depends on knowing.
_MEANINGS: tuple[tuple[type[RedisError], str], ...] = (
    (TimeoutError, "timed out"),
    (BusyLoadingError, "is loading its data"),
    (ConnectionError, "is unreachable"),
    (ReadOnlyError, "is a read-only replica"),
    (OutOfMemoryError, "is out of memory"),
    (ResponseError, "refused the command"),
    (RedisError, "failed"),
)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Every redis-py error raised inside becomes ``StoreUnavailable`` (as httpcore's
    ``map_exceptions``): the stores' callers never import redis-py."""
    try:
        yield
    except RedisError as exc:
        meaning = next(meaning for kind, meaning in _MEANINGS if isinstance(exc, kind))
        raise StoreUnavailable(f"redis {meaning}: {exc}") from exc
    except RuntimeError as exc:
        # uvloop's transport closed under redis-py as it writes (Redis died as it connected):
        # "unable to perform operation on <TCPTransport closed=True ...>; the handler is closed"
        if "handler is closed" not in str(exc):
            raise
        raise StoreUnavailable(f"redis is unreachable: {exc}") from exc
