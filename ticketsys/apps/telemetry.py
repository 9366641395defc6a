"""One app's telemetry: its metrics registry, the histogram of every answer, the access log,
and the ``/metrics`` endpoint.

``Telemetry.recorder`` is the app's ``recorder``: ``App.handle`` times each answer and hands
its seconds to the series of its route template, method and status, so the embedded server's
direct dispatch and the ASGI path (hypercorn, uvicorn) are counted alike. Per request that is
three dict lookups and a list append (benchmarks/README.md, "Observability overhead", has the
measured cost); the requests counter is read from the histogram's counts. The request id is
the toolkit's own (http/request_id.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ticketsys import __version__
from ticketsys.domain.errors import TicketsysError
from ticketsys.domain.models import Stock
from ticketsys.http.application import Record
from ticketsys.http.models import Request, Response
from ticketsys.http.routing import Route
from ticketsys.observe.metrics import CONTENT_TYPE, Labels, Registry
from ticketsys.observe.process import GcWatch, LagProbe, register_process

access_log = logging.getLogger("ticketsys.access")

UNMATCHED = "unmatched"  # the route label of every path no route serves: hostile paths make no series
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


# How often the histograms' pending values are sorted into their buckets (metrics.Series):
# what waits is bounded by this much of the traffic, and each settling stays short (at 40k
# requests a second, ~0.4 ms every 0.1 s).
SETTLE_INTERVAL = 0.1


class Telemetry:
    """What one app exports, and the hooks that start and stop the process probes."""

    def __init__(self, service: str, mode: str, store: str, *, access: bool = False) -> None:
        self.service = service
        self.mode = mode
        self.store = store
        self.access = access
        self.started_at = time.time()
        self.registry = Registry()
        self._latency = self.registry.histogram(
            "ticketsys_http_request_duration_seconds",
            "Time from the request read to the answer handed to the server, by route template, "
            "method and status.",
            ["route", "method", "status"],
        )
        self.registry.gauge(
            "ticketsys_http_requests_total",
            "Requests answered, by route template, method and status.",
            self._request_counts,
            ["route", "method", "status"],
            counter=True,
        )
        build = ((__version__, service, mode, store),)
        self.registry.gauge(
            "ticketsys_build_info",
            "Always 1: the version, service, deployment mode and store kind of this process.",
            lambda: ((labels, 1.0) for labels in build),
            ["version", "service", "mode", "store"],
        )
        self.registry.gauge(
            "ticketsys_uptime_seconds", "Seconds since the app was built.", lambda: (((), self.uptime()),)
        )
        self.gc: GcWatch
        self.lag: LagProbe
        self.gc, self.lag = register_process(self.registry)
        self._settler: asyncio.TimerHandle | None = None
        # Awaited before each scrape: refreshes figures that need the loop (the stock's parts).
        self.before_scrape: list[Callable[[], Awaitable[None]]] = []
        # What the embedded server reports of itself, once it is serving (None under others).
        self.connections: Callable[[], int] | None = None
        self.registry.gauge(
            "ticketsys_http_connections", "Client connections open (embedded server only).", self._connections
        )

    def uptime(self) -> float:
        return time.time() - self.started_at

    def _connections(self) -> Iterable[tuple[Labels, float]]:
        return () if self.connections is None else (((), float(self.connections())),)

    def recorder(self, route: str | None, method: str, status: int) -> Record:
        """``App.recorder``: where the seconds of these answers go. A path no route serves is
        UNMATCHED, and a method outside the standard ones "other", so hostile requests add no
        series."""
        method = method if method in _METHODS else "other"
        return self._latency.labels(route or UNMATCHED, method, str(status)).record

    def _request_counts(self) -> Iterable[tuple[Labels, float]]:
        # The answers' histogram counts them already: the counter is its counts, by status.
        for labels, series in list(self._latency.series.items()):
            yield labels, float(series.count)

    async def start(self) -> None:
        self.gc.install()
        self.lag.start()
        self._settle(asyncio.get_running_loop())

    async def stop(self) -> None:
        if self._settler is not None:
            self._settler.cancel()
            self._settler = None
        self.lag.stop()
        self.gc.remove()

    def _settle(self, loop: asyncio.AbstractEventLoop) -> None:
        self.registry.settle()
        self._settler = loop.call_later(SETTLE_INTERVAL, self._settle, loop)

    async def scrape(self) -> bytes:
        for refresh in self.before_scrape:
            await refresh()
        return self.registry.render()

    def __repr__(self) -> str:
        return f"<Telemetry {self.service} {self.registry!r}>"


def metrics_route(telemetry: Telemetry) -> Route:
    async def metrics(request: Request) -> Response:
        return Response(200, await telemetry.scrape(), CONTENT_TYPE)

    return Route(
        "/metrics",
        frozenset({"GET"}),
        metrics,
        name="metrics",
        summary="Prometheus metrics (text format 0.0.4)",
        include_in_schema=False,
    )


def log_access(request: Request, response: Response, elapsed: float) -> None:
    """``App.on_answer`` under ``ACCESS_LOG=1``: one line per request."""
    peer = request.client
    status = response.status
    fields: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "peer": f"{peer[0]}:{peer[1]}" if peer else "-",
    }
    if request.log_fields:
        fields.update(request.log_fields)
    access_log.info(
        '%s "%s %s" %d %.3fms',
        fields["peer"],
        request.method,
        request.path,
        status,
        fields["duration_ms"],
        extra={"fields": fields},
    )


StoreTimer = Callable[[str, str, float], None]


def store_timer(registry: Registry) -> StoreTimer:
    """The callback the stores report slow calls to: (store, operation, seconds)."""
    latency = registry.histogram(
        "ticketsys_store_operation_seconds",
        "Store calls: SQLite commits and fsyncs by database, Redis commands by name.",
        ["store", "operation"],
    )

    def timed(store: str, operation: str, seconds: float) -> None:
        latency.labels(store, operation).record(seconds)

    return timed


def stock_gauge(telemetry: Telemetry, read: Callable[[], Awaitable[Stock]]) -> None:
    """``ticketsys_stock_tickets{part}``: the stock's parts, read before each scrape (a scrape
    while the store is down shows the last figures read, and counts the failure)."""
    last: dict[str, float] = {}
    failures = telemetry.registry.counter(
        "ticketsys_stock_read_errors_total", "Scrapes that could not read the stock's parts."
    )
    failures.inc((), 0)

    async def refresh() -> None:
        try:
            stock = await read()
        except TicketsysError:
            failures.inc()
            return
        last.update(available=stock.available, held=stock.held, sold=stock.sold, capacity=stock.capacity)

    telemetry.before_scrape.append(refresh)
    telemetry.registry.gauge(
        "ticketsys_stock_tickets",
        "The stock's parts: available + held + sold == capacity.",
        lambda: (((part,), value) for part, value in last.items()),
        ["part"],
    )
