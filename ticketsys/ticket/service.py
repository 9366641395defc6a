"""TicketService: a purchase is a reservation at Vacancy plus a recorded order.

Idempotency. A purchase with a key is answered once: a retry gets the first order, a
concurrent duplicate waits for the first and gets its order, and the reservation at Vacancy
carries a key derived from it, so even a retry after a lost reply takes stock once. Without a
key, the in-process client needs none (nothing is repeated there) and the remote client
makes one of its own for each reserve, so that it too can repeat one whose reply it lost.

Compensation. If the order cannot be recorded after Vacancy reserved, and the order store
can make sure it never will be (a write that timed out may still run), the reservation is
undone before the error is answered: a keyed one is cancelled (its tickets back on sale and
its key forgotten, so the buyer's retry reserves anew; repeating a cancel is harmless), an
unkeyed one released.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from ticketsys.domain.errors import IdempotencyConflict, SoldOut, StoreUnavailable, VacancyUnavailable
from ticketsys.domain.interfaces import OrderStore, VacancyClient
from ticketsys.domain.models import Order, check_quantity

log = logging.getLogger("ticketsys.ticket")


def new_order_id() -> str:
    """96 random bits: unguessable, so an order id is no handle on anyone else's order.
    (os.urandom: a quarter of uuid4's cost, which is on every purchase's path.)"""
    return os.urandom(12).hex()


class TicketService:
    def __init__(self, vacancy: VacancyClient, orders: OrderStore, max_qty: int) -> None:
        self.vacancy = vacancy
        self.orders = orders
        self.max_qty = max_qty
        self._in_flight: dict[str, tuple[str, asyncio.Future[Order]]] = {}

    async def purchase(self, qty: int, key: str | None = None) -> Order:
        check_quantity(qty, self.max_qty)
        if key is None:
            return await self._purchase(qty, None, "", None)
        fingerprint = f"qty={qty}"
        done = await self.orders.recall(key, fingerprint)
        if done is not None:
            return done
        running = self._in_flight.get(key)
        if running is not None:
            if running[0] != fingerprint:
                raise IdempotencyConflict(key)
            return await asyncio.shield(running[1])
        first: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = (fingerprint, first)
        try:
            order = await self._purchase(qty, key, fingerprint, f"purchase:{key}")
        except BaseException as exc:
            first.set_exception(exc)
            first.exception()  # retrieved: nobody may be waiting for it
            raise
        else:
            first.set_result(order)
            return order
        finally:
            del self._in_flight[key]

    async def _purchase(self, qty: int, key: str | None, fingerprint: str, reserve_key: str | None) -> Order:
        reservation = await self.vacancy.reserve(qty, reserve_key)
        if not reservation.success:
            raise SoldOut(qty, reservation.remaining)
        order = Order(new_order_id(), qty, time.time(), reservation.remaining)
        try:
            recorded = await self.orders.add(order, key, fingerprint)
        except StoreUnavailable as failure:
            await self._compensate(order, key, reserve_key, failure)
            raise
        await self.orders.durable()
        return recorded

    async def _compensate(
        self, order: Order, key: str | None, reserve_key: str | None, failure: StoreUnavailable
    ) -> None:
        qty = order.qty
        try:
            if not failure.unsent and not await self.orders.abandon(order, key):
                log.warning("order %s was recorded after all: its %d tickets stay sold", order.order_id, qty)
                return
        except StoreUnavailable as exc:
            # A write that timed out may still run: undoing the reservation could sell its
            # tickets twice. They stay reserved: a retry with the key finds them, or they are
            # lost to this sale, never sold twice.
            log.error(
                "order %s may or may not be recorded (%s): its %d tickets stay reserved",
                order.order_id,
                exc,
                qty,
            )
            return
        try:
            if reserve_key is None:
                await self.vacancy.release(qty)
            else:
                # Not a release: the reserve's key must go too, or the buyer's retry would
                # find it, take nothing and still get an order for tickets back on sale.
                await self.vacancy.cancel(qty, reserve_key)
        except (VacancyUnavailable, StoreUnavailable) as exc:
            # The tickets stay reserved with no order: lost to this sale, never sold twice.
            log.error("could not put back the %d tickets of order %s: %s", qty, order.order_id, exc)
        else:
            log.warning("put back %d tickets: order %s could not be recorded", qty, order.order_id)

    async def order(self, order_id: str) -> Order | None:
        return await self.orders.get(order_id)

    async def available(self) -> int:
        return await self.vacancy.available()

    def __repr__(self) -> str:
        return f"<TicketService vacancy={type(self.vacancy).__name__} {self.orders!r}>"
