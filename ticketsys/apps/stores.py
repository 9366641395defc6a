"""The stores an app owns, chosen by STOCK_STORE: in memory, journals under DATA_DIR, or Redis."""

from __future__ import annotations

from pathlib import Path

from ticketsys.config import Settings
from ticketsys.domain.interfaces import OrderStore, StockStore
from ticketsys.storage.journal import FsyncPolicy, Journal
from ticketsys.storage.redis import Redis, connect
from ticketsys.ticket.orders import OrderBook
from ticketsys.ticket.redis_orders import RedisOrderBook
from ticketsys.vacancy.redis_stock import RedisStock
from ticketsys.vacancy.stock import StockManager


def _journal(settings: Settings, name: str) -> Journal | None:
    if settings.stock_store == "memory":
        return None
    return Journal(Path(settings.data_dir), name, FsyncPolicy(settings.fsync))


def _redis(settings: Settings) -> Redis:
    return connect(
        settings.stock_store,
        timeout=settings.redis_timeout,
        connect_timeout=min(settings.redis_timeout, 0.25),
    )


def stock_store(settings: Settings) -> StockStore:
    if settings.shared_store:
        return RedisStock(_redis(settings), settings.initial_stock, settings.idempotency_ttl)
    return StockManager(settings.initial_stock, _journal(settings, "stock"), settings.idempotency_ttl)


def order_book(settings: Settings) -> OrderStore:
    if settings.shared_store:
        return RedisOrderBook(_redis(settings), settings.idempotency_ttl)
    return OrderBook(_journal(settings, "orders"), settings.idempotency_ttl)
