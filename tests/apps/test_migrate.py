"""ticketsys move-to-redis: a sale moves from the journal into Redis, whole, once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from ticketsys.storage.journal import FsyncPolicy, Journal
from ticketsys.ticket.orders import OrderBook
from ticketsys.ticket.redis_orders import RedisOrderBook
from ticketsys.vacancy.redis_stock import RedisStock
from ticketsys.vacancy.stock import StockManager

from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures)
from ticketsys.storage.redis import connect
from ticketsys.ticket.clients import LocalVacancyClient
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.service import VacancyService

ROOT = Path(__file__).resolve().parents[2]


def _sell_on_journal(data_dir: Path) -> str:
    async def main() -> str:
        stock = StockManager(100, Journal(data_dir, "stock", FsyncPolicy.NO))
        orders = OrderBook(Journal(data_dir, "orders", FsyncPolicy.NO))
        await stock.open()
        await orders.open()
        ticket = TicketService(LocalVacancyClient(VacancyService(stock, 10)), orders, 10)
        order = await ticket.purchase(7, key="buyer-1")
        await ticket.purchase(3)
        await orders.close()
        await stock.close()
        return order.order_id

    return asyncio.run(main())


def _move(data_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticketsys", "move-to-redis", url, "--data-dir", str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_a_sale_moves_with_its_orders_and_keys(tmp_path: Path, redis_url: str) -> None:  # noqa: F811
    order_id = _sell_on_journal(tmp_path)
    moved = _move(tmp_path, redis_url)
    assert moved.returncode == 0, moved.stderr
    assert "moved 90 of 100 tickets, 2 orders" in moved.stdout

    async def check() -> None:
        stock = RedisStock(connect(redis_url, timeout=1, connect_timeout=1), 5000, 3600)
        orders = RedisOrderBook(connect(redis_url, timeout=1, connect_timeout=1), 3600)
        await stock.open()  # INITIAL_STOCK does not reseed a moved sale
        await orders.open()
        ticket = TicketService(LocalVacancyClient(VacancyService(stock, 10)), orders, 10)
        assert await stock.current() == 90
        again = await ticket.purchase(7, key="buyer-1")  # a retry after the move: no new sale
        assert again.order_id == order_id
        assert await stock.current() == 90
        await orders.close()
        await stock.close()

    asyncio.run(check())


def test_moving_twice_is_refused(tmp_path: Path, redis_url: str) -> None:  # noqa: F811
    _sell_on_journal(tmp_path)
    assert _move(tmp_path, redis_url).returncode == 0
    second = _move(tmp_path, redis_url)
    assert second.returncode == 1
    assert "already holds a stock" in second.stderr


def test_nothing_to_move(tmp_path: Path, redis_url: str) -> None:  # noqa: F811
    result = _move(tmp_path, redis_url)
    assert result.returncode == 1 and "no stock store" in result.stderr
