"""The Redis stores when Redis dies (SIGKILL), freezes (SIGSTOP) mid-use or answers through a
proxy that trickles bytes: every call gives ``StoreUnavailable`` within about REDIS_TIMEOUT (no
hang, no retry, no other error), and the stores serve again, with their data, once Redis is
back, from their first call on."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import RedisServer, running_redis
from ticketsys.domain.errors import StoreUnavailable
from ticketsys.domain.models import HoldState, OrderState, Stock
from ticketsys.storage.redis.orders import RedisOrders
from ticketsys.storage.redis.stock import RedisStock

from .engines import Clock
from .redis_stores import client

REDIS_TIMEOUT = 0.5  # the default
# Each call below is one command: it fails at once (refused) or after one REDIS_TIMEOUT
# (frozen). The margin is for a shared 2-core machine; a retry (redis-py's default, turned off
# by connect()) or a hang would take at least twice the timeout.
BOUND = REDIS_TIMEOUT + 0.4

pytestmark = pytest.mark.slow


async def _opened(server: RedisServer, clock: Clock, url: str = "") -> tuple[RedisStock, RedisOrders]:
    stock = RedisStock(client(url or server.url, REDIS_TIMEOUT), 100, clock=clock)
    orders = RedisOrders(client(url or server.url, REDIS_TIMEOUT), clock=clock)
    await stock.open()
    await orders.open()
    return stock, orders


async def _each_unavailable_promptly(
    stock: RedisStock, orders: RedisOrders, hold_id: str, order_id: str
) -> None:
    calls: list[Awaitable[Any]] = [
        stock.hold(1, 30),
        stock.confirm(hold_id, order_id),
        stock.stock(),
        stock.ping(),
        orders.add(1, "k2", "qty=1", hold_id=hold_id),
        orders.get(order_id),
        orders.ping(),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await call
        assert time.monotonic() - started < BOUND


def test_redis_killed_then_restarted(tmp_path: Path) -> None:
    async def main(server: RedisServer) -> None:
        stock, orders = await _opened(server, Clock())
        hold = await stock.hold(5, 30)
        record = await orders.add(5, "k", "qty=5", hold_id=hold.hold_id)
        await asyncio.gather(*(stock.stock() for _ in range(8)))  # 8 pooled connections
        server.kill()
        await _each_unavailable_promptly(stock, orders, hold.hold_id, record.order.order_id)
        server.start()  # same port, same directory: its append-only file has every write
        # The first calls succeed, on pooled connections that the outage left dead too.
        assert await asyncio.gather(*(stock.stock() for _ in range(8))) == [Stock(95, 5, 0, 100)] * 8
        await stock.confirm(hold.hold_id, record.order.order_id)
        assert await orders.recall("k", "qty=5") == record
        await orders.settle(record, OrderState.CONFIRMED)
        assert await stock.stock() == Stock(95, 0, 5, 100)
        await stock.close()
        await orders.close()

    with running_redis(tmp_path) as server:
        asyncio.run(main(server))


def test_redis_frozen_then_resumed(tmp_path: Path) -> None:
    async def main(server: RedisServer) -> None:
        assert server.process is not None
        clock = Clock()
        stock, orders = await _opened(server, clock)
        await stock.hold(5, 30)
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            await _each_unavailable_promptly(stock, orders, "0" * 32, "1" * 32)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        # The hold sent during the freeze may have run when Redis resumed: nobody knows its
        # id, but it expires by itself, like every hold whose answer was lost.
        resumed = await stock.stock()
        assert resumed.held in (5, 6) and resumed.available + resumed.held == 100
        clock.advance(30)
        assert await stock.stock() == Stock(100, 0, 0, 100)
        assert (await stock.hold(1, 30)).state is HoldState.HELD
        await stock.close()
        await orders.close()

    with running_redis(tmp_path) as server:
        asyncio.run(main(server))


class SlowProxy:
    """A TCP proxy to Redis that holds every chunk of Redis's answers ``delay`` seconds, while
    ``slow``: each round trip stays under REDIS_TIMEOUT, but a new connection makes two (redis-py's
    hand-shake, then the command)."""

    def __init__(self, port: int, delay: float) -> None:
        self.port, self.delay = port, delay
        self.slow = False
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        await asyncio.gather(
            self._pipe(reader, up_writer, False), self._pipe(up_reader, writer, True), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers: bool) -> None:
        try:
            while chunk := await reader.read(65536):
                if answers and self.slow:
                    await asyncio.sleep(self.delay)
                writer.write(chunk)
        finally:
            writer.close()

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


def test_redis_behind_a_slow_proxy_is_unavailable_within_redis_timeout(tmp_path: Path) -> None:
    async def main(server: RedisServer) -> None:
        proxy = SlowProxy(server.port, delay=0.4)
        stock, orders = await _opened(server, Clock(), await proxy.start())
        hold = await stock.hold(5, 30)
        record = await orders.add(5, "k", "qty=5", hold_id=hold.hold_id)
        proxy.slow = True
        for store in (stock, orders):  # each call connects anew: 0.8 s if nothing bounds it all
            await store._redis.connection_pool.disconnect()
        await _each_unavailable_promptly(stock, orders, hold.hold_id, record.order.order_id)
        proxy.slow = False
        assert await stock.stock() == Stock(95, 5, 0, 100)
        assert await orders.recall("k", "qty=5") == record
        await stock.close()
        await orders.close()
        proxy.close()

    with running_redis(tmp_path) as server:
        asyncio.run(main(server))
