"""The stores an app owns, chosen by STOCK_STORE: in memory, journals under DATA_DIR, or Redis."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ticketsys.config import Settings
from ticketsys.domain.interfaces import OrderStore, StockStore
from ticketsys.storage.journal import FsyncPolicy, Journal
from ticketsys.ticket.orders import OrderBook
from ticketsys.vacancy.stock import StockManager

if TYPE_CHECKING:
    from ticketsys.storage.redis import Redis

# The Redis modules are imported only when STOCK_STORE names Redis: redis-py costs a few MB
# of resident memory that a process without it should not carry.


def _journal(settings: Settings, name: str) -> Journal | None:
    if settings.stock_store == "memory":
        return None
    return Journal(Path(settings.data_dir), name, FsyncPolicy(settings.fsync))


def _redis(settings: Settings) -> Redis:
    from ticketsys.storage.redis import connect

    return connect(
        settings.stock_store,
        timeout=settings.redis_timeout,
        connect_timeout=min(settings.redis_timeout, 0.25),
    )


def stock_store(settings: Settings) -> StockStore:
    if settings.shared_store:
        from ticketsys.vacancy.redis_stock import RedisStock

        return RedisStock(_redis(settings), settings.initial_stock, settings.idempotency_ttl)
    return StockManager(settings.initial_stock, _journal(settings, "stock"), settings.idempotency_ttl)


def order_book(settings: Settings) -> OrderStore:
    if settings.shared_store:
        from ticketsys.ticket.redis_orders import RedisOrderBook

        return RedisOrderBook(_redis(settings), settings.idempotency_ttl)
    return OrderBook(_journal(settings, "orders"), settings.idempotency_ttl)
