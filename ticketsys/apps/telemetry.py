"""One app's telemetry: its metrics registry, the request wrapper that counts and times every
answer and gives it a request id, and the ``/metrics`` endpoint.

``observe_requests`` wraps ``App.handle`` once, at construction (as CORS does), so the embedded
server's direct dispatch and the ASGI path (hypercorn, uvicorn) are counted alike. Per request
it costs a dict lookup for the route's series, two ``perf_counter`` calls, a ``bisect``, a
context-variable set and reset, and one header more on the answer (benchmarks/README.md,
"Observability overhead", has the measured cost).
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ticketsys import __version__
from ticketsys.domain.errors import TicketsysError
from ticketsys.domain.models import Stock
from ticketsys.http import request_id
from ticketsys.http.application import App
from ticketsys.http.models import Handler, Request, Response
from ticketsys.http.routing import Route
from ticketsys.observe.metrics import CONTENT_TYPE, Labels, Registry, Series
from ticketsys.observe.process import GcWatch, LagProbe, register_process

access_log = logging.getLogger("ticketsys.access")

UNMATCHED = "unmatched"  # the route label of every path no route serves: hostile paths make no series
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


class RouteStats:
    """The answers of one route template and method: counts by status, and latency. The
    request wrapper updates both inline (a method call is a tenth of its budget)."""

    __slots__ = ("latency", "statuses")

    def __init__(self, latency: Series) -> None:
        self.statuses: dict[int, int] = {}
        self.latency = latency


class Telemetry:
    """What one app exports, and the hooks that start and stop the process probes."""

    def __init__(self, service: str, mode: str, store: str, *, access: bool = False) -> None:
        self.service = service
        self.mode = mode
        self.store = store
        self.access = access
        self.started_at = time.time()
        self.registry = Registry()
        self._stats: dict[tuple[str, str], RouteStats] = {}
        self._latency = self.registry.histogram(
            "ticketsys_http_request_duration_seconds",
            "Time from the request read to the answer handed to the server, by route template.",
            ["route", "method"],
        )
        self.bounds = self._latency.bounds
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
        # Awaited before each scrape: refreshes figures that need the loop (the stock's parts).
        self.before_scrape: list[Callable[[], Awaitable[None]]] = []
        # What the embedded server reports of itself, once it is serving (None under others).
        self.connections: Callable[[], int] | None = None
        self.registry.gauge(
            "ticketsys_http_connections", "Client connections open (embedded server only).", self._connections
        )
        self.make_id = request_id.IdMaker()

    def uptime(self) -> float:
        return time.time() - self.started_at

    def _connections(self) -> Iterable[tuple[Labels, float]]:
        return () if self.connections is None else (((), float(self.connections())),)

    def stats(self, method: str, route: str) -> RouteStats:
        """The series of a route template and method, made on first use."""
        key = (method, route)
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = RouteStats(self._latency.labels(route, method))
        return found

    def _request_counts(self) -> Iterable[tuple[Labels, float]]:
        for (method, route), stats in list(self._stats.items()):
            for status, count in list(stats.statuses.items()):
                yield (route, method, str(status)), float(count)

    async def start(self) -> None:
        self.gc.install()
        self.lag.start()

    async def stop(self) -> None:
        self.lag.stop()
        self.gc.remove()

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


def observe_requests(app: App, telemetry: Telemetry) -> None:
    """Wrap ``app.handle``: a request id for every request, its series counted and timed.

    The hot path of every request, so written flat: the header found by a loop rather than
    ``Request.header``, the id's check a compiled regex, the series updated inline, the id
    handed back in ``Request.reply_headers`` for the server to write."""
    handle: Handler = app.handle
    # The series by (method, route template), as App.handle left the template on the request:
    # one lookup, no second match of the path. A path no route serves is UNMATCHED, and a
    # method outside the standard ones "other", so hostile requests add no series.
    by_route: dict[tuple[str, str | None], RouteStats] = {}

    def find(request: Request) -> RouteStats:
        if request.method not in _METHODS:  # not kept: the key would be the client's to choose
            return telemetry.stats("other", request.route or UNMATCHED)
        stats = by_route[(request.method, request.route)] = telemetry.stats(
            request.method, request.route or UNMATCHED
        )
        return stats

    header, valid = request_id.HEADER, request_id.VALID.fullmatch
    prefix, counter = telemetry.make_id.prefix + b"-", telemetry.make_id.counter  # IdMaker, inlined
    current, perf_counter, bounds = request_id.current, time.perf_counter, telemetry.bounds
    access = telemetry.access

    async def handle_observed(request: Request) -> Response:
        raw = None
        for name, value in request.headers:
            if name == header:
                raw = value
                break
        rid = prefix + b"%x" % next(counter) if raw is None or valid(raw) is None else raw
        token = current.set(rid)
        started = perf_counter()
        try:
            response = await handle(request)
            elapsed = perf_counter() - started
            stats = by_route.get((request.method, request.route)) or find(request)
            status = response.status
            statuses = stats.statuses
            statuses[status] = statuses.get(status, 0) + 1
            latency = stats.latency
            latency.counts[bisect_left(bounds, elapsed)] += 1
            latency.sum += elapsed
            if access:
                _log_access(request, status, elapsed)
        finally:
            current.reset(token)
        request.reply_headers = ((header, rid),)  # the server adds it: no rebuilt response
        return response

    app.handle = handle_observed  # type: ignore[method-assign]


def _log_access(request: Request, status: int, elapsed: float) -> None:
    peer = request.client
    fields: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "peer": f"{peer[0]}:{peer[1]}" if peer else "-",
    }
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
        latency.labels(store, operation).observe(seconds)

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
