"""The in-process VacancyClient: a direct await of the VacancyService, no serialisation, no
socket. It lives here, where the monolith wires the two services together, so that neither
service package knows the other."""

from __future__ import annotations

from ticketsys.domain.models import Hold, Stock
from ticketsys.vacancy.service import VacancyService


class LocalVacancyClient:
    def __init__(self, service: VacancyService) -> None:
        self._service = service

    async def available(self) -> int:
        return await self._service.available()

    async def stock(self) -> Stock:
        return await self._service.stock()

    async def hold(self, qty: int, ttl: float, key: str | None = None) -> Hold:
        return await self._service.hold(qty, ttl, key)

    async def sell_hold(self, qty: int, expires_at: float, order_id: str) -> Hold:
        return await self._service.sell_hold(qty, expires_at, order_id)

    async def get_hold(self, hold_id: str) -> Hold:
        return await self._service.get_hold(hold_id)

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        return await self._service.confirm(hold_id, order_id)

    async def release(self, hold_id: str) -> int:
        return await self._service.release(hold_id)

    async def store_id(self) -> str:
        return self._service.store_id

    async def ready(self) -> bool:
        return True

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<LocalVacancyClient {self._service!r}>"
