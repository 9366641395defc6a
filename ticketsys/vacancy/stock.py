"""The stock of tickets: a counter whose changes are all-or-nothing, serialised and, with a
journal, durable.

Order of a change: check under the lock, append the record to the journal, then change the
counter. A failed append therefore changes nothing. The acknowledgement waits for
``journal.durable()`` outside the lock, so concurrent reserves share one fsync under the
``always`` policy (group commit).

Cancel undoes a keyed reserve and forgets its key (Ticket's compensation). Reserve and
release take an optional idempotency key: a repeated key returns the first result
and changes nothing (a caller whose reply was lost may retry). Keys are kept ``key_ttl``
seconds (a client's per-call keys: CALL_KEY_TTL) and survive restarts with the journal. Only
successful changes are remembered: an unsuccessful reserve took nothing, so repeating it is
harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from ticketsys.domain.errors import IdempotencyConflict, OverRelease, StoreUnavailable
from ticketsys.domain.models import CALL_KEY_PREFIX, CALL_KEY_TTL, Reservation
from ticketsys.storage.journal import Journal
from ticketsys.storage.window import DAY, KeyWindow

log = logging.getLogger("ticketsys.vacancy")


@dataclass(frozen=True, slots=True)
class _Remembered:
    op: str
    qty: int
    result: Reservation


class StockManager:
    def __init__(self, initial: int, journal: Journal | None = None, key_ttl: float = DAY) -> None:
        assert initial >= 0
        self.initial = initial
        self.capacity = initial
        self._available = initial
        self._journal = journal
        self._keys: KeyWindow[_Remembered] = KeyWindow(key_ttl)
        self._call_keys: KeyWindow[_Remembered] = KeyWindow(CALL_KEY_TTL)
        self._lock = asyncio.Lock()

    @property
    def available(self) -> int:
        return self._available

    async def current(self) -> int:
        return self._available

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Recover from the journal (if any). ``initial`` seeds only a store being created."""
        if self._journal is None:
            return
        recovered = self._journal.open()
        if recovered.snapshot is None and not recovered.records:
            log.info("creating the stock store with %d tickets", self.initial)
        else:
            if recovered.snapshot is not None:
                self._restore(recovered.snapshot)
            for record in recovered.records:
                self._apply(record)
            log.info("recovered the stock: %d of %d available", self._available, self.capacity)
        now = time.time()
        self._keys.expire(now)
        self._call_keys.expire(now)
        self._journal.compact(self.snapshot())
        self._journal.start_background_sync()

    async def close(self) -> None:
        if self._journal is not None:
            await self._journal.close(self.snapshot())

    # -- changes -----------------------------------------------------------------------------

    async def reserve(self, qty: int, key: str | None = None) -> Reservation:
        async with self._lock:
            seen = self._recall(key, "reserve", qty)
            if seen is not None:
                return seen
            if qty > self._available:
                return Reservation(False, self._available)
            result = self._change("reserve", qty, key, -qty)
        await self._durable()
        return result

    async def release(self, qty: int, key: str | None = None) -> Reservation:
        async with self._lock:
            seen = self._recall(key, "release", qty)
            if seen is not None:
                return seen
            if self._available + qty > self.capacity:
                raise OverRelease(qty, self._available, self.capacity)
            result = self._change("release", qty, key, qty)
        await self._durable()
        return result

    async def cancel(self, qty: int, key: str) -> Reservation:
        async with self._lock:
            if self._recall(key, "reserve", qty) is None:
                return Reservation(True, self._available)  # cancelled already, or never made
            result = self._change("cancel", qty, key, qty)
        await self._durable()
        return result

    async def restock(self, qty: int) -> Reservation:
        """Put ``qty`` more tickets on sale (raises capacity too)."""
        async with self._lock:
            result = self._change("restock", qty, None, qty)
        await self._durable()
        return result

    def _change(self, op: str, qty: int, key: str | None, delta: int) -> Reservation:
        now = time.time()
        if self._journal is not None:
            try:
                self._journal.append({"op": op, "qty": qty, "key": key, "t": now})
            except OSError as exc:
                raise StoreUnavailable(f"cannot record the change: {exc}") from exc
        return self._apply({"op": op, "qty": qty, "key": key, "t": now})

    async def _durable(self) -> None:
        if self._journal is not None:
            try:
                await self._journal.durable()
            except OSError as exc:
                raise StoreUnavailable(f"cannot make the change durable: {exc}") from exc

    # -- state -------------------------------------------------------------------------------

    def _apply(self, record: dict[str, Any]) -> Reservation:
        op, qty = record["op"], int(record["qty"])
        if op == "restock":
            self.capacity += qty
        self._available += -qty if op == "reserve" else qty
        result = Reservation(True, self._available)
        key = record.get("key")
        if key is not None and op == "cancel":
            self._window(key).forget(key)
        elif key is not None:
            self._window(key).put(key, _Remembered(op, qty, result), float(record["t"]))
        return result

    def _window(self, key: str) -> KeyWindow[_Remembered]:
        return self._call_keys if key.startswith(CALL_KEY_PREFIX) else self._keys

    def _recall(self, key: str | None, op: str, qty: int) -> Reservation | None:
        if key is None:
            return None
        seen = self._window(key).get(key, time.time())
        if seen is None:
            return None
        if (seen.op, seen.qty) != (op, qty):
            raise IdempotencyConflict(key)
        return seen.result

    def snapshot(self) -> dict[str, Any]:
        """The whole state, as the journal's snapshot records it."""
        return {
            "capacity": self.capacity,
            "available": self._available,
            "keys": [
                [k, r.op, r.qty, r.result.remaining, at]
                for window in (self._keys, self._call_keys)
                for k, r, at in window.items()
            ],
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.capacity = int(state["capacity"])
        self._available = int(state["available"])
        for k, op, qty, remaining, at in state["keys"]:
            self._window(k).put(k, _Remembered(op, int(qty), Reservation(True, int(remaining))), float(at))

    def __repr__(self) -> str:
        store = "journal" if self._journal is not None else "memory"
        return f"<StockManager available={self._available} of {self.capacity} store={store}>"
