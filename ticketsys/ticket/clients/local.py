"""The in-process VacancyClient: a direct await, no serialisation, no socket."""

from __future__ import annotations

from ticketsys.domain.models import Reservation
from ticketsys.vacancy.service import VacancyService


class LocalVacancyClient:
    def __init__(self, service: VacancyService) -> None:
        self._service = service

    async def available(self) -> int:
        return await self._service.available()

    async def reserve(self, qty: int, key: str | None = None) -> Reservation:
        return await self._service.reserve(qty, key)

    async def release(self, qty: int, key: str | None = None) -> Reservation:
        return await self._service.release(qty, key)

    async def cancel(self, qty: int, key: str) -> Reservation:
        return await self._service.cancel(qty, key)

    async def ready(self) -> bool:
        return True

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<LocalVacancyClient {self._service!r}>"
