"""VacancyService: the rules around the stock (valid quantities), independent of transport."""

from __future__ import annotations

from ticketsys.domain.interfaces import StockStore
from ticketsys.domain.models import MAX_STOCK, Reservation, check_quantity


class VacancyService:
    def __init__(self, stock: StockStore, max_qty: int) -> None:
        self.stock = stock
        self.max_qty = max_qty

    async def available(self) -> int:
        return await self.stock.current()

    async def reserve(self, qty: int, key: str | None = None) -> Reservation:
        return await self.stock.reserve(check_quantity(qty, self.max_qty), key)

    async def release(self, qty: int, key: str | None = None) -> Reservation:
        # Releases may return a whole order at once: the store bounds them by its capacity.
        return await self.stock.release(check_quantity(qty, MAX_STOCK), key)

    async def cancel(self, qty: int, key: str) -> Reservation:
        return await self.stock.cancel(check_quantity(qty, self.max_qty), key)

    async def restock(self, qty: int) -> Reservation:
        return await self.stock.restock(check_quantity(qty, MAX_STOCK))

    def __repr__(self) -> str:
        return f"<VacancyService {self.stock!r} max_qty={self.max_qty}>"
