"""The stock engines under test, each made with a hand-driven clock, opened and reopened alike.

An ``Engine`` makes a store of one kind (``stock``: Vacancy's, or ``sale``: the monolith's)
that is opened and closed on a given event loop; ``reopen`` closes it and opens a new object
on the same data, as a restart does (the memory engine keeps its object: it has no restart).

The Redis engine shares one redis-server, started at its first use and killed at exit; a
store in a directory it has not seen yet starts on an emptied server (each directory is a
new store), and reopening one is a new client on the same server.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.redis_server import RedisServer
from ticketsys.storage.fsync import FsyncPolicy
from ticketsys.storage.memory import MemorySale, MemoryStock
from ticketsys.storage.redis import connect
from ticketsys.storage.redis.stock import RedisStock
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.sale import SqliteSale
from ticketsys.storage.sqlite.stock import SqliteStock


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Engine:
    name: str
    kind: str  # "stock" or "sale"
    make: Callable[[int, Clock, Path], Any]  # (initial, clock, a directory of its own)
    restarts: bool  # whether reopening reads the data back (memory: nothing to read)

    def open(self, loop: asyncio.AbstractEventLoop, initial: int, clock: Clock, directory: Path) -> Any:
        store = self.make(initial, clock, directory)
        loop.run_until_complete(store.open())
        return store

    def reopen(
        self, loop: asyncio.AbstractEventLoop, store: Any, initial: int, clock: Clock, directory: Path
    ) -> Any:
        if not self.restarts:
            return store
        loop.run_until_complete(store.close())
        return self.open(loop, initial, clock, directory)


def _sqlite_stock(initial: int, clock: Clock, directory: Path) -> SqliteStock:
    return SqliteStock(Database(directory / "stock.db", "stock", FsyncPolicy.NO), initial, clock=clock)


def _sqlite_sale(initial: int, clock: Clock, directory: Path) -> SqliteSale:
    return SqliteSale(Database(directory / "sale.db", "sale", FsyncPolicy.NO), initial, clock=clock)


class _SharedRedis:
    def __init__(self) -> None:
        self.server: RedisServer | None = None
        self.directory: Path | None = None  # the store the server holds now

    def url_for(self, directory: Path) -> str:
        if self.server is None:
            self.server = RedisServer(Path(tempfile.mkdtemp(prefix="ticketsys-redis-")))
            self.server.start()
            atexit.register(self.stop)
        if directory != self.directory:
            self.server.flush()
            self.directory = directory
        return self.server.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.kill()
            shutil.rmtree(self.server.directory, ignore_errors=True)


_redis = _SharedRedis()


def _redis_stock(initial: int, clock: Clock, directory: Path) -> RedisStock:
    # Timeouts far above a loopback round trip: a busy CI machine must not fail a step.
    client = connect(_redis.url_for(directory), timeout=5.0, connect_timeout=1.0)
    return RedisStock(client, initial, clock=clock)


ENGINES = [
    Engine("memory-stock", "stock", lambda initial, clock, _: MemoryStock(initial, clock=clock), False),
    Engine("memory-sale", "sale", lambda initial, clock, _: MemorySale(initial, clock=clock), False),
    Engine("sqlite-stock", "stock", _sqlite_stock, True),
    Engine("sqlite-sale", "sale", _sqlite_sale, True),
    Engine("redis-stock", "stock", _redis_stock, True),
]
