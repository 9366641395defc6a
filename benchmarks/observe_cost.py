"""What one request's metric updates cost, by the metrics library chosen (issue 14). Prints a
markdown table of ns per request (best of 7 rounds).

    .venv/bin/python benchmarks/observe_cost.py

A counter by route/method/status and a latency histogram by route, three ways: prometheus-
client looking the children up per request (``labels()``, as a middleware does), prometheus-
client with the children cached, and ``ticketsys.observe`` as ``App.handle`` uses it (one
histogram series per route, method and status, whose count is the counter; a list append per
request, sorted into buckets later).

What all of observability costs a purchase is counted by ``benchmarks/instructions.sh`` against
a copy with it cut out (``benchmarks/observe_off.py``), and measured by
``benchmarks/side_by_side.sh``; benchmarks/README.md, "Observability overhead", has both.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram

from ticketsys.observe.metrics import LATENCY_BUCKETS, Registry

ROUNDS = 7
UPDATES = 200_000
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

    series = (
        Registry().histogram("lat_seconds", "l", ["route", "method", "status"]).labels(ROUTE, METHOD, "200")
    )
    record = series.record

    def ours() -> None:  # what App.handle does (the counter is the histogram's count)
        record(0.00012)
        if len(series.pending) >= 1000:  # the telemetry's timer, every 0.1 s
            series.settle()

    return {
        "prometheus-client, labels() per request": _best(labelled, UPDATES),
        "prometheus-client, children cached": _best(cached, UPDATES),
        "ticketsys.observe": _best(ours, UPDATES),
    }


def main() -> None:
    rows = updates()
    print("| operation | ns |\n|---|---|")
    for name, ns in rows.items():
        print(f"| {name} | {ns:,.0f} |")


if __name__ == "__main__":
    main()
