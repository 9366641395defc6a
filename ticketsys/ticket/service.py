"""TicketService: a purchase is a reservation at Vacancy plus a recorded order.

Idempotency. A purchase with a key is answered once: a retry gets the first order, a
concurrent duplicate waits for the first and gets its order, and the reservation at Vacancy
carries a key derived from it, so even a retry after a lost reply takes stock once. Without a
key, the in-process client needs none (nothing is repeated there) and the remote client
makes one of its own for each reserve, so that it too can repeat one whose reply it lost.

Compensation. If the order cannot be recorded after Vacancy reserved, the reservation is
released (with its own key, so repeating the release is harmless) before the error is answered.
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
        except StoreUnavailable:
            await self._compensate(qty, reserve_key)
            raise
        await self.orders.durable()
        return recorded

    async def _compensate(self, qty: int, reserve_key: str | None) -> None:
        try:
            await self.vacancy.release(qty, None if reserve_key is None else f"release:{reserve_key}")
        except (VacancyUnavailable, StoreUnavailable) as exc:
            # The tickets stay reserved with no order: lost to this sale, never sold twice.
            log.error("could not release %d tickets of reservation %s: %s", qty, reserve_key, exc)
        else:
            log.warning("released %d tickets: their order could not be recorded", qty)

    async def order(self, order_id: str) -> Order | None:
        return await self.orders.get(order_id)

    async def available(self) -> int:
        return await self.vacancy.available()

    def __repr__(self) -> str:
        return f"<TicketService vacancy={type(self.vacancy).__name__} {self.orders!r}>"
