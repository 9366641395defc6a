"""TicketService: purchases, holds and orders, whichever way the stock is reached.

A purchase or a confirm becomes an order through a ``Checkout`` (ticket/checkout.py: one
atomic write in the monolith, a hold and a confirm across processes). This class adds what
both share: the rules of a request, idempotency, and the sale's counts (ticket/counts.py). A
request with a key is answered once: a retry gets the first order, and a concurrent duplicate
in this process waits for the first and gets its order (across processes, the stores' keys
decide).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ticketsys.domain.errors import IdempotencyConflict, SoldOut
from ticketsys.domain.interfaces import VacancyClient
from ticketsys.domain.models import DEFAULT_HOLDS, Hold, HoldRules, Order, Stock, check_quantity
from ticketsys.ticket.checkout import Checkout
from ticketsys.ticket.counts import SaleCounts


class TicketService:
    def __init__(
        self, vacancy: VacancyClient, checkout: Checkout, max_qty: int, holds: HoldRules = DEFAULT_HOLDS
    ) -> None:
        self.vacancy = vacancy
        self.checkout = checkout
        self.max_qty = max_qty
        self.holds = holds
        self.counts = SaleCounts()
        self._in_flight: dict[str, tuple[str, asyncio.Future[Order]]] = {}

    async def purchase(self, qty: int, key: str | None = None) -> Order:
        check_quantity(qty, self.max_qty)
        fingerprint = f"qty={qty}"
        counts = self.counts
        try:
            if key is None:  # the common case, straight to the checkout
                order, replayed = await self.checkout.purchase(qty, None, fingerprint), False
            else:
                order, replayed = await self._once(
                    key, fingerprint, lambda: self.checkout.purchase(qty, key, fingerprint)
                )
        except Exception as exc:
            counts.refused(exc)
            raise
        if replayed:
            counts.replays += 1
        else:
            counts.sold += 1
            counts.tickets += order.qty
        return order

    async def confirm(self, hold_id: str, key: str | None = None) -> Order:
        fingerprint = f"confirm={hold_id}"
        counts = self.counts
        try:
            if key is None:
                order, replayed = await self.checkout.confirm(hold_id, None, fingerprint), False
            else:
                order, replayed = await self._once(
                    key, fingerprint, lambda: self.checkout.confirm(hold_id, key, fingerprint)
                )
        except Exception:
            counts.hold("failed")
            raise
        if replayed:
            counts.replays += 1
        else:
            counts.hold("confirmed")
            counts.tickets += order.qty
        return order

    async def _once(
        self, key: str, fingerprint: str, run: Callable[[], Awaitable[Order]]
    ) -> tuple[Order, bool]:
        """The order for ``key``, and whether it is an earlier answer given again."""
        running = self._in_flight.get(key)
        if running is not None:
            if running[0] != fingerprint:
                raise IdempotencyConflict(key)
            return await asyncio.shield(running[1]), True
        first: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = (fingerprint, first)
        asked = time.time()
        try:
            order = await run()
        except BaseException as exc:
            first.set_exception(exc)
            first.exception()  # retrieved: nobody may be waiting for it
            raise
        else:
            first.set_result(order)
            return order, order.created_at < asked  # made before it was asked: recalled
        finally:
            del self._in_flight[key]

    async def create_hold(self, qty: int, ttl: float | None = None, key: str | None = None) -> Hold:
        check_quantity(qty, self.max_qty)
        scoped = None if key is None else f"{self.checkout.store_id}:hold:{key}"
        try:
            hold = await self.vacancy.hold(qty, self.holds.ttl(ttl), scoped)
        except IdempotencyConflict:
            self.counts.hold("failed")
            raise IdempotencyConflict(key or "") from None  # the buyer's key, not the scoped one
        except SoldOut:
            self.counts.hold("sold_out")
            raise
        except Exception:
            self.counts.hold("failed")
            raise
        self.counts.hold("held")
        return hold

    async def get_hold(self, hold_id: str) -> Hold:
        return await self.vacancy.get_hold(hold_id)

    async def release(self, hold_id: str) -> int:
        remaining = await self.vacancy.release(hold_id)
        self.counts.hold("released")
        return remaining

    async def order(self, order_id: str) -> Order | None:
        return await self.checkout.order(order_id)

    async def available(self) -> int:
        return await self.vacancy.available()

    async def stock(self) -> Stock:
        return await self.vacancy.stock()

    def __repr__(self) -> str:
        return f"<TicketService vacancy={type(self.vacancy).__name__} {self.checkout!r}>"
