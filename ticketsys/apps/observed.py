"""What Ticket does, counted: sales, and every call to Vacancy timed by how it travels.

Both are wrappers chosen in apps/ (as the VacancyClient itself is), so TicketService and the
checkouts know nothing of metrics:

- ``ObservedVacancyClient`` times each call of a ``VacancyClient``, labelled by operation and
  ``transport``: ``local`` (a direct await), ``http`` (Vacancy in another process) or ``redis``
  (the monolith's stock in Redis). A business refusal (sold out, no such hold) is an answer,
  not an error; an error is a call that failed (``VacancyUnavailable``, a store down).
- ``ObservedCheckout`` counts purchases by outcome, tickets sold, idempotent replays. In the
  monolith with one store, a purchase is a single atomic write with no call to Vacancy at all:
  that write is the in-process equivalent of the hop, so it is timed as the ``sell`` operation
  over ``local``, comparable with the microservices' ``sell`` over ``http``.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ticketsys.domain.errors import SoldOut, StoreUnavailable, TicketsysError, VacancyUnavailable
from ticketsys.domain.interfaces import VacancyClient
from ticketsys.domain.models import Hold, Order, Stock
from ticketsys.observe.metrics import Counter, Histogram, Registry, Series
from ticketsys.ticket.checkout import Checkout

T = TypeVar("T")

# The failures that make a call an error (anything not a TicketsysError is a bug, and one too).
_FAILURES = (VacancyUnavailable, StoreUnavailable)


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
        series = self.latency.labels(operation, transport)
        errors = self.errors

        async def timed(call: Callable[[], Awaitable[T]]) -> T:
            started = time.perf_counter()
            try:
                return await call()
            except Exception as exc:
                if isinstance(exc, _FAILURES) or not isinstance(exc, TicketsysError):
                    errors.inc((operation, transport, type(exc).__name__))
                raise
            finally:
                series.observe(time.perf_counter() - started)

        return timed


class SaleMetrics:
    """The sale's totals. The purchase's are plain ints (an attribute added to is the cheapest
    count there is), read by the registry at scrape time."""

    def __init__(self, registry: Registry) -> None:
        self.sold = self.sold_out = self.failed = self.tickets = self.replays = 0
        registry.gauge(
            "ticketsys_purchases_total",
            "Purchases answered, by outcome (sold, sold_out, failed).",
            lambda: ((("sold",), self.sold), (("sold_out",), self.sold_out), (("failed",), self.failed)),
            ["outcome"],
            counter=True,
        )
        registry.gauge(
            "ticketsys_tickets_sold_total",
            "Tickets sold (purchases and confirmed holds).",
            lambda: (((), self.tickets),),
            counter=True,
        )
        registry.gauge(
            "ticketsys_idempotent_replays_total",
            "Requests answered by an earlier answer (same Idempotency-Key).",
            lambda: (((), self.replays),),
            counter=True,
        )
        self.holds = registry.counter(
            "ticketsys_holds_total",
            "Holds, by outcome (held, sold_out, confirmed, released, failed).",
            ["outcome"],
        )


class ObservedCheckout:
    def __init__(self, inner: Checkout, sale: SaleMetrics, hop: HopMetrics | None = None) -> None:
        self._inner = inner
        self._sale = sale
        self._hop = hop
        # The purchase is the hot path: its series is found once, and updated inline.
        self._sell: Series | None = None if hop is None else hop.latency.labels("sell", "local")
        self._confirm = None if hop is None else hop.timer("confirm", "local")

    @property
    def store_id(self) -> str:
        return self._inner.store_id

    async def purchase(self, qty: int, key: str | None, fingerprint: str) -> Order:
        sale, series = self._sale, self._sell
        started = time.time() if key is not None else 0.0  # only a keyed purchase can be a replay
        began = time.perf_counter()
        try:
            order = await self._inner.purchase(qty, key, fingerprint)
        except SoldOut:
            sale.sold_out += 1
            raise
        except Exception as exc:
            sale.failed += 1
            if self._hop is not None and (isinstance(exc, _FAILURES) or not isinstance(exc, TicketsysError)):
                self._hop.errors.inc(("sell", "local", type(exc).__name__))
            raise
        finally:
            if series is not None:
                elapsed = time.perf_counter() - began
                series.counts[bisect_left(series.bounds, elapsed)] += 1
                series.sum += elapsed
        if key is not None and order.created_at < started:  # made before: an earlier answer, again
            sale.replays += 1
        else:
            sale.sold += 1
            sale.tickets += order.qty
        return order

    async def confirm(self, hold_id: str, key: str | None, fingerprint: str) -> Order:
        started = time.time()
        try:
            if self._confirm is None:
                order = await self._inner.confirm(hold_id, key, fingerprint)
            else:
                order = await self._confirm(lambda: self._inner.confirm(hold_id, key, fingerprint))
        except Exception:
            self._sale.holds.inc(("failed",))
            raise
        if key is not None and order.created_at < started:  # an earlier answer, given again
            self._sale.replays += 1
        else:
            self._sale.holds.inc(("confirmed",))
            self._sale.tickets += order.qty
        return order

    async def order(self, order_id: str) -> Order | None:
        return await self._inner.order(order_id)

    async def recall(self, key: str, fingerprint: str) -> Order | None:
        return await self._inner.recall(key, fingerprint)

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        await self._inner.close()

    def __repr__(self) -> str:
        return f"<Observed {self._inner!r}>"


class ObservedVacancyClient:
    def __init__(self, inner: VacancyClient, hop: HopMetrics, transport: str, sale: SaleMetrics) -> None:
        self.inner = inner
        self.transport = transport
        self._sale = sale
        t = transport
        self._available, self._stock = hop.timer("available", t), hop.timer("stock", t)
        self._hold, self._sell = hop.timer("hold", t), hop.timer("sell", t)
        self._get_hold, self._confirm = hop.timer("get_hold", t), hop.timer("confirm", t)
        self._release, self._store_id = hop.timer("release", t), hop.timer("store_id", t)

    async def available(self) -> int:
        return await self._available(self.inner.available)

    async def stock(self) -> Stock:
        return await self._stock(self.inner.stock)

    async def hold(self, qty: int, ttl: float, key: str | None = None) -> Hold:
        try:
            hold = await self._hold(lambda: self.inner.hold(qty, ttl, key))
        except SoldOut:
            self._sale.holds.inc(("sold_out",))
            raise
        except Exception:
            self._sale.holds.inc(("failed",))
            raise
        self._sale.holds.inc(("held",))
        return hold

    async def sell_hold(self, qty: int, expires_at: float, order_id: str) -> Hold:
        return await self._sell(lambda: self.inner.sell_hold(qty, expires_at, order_id))  # every purchase

    async def get_hold(self, hold_id: str) -> Hold:
        return await self._get_hold(lambda: self.inner.get_hold(hold_id))

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        return await self._confirm(lambda: self.inner.confirm(hold_id, order_id))

    async def release(self, hold_id: str) -> int:
        remaining = await self._release(lambda: self.inner.release(hold_id))
        self._sale.holds.inc(("released",))
        return remaining

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
