"""The stores an app owns, chosen by STOCK_STORE: in memory, or journals under DATA_DIR."""

from __future__ import annotations

from pathlib import Path

from ticketsys.config import Settings
from ticketsys.storage.journal import FsyncPolicy, Journal
from ticketsys.ticket.orders import OrderBook
from ticketsys.vacancy.stock import StockManager


def _journal(settings: Settings, name: str) -> Journal | None:
    if settings.stock_store == "memory":
        return None
    return Journal(Path(settings.data_dir), name, FsyncPolicy(settings.fsync))


def stock_store(settings: Settings) -> StockManager:
    return StockManager(settings.initial_stock, _journal(settings, "stock"), settings.idempotency_ttl)


def order_book(settings: Settings) -> OrderBook:
    return OrderBook(_journal(settings, "orders"), settings.idempotency_ttl)
