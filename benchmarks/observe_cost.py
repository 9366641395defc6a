"""What observability costs a purchase, in-process (issue 14): the choice of metrics library,
and each wrapper's share. Prints a markdown table of ns per operation (best of 7 rounds).

    .venv/bin/python benchmarks/observe_cost.py

1. One request's metric updates (a counter by route/method/status, a latency histogram by
   route) three ways: prometheus-client looking the children up per request (``labels()``, as a
   middleware does), prometheus-client with the children cached, and ``ticketsys.observe``.
2. A monolith purchase (memory store) through ``App.handle`` with everything on, against the
   same app's handler without the request wrapper (request id, route series, timing, the
   header); both still count the sale (the checkout's wrapper).

The load runner's ``--baseline`` measures the whole, over sockets; this says where it goes.
"""

from __future__ import annotations

import asyncio
import timeit
from collections.abc import Awaitable, Callable

import orjson
import uvloop
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram

from ticketsys.apps.monolith import build_monolith
from ticketsys.config import MEMORY, Settings
from ticketsys.domain.models import MAX_STOCK
from ticketsys.http.application import App
from ticketsys.http.models import Request, Response
from ticketsys.observe.metrics import LATENCY_BUCKETS, Registry

ROUNDS = 7
UPDATES = 200_000
PURCHASES = 20_000
ROUTE, METHOD = "/api/v1/purchase", "POST"


def _best(run: Callable[[], object], number: int) -> float:
    """ns per call, the best round (the machine is shared: the least disturbed one)."""
    return min(timeit.repeat(run, number=number, repeat=ROUNDS)) / number * 1e9


def updates() -> dict[str, float]:
    registry = CollectorRegistry()
    counter = PromCounter("req_total", "r", ["route", "method", "status"], registry=registry)
    histogram = PromHistogram(
        "lat_seconds", "l", ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry
    )

    def labelled() -> None:
        counter.labels(ROUTE, METHOD, "200").inc()
        histogram.labels(ROUTE, METHOD).observe(0.00012)

    child_counter, child_histogram = counter.labels(ROUTE, METHOD, "200"), histogram.labels(ROUTE, METHOD)

    def cached() -> None:
        child_counter.inc()
        child_histogram.observe(0.00012)

    series = Registry().histogram("lat_seconds", "l", ["route", "method"]).labels(ROUTE, METHOD)
    statuses: dict[int, int] = {}

    def ours() -> None:  # what RouteStats.observe does
        statuses[200] = statuses.get(200, 0) + 1
        series.observe(0.00012)

    return {
        "prometheus-client, labels() per request": _best(labelled, UPDATES),
        "prometheus-client, children cached": _best(cached, UPDATES),
        "ticketsys.observe": _best(ours, UPDATES),
    }


def purchases() -> dict[str, float]:
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    app = build_monolith(Settings(initial_stock=MAX_STOCK, max_qty=1000, stock_store=MEMORY))
    loop.run_until_complete(app.startup())
    request = Request(METHOD, ROUTE, [(b"content-type", b"application/json")], orjson.dumps({"qty": 1}))
    observed = app.handle
    unobserved = App.handle.__get__(app)  # the class's handler: routing and the endpoint alone

    def batch(handle: Callable[[Request], Awaitable[Response]]) -> Callable[[], None]:
        async def many() -> None:
            for _ in range(100):
                await handle(request)

        return lambda: loop.run_until_complete(many())

    try:
        return {
            "purchase, all observability on": _best(batch(observed), PURCHASES // 100) / 100,
            "purchase, without the request wrapper": _best(batch(unobserved), PURCHASES // 100) / 100,
        }
    finally:
        loop.run_until_complete(app.shutdown())
        loop.close()


def main() -> None:
    rows = {**updates(), **purchases()}
    print("| operation | ns |\n|---|---|")
    for name, ns in rows.items():
        print(f"| {name} | {ns:,.0f} |")


if __name__ == "__main__":
    main()
