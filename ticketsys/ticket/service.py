"""TicketService: a purchase is a reservation at Vacancy, whichever client reaches it."""

from __future__ import annotations

from ticketsys.domain.errors import SoldOut
from ticketsys.domain.interfaces import VacancyClient
from ticketsys.domain.models import Purchase, check_quantity


class TicketService:
    def __init__(self, vacancy: VacancyClient, max_qty: int) -> None:
        self.vacancy = vacancy
        self.max_qty = max_qty

    async def purchase(self, qty: int) -> Purchase:
        reservation = await self.vacancy.reserve(check_quantity(qty, self.max_qty))
        if not reservation.success:
            raise SoldOut(qty, reservation.remaining)
        return Purchase(qty, reservation.remaining)

    async def available(self) -> int:
        return await self.vacancy.available()

    def __repr__(self) -> str:
        return f"<TicketService vacancy={type(self.vacancy).__name__} max_qty={self.max_qty}>"
