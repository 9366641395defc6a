"""VacancyService: the rules around the stock (valid quantities), independent of transport."""

from __future__ import annotations

from ticketsys.domain.models import Reservation, check_quantity
from ticketsys.vacancy.stock import StockManager


class VacancyService:
    def __init__(self, stock: StockManager, max_qty: int) -> None:
        self.stock = stock
        self.max_qty = max_qty

    async def available(self) -> int:
        return self.stock.available

    async def reserve(self, qty: int, key: str | None = None) -> Reservation:
        return await self.stock.reserve(check_quantity(qty, self.max_qty), key)

    async def release(self, qty: int, key: str | None = None) -> Reservation:
        # Releases may return a whole order at once, so they are bounded by capacity, not MAX_QTY.
        return await self.stock.release(check_quantity(qty, self.stock.capacity or 1), key)

    async def restock(self, qty: int) -> Reservation:
        return await self.stock.restock(check_quantity(qty, 10**9))

    def __repr__(self) -> str:
        return f"<VacancyService {self.stock!r} max_qty={self.max_qty}>"
