"""The one contract Ticket has with Vacancy, whichever side of a socket it is on."""

from __future__ import annotations

from typing import Protocol

from ticketsys.domain.models import Reservation


class VacancyClient(Protocol):
    """How Ticket reaches Vacancy. ``LocalVacancyClient`` awaits the service in-process;
    ``RemoteVacancyClient`` speaks keep-alive HTTP. TicketService never knows which."""

    async def available(self) -> int:
        """Tickets left. Raises ``VacancyUnavailable`` if Vacancy cannot answer."""
        ...

    async def reserve(self, qty: int, key: str | None = None) -> Reservation:
        """Take ``qty`` tickets, all or nothing. ``success`` is False (and nothing is taken)
        when fewer than ``qty`` are left. Raises ``VacancyUnavailable`` when the outcome is
        unknown (timeout, dead peer): the reserve may have happened. Repeating it is safe only
        with the same ``key``: a key already used returns its first result and takes nothing."""
        ...

    async def release(self, qty: int, key: str | None = None) -> Reservation:
        """Put ``qty`` previously reserved tickets back on sale; ``key`` as for reserve."""
        ...

    async def ready(self) -> bool:
        """Whether Vacancy answers now (for readiness probes); never raises."""
        ...

    async def open(self) -> None:
        """Acquire resources (a connection pool); called once at start-up."""
        ...

    async def close(self) -> None:
        """Release them; called once at shutdown."""
        ...
