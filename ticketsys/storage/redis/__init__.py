"""A Redis connection pool for stores that live in Redis, and the errors it may raise.

redis-py retries failed commands by default (three times, on connection errors and
timeouts). A store command that timed out may have run, and repeating a non-idempotent one
could apply it twice, so retries are off here: callers repeat only what is safe to repeat.
"""

from __future__ import annotations

import re

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError
from redis.maint_notifications import MaintNotificationsConfig

__all__ = ["Redis", "RedisError", "connect", "never_sent"]

# redis-py's messages for the two failures that happen before a command is written: no free
# connection in the pool within the timeout, and a connection that could not be opened.
_UNSENT = re.compile(r"No connection available|Error .*connecting to")


def never_sent(exc: RedisError) -> bool:
    """Whether the command that failed with ``exc`` surely never reached Redis; if not, a
    timeout or a dropped connection leaves it unknown whether it ran."""
    return isinstance(exc, ConnectionError) and _UNSENT.match(str(exc)) is not None


def connect(url: str, *, timeout: float, connect_timeout: float, max_connections: int = 32) -> Redis:
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
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes both
