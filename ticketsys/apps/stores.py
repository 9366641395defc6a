"""The stores an app owns, chosen by STOCK_STORE: in memory, SQLite files under DATA_DIR, or
Redis. One function per role: the monolith's sale, Vacancy's stock, Ticket's orders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ticketsys.config import StoreChoice, StoreKind
from ticketsys.domain.errors import StoreRefused
from ticketsys.domain.interfaces import DirectSale, OrderStore, SaleStore, StockStore
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
class StoreConfig:
    """The stores' arguments (configs.store_config makes them from Settings)."""

    choice: StoreChoice
    data_dir: Path
    fsync: FsyncPolicy
    initial_stock: int
    key_ttl: float  # how long an idempotency key is remembered
    redis_timeout: float
    redis_connect_timeout: float
    # Told how long commits, fsyncs and Redis commands took (the app's metrics), if anyone asks.
    timer: Callable[[str, str, float], None] | None = None


@dataclass(frozen=True, slots=True)
class MonolithStores:
    """The monolith sells from a ``SaleStore`` when the engine can write a sale in one
    step; otherwise (Redis) from a stock and an order store, a purchase in one script
    (``direct``) and the rest through holds."""

    stock: StockStore
    sale: SaleStore | None
    orders: OrderStore | None
    direct: DirectSale | None = None


def _database(config: StoreConfig, name: str) -> Database:
    for pattern in _JOURNAL_FILES:
        found = next(iter(sorted(config.data_dir.glob(pattern))), None)
        if found is not None:
            raise StoreRefused(
                f"{found} is a journal store of ticketsys 0.1, which this version does not read: "
                "see README, 'Upgrading from the journal store'"
            )
    return Database(config.data_dir / name, name.removesuffix(".db"), config.fsync, timer=config.timer)


def _redis(config: StoreConfig) -> Redis:
    from ticketsys.storage.redis import connect

    return connect(
        config.choice.url,
        timeout=config.redis_timeout,
        connect_timeout=config.redis_connect_timeout,
        timer=config.timer,
    )


def monolith_stores(config: StoreConfig) -> MonolithStores:
    if config.choice.kind is StoreKind.REDIS:
        from ticketsys.storage.redis.orders import RedisOrders
        from ticketsys.storage.redis.sale import RedisDirectSale
        from ticketsys.storage.redis.stock import RedisStock

        stock, orders = stock_store(config), order_store(config)
        assert isinstance(stock, RedisStock) and isinstance(orders, RedisOrders)
        direct = RedisDirectSale(_redis(config), stock, orders, key_ttl=config.key_ttl)
        return MonolithStores(stock, None, orders, direct)
    sale: SaleStore
    if config.choice.kind is StoreKind.MEMORY:
        sale = MemorySale(config.initial_stock, key_ttl=config.key_ttl)
    else:
        sale = SqliteSale(_database(config, SALE_FILE), config.initial_stock, key_ttl=config.key_ttl)
    return MonolithStores(sale, sale, None)


def stock_store(config: StoreConfig) -> StockStore:
    if config.choice.kind is StoreKind.REDIS:
        from ticketsys.storage.redis.stock import RedisStock

        return RedisStock(_redis(config), config.initial_stock, key_ttl=config.key_ttl)
    if config.choice.kind is StoreKind.MEMORY:
        return MemoryStock(config.initial_stock, key_ttl=config.key_ttl)
    return SqliteStock(_database(config, STOCK_FILE), config.initial_stock, key_ttl=config.key_ttl)


def order_store(config: StoreConfig) -> OrderStore:
    if config.choice.kind is StoreKind.REDIS:
        from ticketsys.storage.redis.orders import RedisOrders

        return RedisOrders(_redis(config), key_ttl=config.key_ttl)
    if config.choice.kind is StoreKind.MEMORY:
        return MemoryOrders(key_ttl=config.key_ttl)
    return SqliteOrders(_database(config, ORDERS_FILE), key_ttl=config.key_ttl)
