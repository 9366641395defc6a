"""Orders, and the idempotency keys of the purchases that made them.

A purchase with an ``Idempotency-Key`` is remembered with a fingerprint of what it asked for;
a retry with the same key and the same request gets the first answer, the same key with a
different request is refused. Keys live ``key_ttl`` seconds; orders live as long as the store.
With a journal, both survive restarts (see storage/journal.py for what "survive" means).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from ticketsys.domain.errors import IdempotencyConflict, StoreUnavailable
from ticketsys.domain.models import Order
from ticketsys.storage.journal import Journal
from ticketsys.storage.window import DAY, KeyWindow

log = logging.getLogger("ticketsys.ticket")


@dataclass(frozen=True, slots=True)
class _Key:
    fingerprint: str
    order_id: str


class OrderBook:
    def __init__(self, journal: Journal | None = None, key_ttl: float = DAY) -> None:
        self._journal = journal
        self._orders: dict[str, Order] = {}
        self._keys: KeyWindow[_Key] = KeyWindow(key_ttl)

    async def open(self) -> None:
        if self._journal is None:
            return
        recovered = self._journal.open()
        if recovered.snapshot is not None:
            for fields in recovered.snapshot["orders"]:
                self._remember(Order(**fields), None, "")
            for key, fingerprint, order_id, at in recovered.snapshot["keys"]:
                self._keys.put(key, _Key(fingerprint, order_id), at)
        for record in recovered.records:
            self._remember(Order(**record["order"]), record.get("key"), record.get("fingerprint", ""))
        self._keys.expire(time.time())
        log.info("recovered %d orders", len(self._orders))
        self._journal.compact(self.snapshot())
        self._journal.start_background_sync()

    async def close(self) -> None:
        if self._journal is not None:
            await self._journal.close(self.snapshot())

    async def get(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    async def recall(self, key: str, fingerprint: str) -> Order | None:
        """The order an earlier purchase with ``key`` made, if any."""
        seen = self._keys.get(key, time.time())
        if seen is None:
            return None
        if seen.fingerprint != fingerprint:
            raise IdempotencyConflict(key)
        return self._orders[seen.order_id]

    async def add(self, order: Order, key: str | None, fingerprint: str) -> Order:
        """Record ``order`` (to the kernel, with a journal). ``StoreUnavailable`` means it was
        not recorded at all; then nothing here changed. One process owns this book, so the
        order on record for ``key`` is always ``order`` (TicketService serialises a key)."""
        if self._journal is not None:
            record = {"order": asdict(order), "key": key, "fingerprint": fingerprint}
            try:
                self._journal.append(record)
            except OSError as exc:
                raise StoreUnavailable(f"cannot record the order: {exc}") from exc
        self._remember(order, key, fingerprint)
        return order

    async def abandon(self, order: Order, key: str | None) -> bool:
        # A failed add changed nothing here (the journal refused the append) and this
        # process owns the book: nothing can record ``order`` later.
        return order.order_id not in self._orders

    async def ping(self) -> None:
        """In this process: always reachable."""

    async def durable(self) -> None:
        """Wait until what was added is as durable as the fsync policy promises."""
        if self._journal is not None:
            await self._journal.durable()

    def _remember(self, order: Order, key: str | None, fingerprint: str) -> None:
        self._orders[order.order_id] = order
        if key is not None:
            self._keys.put(key, _Key(fingerprint, order.order_id), order.created_at)

    def snapshot(self) -> dict[str, Any]:
        return {
            "orders": [asdict(order) for order in self._orders.values()],
            "keys": [[k, v.fingerprint, v.order_id, at] for k, v, at in self._keys.items()],
        }

    def __len__(self) -> int:
        return len(self._orders)

    def __repr__(self) -> str:
        store = "journal" if self._journal is not None else "memory"
        return f"<OrderBook orders={len(self._orders)} keys={len(self._keys)} store={store}>"
