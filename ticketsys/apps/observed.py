"""What Ticket does, counted: the sale, and every call to Vacancy timed by how it travels.

- ``SaleMetrics`` exports the counts ``TicketService`` keeps (ticket/counts.py): purchases by
  outcome, tickets sold, idempotent replays, holds by outcome.
- ``ObservedVacancyClient`` times each call of a ``VacancyClient``, labelled by operation and
  ``transport``: ``local`` (a direct await), ``http`` (Vacancy in another process) or ``redis``
  (the monolith's stock in Redis). A business refusal (sold out, no such hold) is an answer,
  not an error; an error is a call that failed (``VacancyUnavailable``, a store down).
- In the monolith with one store, a purchase is a single atomic write with no call to Vacancy
  at all: that write is the in-process equivalent of the hop, so ``StoreCheckout`` times it
  (``sell_timing``) as the ``sell`` operation over ``local``, comparable with the
  microservices' ``sell`` over ``http``. On Redis, the monolith's purchase is one script
  (storage/redis/sale.py), timed the same way as ``sell`` over ``redis``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TypeVar

from ticketsys.domain.interfaces import VacancyClient
from ticketsys.domain.models import Hold, Stock
from ticketsys.observe.metrics import Counter, Histogram, Registry
from ticketsys.ticket.counts import SaleCounts, SellTiming, is_failure

T = TypeVar("T")


class HopMetrics:
    """The Vacancy call as Ticket sees it."""

    def __init__(self, registry: Registry) -> None:
        self.latency: Histogram = registry.histogram(
            "ticketsys_vacancy_call_duration_seconds",
            "Ticket's calls to Vacancy, by operation and transport (local, http, redis).",
            ["operation", "transport"],
        )
        self.errors: Counter = registry.counter(
            "ticketsys_vacancy_call_errors_total",
            "Ticket's calls to Vacancy that failed, by operation, transport and error.",
            ["operation", "transport", "error"],
        )

    def timer(self, operation: str, transport: str) -> Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]:
        record = self.latency.labels(operation, transport).record
        failed = self.failure(operation, transport)

        async def timed(call: Callable[[], Awaitable[T]]) -> T:
            started = perf_counter()
            try:
                return await call()
            except Exception as exc:
                failed(exc)
                raise
            finally:
                record(perf_counter() - started)

        return timed

    def failure(self, operation: str, transport: str) -> Callable[[BaseException], None]:
        """What counts a call's exception, if it is a failure."""
        errors = self.errors

        def failed(exc: BaseException) -> None:
            if is_failure(exc):
                errors.inc((operation, transport, type(exc).__name__))

        return failed


class SaleMetrics:
    """The sale's totals, read from the service's counts at scrape time."""

    def __init__(self, registry: Registry, counts: SaleCounts) -> None:
        registry.gauge(
            "ticketsys_purchases_total",
            "Purchases answered, by outcome (sold, sold_out, failed).",
            lambda: (
                (("sold",), counts.sold),
                (("sold_out",), counts.sold_out),
                (("failed",), counts.failed),
            ),
            ["outcome"],
            counter=True,
        )
        registry.gauge(
            "ticketsys_tickets_sold_total",
            "Tickets sold (purchases and confirmed holds).",
            lambda: (((), counts.tickets),),
            counter=True,
        )
        registry.gauge(
            "ticketsys_idempotent_replays_total",
            "Requests answered by an earlier answer (same Idempotency-Key).",
            lambda: (((), counts.replays),),
            counter=True,
        )
        registry.gauge(
            "ticketsys_holds_total",
            "Holds, by outcome (held, sold_out, confirmed, released, failed).",
            lambda: (((outcome,), float(n)) for outcome, n in list(counts.holds.items())),
            ["outcome"],
            counter=True,
        )


def sell_timing(hop: HopMetrics, transport: str = "local") -> SellTiming:
    """A sale in one step (``StoreCheckout``'s, the monolith's purchase script on Redis), as
    the ``sell`` operation over ``transport``."""
    return SellTiming(hop.latency.labels("sell", transport).record, hop.failure("sell", transport))


class ObservedVacancyClient:
    def __init__(self, inner: VacancyClient, hop: HopMetrics, transport: str) -> None:
        self.inner = inner
        self.transport = transport
        t = transport
        self._available, self._stock = hop.timer("available", t), hop.timer("stock", t)
        self._hold = hop.timer("hold", t)
        self._record_sell, self._sell_failed = hop.latency.labels("sell", t).record, hop.failure("sell", t)
        self._get_hold, self._confirm = hop.timer("get_hold", t), hop.timer("confirm", t)
        self._release, self._store_id = hop.timer("release", t), hop.timer("store_id", t)

    async def available(self) -> int:
        return await self._available(self.inner.available)

    async def stock(self) -> Stock:
        return await self._stock(self.inner.stock)

    async def hold(self, qty: int, ttl: float, key: str | None = None) -> Hold:
        return await self._hold(lambda: self.inner.hold(qty, ttl, key))

    async def sell_hold(self, qty: int, expires_at: float, order_id: str) -> Hold:
        # Every purchase: the timer written out, without its coroutine and closure.
        started = perf_counter()
        try:
            return await self.inner.sell_hold(qty, expires_at, order_id)
        except Exception as exc:
            self._sell_failed(exc)
            raise
        finally:
            self._record_sell(perf_counter() - started)

    async def get_hold(self, hold_id: str) -> Hold:
        return await self._get_hold(lambda: self.inner.get_hold(hold_id))

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        return await self._confirm(lambda: self.inner.confirm(hold_id, order_id))

    async def release(self, hold_id: str) -> int:
        return await self._release(lambda: self.inner.release(hold_id))

    async def store_id(self) -> str:
        return await self._store_id(self.inner.store_id)

    async def ready(self) -> bool:
        return await self.inner.ready()

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    def __repr__(self) -> str:
        return f"<Observed {self.inner!r} over {self.transport}>"
