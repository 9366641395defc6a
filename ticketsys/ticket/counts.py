"""What Ticket sold, counted where it happens, and the hook through which the monolith's
in-process sell is timed.

Plain ints, added to inline by ``TicketService`` (the one place every purchase, hold and
confirm passes, in every mode): the cheapest count there is, where a wrapper around the
service cost a purchase a coroutine frame. The telemetry reads them at scrape time (apps/
observed.py); nothing here knows of metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ticketsys.domain.errors import SoldOut, StoreUnavailable, TicketsysError, VacancyUnavailable

# The failures that make a call to the stock an error (anything not a TicketsysError is a bug,
# and one too); a business refusal (sold out, no such hold) is an answer.
FAILURES = (VacancyUnavailable, StoreUnavailable)


def is_failure(exc: BaseException) -> bool:
    return isinstance(exc, FAILURES) or not isinstance(exc, TicketsysError)


class SaleCounts:
    """Purchases by outcome, tickets sold (purchases and confirmed holds), requests answered by
    an earlier answer (same ``Idempotency-Key``), and holds by outcome."""

    __slots__ = ("failed", "holds", "replays", "sold", "sold_out", "tickets")

    def __init__(self) -> None:
        self.sold = self.sold_out = self.failed = self.tickets = self.replays = 0
        self.holds: dict[str, int] = {}

    def refused(self, exc: BaseException) -> None:
        """A purchase that sold nothing."""
        if isinstance(exc, SoldOut):
            self.sold_out += 1
        else:
            self.failed += 1

    def hold(self, outcome: str) -> None:
        self.holds[outcome] = self.holds.get(outcome, 0) + 1

    def __repr__(self) -> str:
        return f"<SaleCounts sold={self.sold} tickets={self.tickets} sold_out={self.sold_out}>"


@dataclass(frozen=True, slots=True)
class SellTiming:
    """Where ``StoreCheckout`` reports each in-process sell: its seconds to ``record`` (a
    histogram's list append: no Python call on the hot path), and what it raised to
    ``failed``."""

    record: Callable[[float], None]
    failed: Callable[[BaseException], None]
