"""The monolith's store: stock, holds and orders in one SQLite file, so that selling tickets
and recording their order is one transaction. A crash can lose both or neither, never one:
no purchase needs a hold, and no ticket can be sold without its order."""

from __future__ import annotations

import time

from ticketsys.domain.errors import HoldUnavailable, StoreUnavailable
from ticketsys.domain.models import Order, OrderState
from ticketsys.storage.sqlite.database import Database, Identity
from ticketsys.storage.sqlite.ids import IdCodec
from ticketsys.storage.sqlite.stock import Clock, SqliteStock
from ticketsys.storage.sqlite.tables import KeyTable, OrderTable
from ticketsys.storage.window import DAY


class SqliteSale(SqliteStock):
    def __init__(self, db: Database, initial: int, *, clock: Clock = time.time, key_ttl: float = DAY) -> None:
        super().__init__(db, initial, clock=clock, key_ttl=key_ttl)
        self._order_keys = KeyTable(db, "order_keys", int(key_ttl * 1000))
        self._orders: OrderTable | None = None

    def _open_database(self) -> Identity:
        identity = super()._open_database()
        self._orders = OrderTable(self._db, IdCodec(identity.secret, b"order"))
        self._db.every_second(lambda: self._order_keys.expire(self._now()))
        return identity

    def figures(self) -> dict[str, int]:
        stock = super().figures()
        return {**stock, "orders": self.orders.count(), "keys": stock["keys"] + self._order_keys.count()}

    async def purchase(self, qty: int, key: str | None, fingerprint: str) -> Order:
        await self._db.ready()
        order = self._purchase(qty, key, fingerprint, self._now())
        await self._db.flush()
        return order

    def _purchase(self, qty: int, key: str | None, fingerprint: str, now: int) -> Order:
        if key is not None:
            seen = self._order_keys.recall(key, fingerprint, now)
            if seen is not None:
                return self.orders.by_seq(seen).record.order
        self._expire_due(now)
        remaining = self._take(qty, "sold")
        row = self.orders.insert(qty, now, remaining, OrderState.CONFIRMED)
        if key is not None:
            self._order_keys.bind(key, fingerprint, row.seq, now)
        return row.record.order

    async def confirm_hold(self, hold_id: str, key: str | None, fingerprint: str) -> Order:
        await self._db.ready()
        order = self._confirm_hold(hold_id, key, fingerprint, self._now())
        await self._db.flush()
        return order

    def _confirm_hold(self, hold_id: str, key: str | None, fingerprint: str, now: int) -> Order:
        if key is not None:
            seen = self._order_keys.recall(key, fingerprint, now)
            if seen is not None:
                return self.orders.by_seq(seen).record.order
        self._expire_due(now)
        hold = self._find(hold_id)
        qty, sold_to = hold[2], hold[6]
        if sold_to is not None:  # confirmed already: the same order again
            found = self.orders.find(sold_to.hex())
            if found is None:
                raise StoreUnavailable(f"hold {hold_id} was sold to an order that is missing")
            return found.record.order
        if hold[4] != 0:
            state = self._hold(hold)
            raise HoldUnavailable(hold_id, state.state)
        row = self.orders.insert(qty, now, self._available(), OrderState.CONFIRMED)
        self._confirm(hold, row.record.order.order_id)
        if key is not None:
            self._order_keys.bind(key, fingerprint, row.seq, now)
        return row.record.order

    async def get_order(self, order_id: str) -> Order | None:
        found = self.orders.find(order_id)
        return None if found is None else found.record.order

    async def recall(self, key: str, fingerprint: str) -> Order | None:
        seen = self._order_keys.recall(key, fingerprint, self._now())
        return None if seen is None else self.orders.by_seq(seen).record.order

    @property
    def orders(self) -> OrderTable:
        if self._orders is None:
            raise RuntimeError("the store is not open")
        return self._orders
