"""The stock of tickets: a counter whose changes are all-or-nothing and serialised."""

from __future__ import annotations

import asyncio

from ticketsys.domain.errors import OverRelease
from ticketsys.domain.models import Reservation


class StockManager:
    """A lock-protected counter of tickets on sale.

    In memory the check-and-decrement cannot be interleaved anyway (no ``await`` between
    them), but the lock makes the contract explicit and keeps it true when a change has to
    wait for a store (a journal write, a remote engine) before it is acknowledged.
    """

    def __init__(self, initial: int) -> None:
        assert initial >= 0
        self.capacity = initial
        self._available = initial
        self._lock = asyncio.Lock()

    @property
    def available(self) -> int:
        return self._available

    async def reserve(self, qty: int) -> Reservation:
        async with self._lock:
            if qty > self._available:
                return Reservation(False, self._available)
            self._available -= qty
            return Reservation(True, self._available)

    async def release(self, qty: int) -> Reservation:
        async with self._lock:
            if self._available + qty > self.capacity:
                raise OverRelease(qty, self._available, self.capacity)
            self._available += qty
            return Reservation(True, self._available)

    def __repr__(self) -> str:
        return f"<StockManager available={self._available} of {self.capacity}>"
