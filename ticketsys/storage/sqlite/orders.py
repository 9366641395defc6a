"""Ticket's orders and purchase keys in a SQLite store (microservices).

An order is recorded pending, standing on a hold at Vacancy, before that hold is confirmed;
it is settled confirmed or void once Ticket learns the outcome (ticket/checkout.py has the
argument). Pending orders are found through a partial index, so settling after a crash reads
only them, never the whole book.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from ticketsys.domain.models import OrderRecord, OrderState
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.ids import IdCodec
from ticketsys.storage.sqlite.stock import Clock
from ticketsys.storage.sqlite.tables import KeyTable, OrderTable
from ticketsys.storage.window import DAY

log = logging.getLogger("ticketsys.storage")


class SqliteOrders:
    def __init__(self, db: Database, *, clock: Clock = time.time, key_ttl: float = DAY) -> None:
        self._db = db
        self._clock = clock
        self._keys = KeyTable(db, "order_keys", int(key_ttl * 1000))
        self._orders: OrderTable | None = None
        self.store_id = ""
        self._peer: str | None = None

    async def open(self) -> None:
        identity = self._db.open(0)
        self.store_id = identity.store_id
        self._peer = identity.peer
        self._orders = OrderTable(self._db, IdCodec(identity.secret, b"order"))
        self._db.every_second(lambda: self._keys.expire(self._now()))
        self._db.start()
        pending = len(self.orders.pending(1000))
        log.info(
            "order store %s%s", self._db.path, f": {pending} pending orders to settle" if pending else ""
        )

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        self._db.read("SELECT 1 FROM identity")

    def figures(self) -> dict[str, int]:
        return {"orders": self.orders.count(), "keys": self._keys.count()}

    async def get(self, order_id: str) -> OrderRecord | None:
        found = self.orders.find(order_id)
        return None if found is None else found.record

    async def recall(self, key: str, fingerprint: str) -> OrderRecord | None:
        seen = self._keys.recall(key, fingerprint, self._now())
        return None if seen is None else self.orders.by_seq(seen).record

    async def add(
        self,
        qty: int,
        key: str | None,
        fingerprint: str,
        *,
        hold_id: str | None = None,
        expires_at: float | None = None,
    ) -> OrderRecord:
        await self._db.ready()
        now = self._now()
        if key is not None:
            seen = self._keys.recall(key, fingerprint, now)
            if seen is not None:
                record = self.orders.by_seq(seen).record
                if record.state is not OrderState.VOID:
                    await self._db.flush()
                    return record
        expires_ms = None if expires_at is None else round(expires_at * 1000)
        row = self.orders.insert(qty, now, 0, OrderState.PENDING, hold_id, expires_ms)
        if key is not None:
            self._keys.bind(key, fingerprint, row.seq, now)
        await self._db.flush()
        return row.record

    async def settle(
        self,
        record: OrderRecord,
        state: OrderState,
        *,
        hold_id: str | None = None,
        remaining: int | None = None,
    ) -> OrderRecord:
        await self._db.ready()
        order = record.order
        if not self.orders.settle(order.order_id, state, hold_id, remaining):
            found = self.orders.find(order.order_id)  # settled already: as it was settled
            if found is None:
                raise LookupError(f"order {order.order_id} is not in this store")
            return found.record
        await self._db.flush()  # the buyer is answered from this state: it must be stored first
        if remaining is not None:
            order = replace(order, remaining=remaining)
        return OrderRecord(order, state, hold_id or record.hold_id, record.expires_at)

    async def pending(self, limit: int) -> list[OrderRecord]:
        return [row.record for row in self.orders.pending(limit)]

    async def peer(self) -> str | None:
        return self._peer

    async def set_peer(self, store_id: str) -> None:
        await self._db.ready()
        self._db.write("UPDATE identity SET peer = ?", (store_id,))
        await self._db.flush()
        self._peer = store_id

    @property
    def orders(self) -> OrderTable:
        if self._orders is None:
            raise RuntimeError("the store is not open")
        return self._orders

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def __repr__(self) -> str:
        return f"<SqliteOrders {self._db!r}>"
