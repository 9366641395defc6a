"""The stores an app owns, chosen by STOCK_STORE: in memory, SQLite files under DATA_DIR, or
Redis. One function per role: the monolith's sale, Vacancy's stock, Ticket's orders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ticketsys.config import Settings
from ticketsys.domain.errors import StoreRefused
from ticketsys.domain.interfaces import OrderStore, SaleStore, StockStore
from ticketsys.storage.fsync import FsyncPolicy
from ticketsys.storage.memory import MemoryOrders, MemorySale, MemoryStock
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.orders import SqliteOrders
from ticketsys.storage.sqlite.sale import SqliteSale
from ticketsys.storage.sqlite.stock import SqliteStock

if TYPE_CHECKING:
    from ticketsys.storage.redis import Redis

# The Redis modules are imported only when STOCK_STORE names Redis: redis-py costs a few MB
# of resident memory that a process without it should not carry.

# The files of each kind of store under DATA_DIR.
SALE_FILE, STOCK_FILE, ORDERS_FILE = "sale.db", "stock.db", "orders.db"
# What the journal store of ticketsys 0.1 left in DATA_DIR.
_JOURNAL_FILES = ("stock.snapshot", "orders.snapshot", "stock.*.log", "orders.*.log")


@dataclass(frozen=True, slots=True)
class MonolithStores:
    """The monolith sells from a ``SaleStore`` when the engine can write a sale in one
    step; otherwise (Redis) from a stock and an order store, through holds."""

    stock: StockStore
    sale: SaleStore | None
    orders: OrderStore | None


def _database(settings: Settings, name: str) -> Database:
    directory = Path(settings.data_dir)
    for pattern in _JOURNAL_FILES:
        found = next(iter(sorted(directory.glob(pattern))), None)
        if found is not None:
            raise StoreRefused(
                f"{found} is a journal store of ticketsys 0.1, which this version does not read: "
                "see README, 'Upgrading from the journal store'"
            )
    return Database(directory / name, name.removesuffix(".db"), FsyncPolicy(settings.fsync))


def _redis(settings: Settings) -> Redis:
    from ticketsys.storage.redis import connect

    return connect(
        settings.stock_store,
        timeout=settings.redis_timeout,
        connect_timeout=min(settings.redis_timeout, 0.25),
    )


def monolith_stores(settings: Settings) -> MonolithStores:
    if settings.shared_store:
        return MonolithStores(stock_store(settings), None, order_store(settings))
    if settings.stock_store == "memory":
        sale: SaleStore = MemorySale(settings.initial_stock, key_ttl=settings.idempotency_ttl)
    else:
        database = _database(settings, SALE_FILE)
        sale = SqliteSale(database, settings.initial_stock, key_ttl=settings.idempotency_ttl)
    return MonolithStores(sale, sale, None)


def stock_store(settings: Settings) -> StockStore:
    if settings.shared_store:
        from ticketsys.storage.redis.stock import RedisStock

        return RedisStock(_redis(settings), settings.initial_stock, key_ttl=settings.idempotency_ttl)
    if settings.stock_store == "memory":
        return MemoryStock(settings.initial_stock, key_ttl=settings.idempotency_ttl)
    database = _database(settings, STOCK_FILE)
    return SqliteStock(database, settings.initial_stock, key_ttl=settings.idempotency_ttl)


def order_store(settings: Settings) -> OrderStore:
    if settings.shared_store:
        from ticketsys.storage.redis.orders import RedisOrders

        return RedisOrders(_redis(settings), key_ttl=settings.idempotency_ttl)
    if settings.stock_store == "memory":
        return MemoryOrders(key_ttl=settings.idempotency_ttl)
    return SqliteOrders(_database(settings, ORDERS_FILE), key_ttl=settings.idempotency_ttl)
