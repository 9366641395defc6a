"""The one contract Ticket has with Vacancy, whichever side of a socket it is on."""

from __future__ import annotations

from typing import Protocol

from ticketsys.domain.models import Order, Reservation


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

    async def cancel(self, qty: int, key: str) -> Reservation:
        """Undo the reserve of ``qty`` made with ``key``; see ``StockStore.cancel``."""
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


class StockStore(Protocol):
    """Where the stock lives: in this process (``StockManager``, in memory or on a journal)
    or in a shared engine (``RedisStock``). Every change is all-or-nothing."""

    async def current(self) -> int:
        """Tickets available now."""
        ...

    async def reserve(self, qty: int, key: str | None = None) -> Reservation:
        """Take ``qty`` if that many are left; a repeated ``key`` returns its first result."""
        ...

    async def release(self, qty: int, key: str | None = None) -> Reservation:
        """Put ``qty`` back; raises ``OverRelease`` past the capacity."""
        ...

    async def cancel(self, qty: int, key: str) -> Reservation:
        """Undo the reserve of ``qty`` made with ``key``: put ``qty`` back and forget ``key``,
        so that a retry of the same purchase reserves anew (a plain release would leave the
        key answering "reserved" while the tickets are back on sale: sold twice). Does
        nothing when no reserve with ``key`` is remembered (already cancelled), so repeating
        it is safe; ``IdempotencyConflict`` if ``key`` made something else."""
        ...

    async def restock(self, qty: int) -> Reservation:
        """Add ``qty`` to both the capacity and the available tickets."""
        ...

    async def open(self) -> None:
        """Connect or recover; ``INITIAL_STOCK`` seeds only a store being created."""
        ...

    async def close(self) -> None: ...


class OrderStore(Protocol):
    """Orders and the idempotency keys of the purchases that made them."""

    async def get(self, order_id: str) -> Order | None: ...

    async def recall(self, key: str, fingerprint: str) -> Order | None:
        """The order an earlier purchase with ``key`` made; ``IdempotencyConflict`` if that
        purchase asked for something else (another ``fingerprint``)."""
        ...

    async def add(self, order: Order, key: str | None, fingerprint: str) -> Order:
        """Record ``order`` and return the order on record for ``key``: ``order`` itself, or
        the one another process recorded first for the same key. Raises ``StoreUnavailable``
        only if nothing was recorded."""
        ...

    async def abandon(self, order: Order, key: str | None) -> bool:
        """After ``add`` failed: make sure ``order`` can never be recorded later (a write that
        timed out may still run). True when no order stands on its reservation, which may then
        be undone; False when one does (``order`` went in after all, or another replica's
        order for ``key``). Raises ``StoreUnavailable`` when it cannot tell: the reservation
        must then stay, since undoing it could sell its tickets twice."""
        ...

    async def durable(self) -> None:
        """Wait until what was added is as durable as the store promises."""
        ...

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` if the store cannot be reached now (readiness)."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...
