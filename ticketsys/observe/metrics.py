"""Metrics and their Prometheus text exposition (format 0.0.4), written directly.

Why not prometheus-client on the hot path: its ``labels(...)`` looks a child up under a lock
and every ``inc``/``observe`` takes another; a purchase updates several series, and the budget
for all of observability is a few microseconds a request. Here a series is a plain object
found once (callers keep it, or look it up in a dict by a tuple they precomputed), a counter is
a number added to, a histogram's value is appended to a list and sorted into its bucket later
(``Series``). Nothing is rendered until a scrape asks: then ``Registry.render`` writes every
family, and gauges that are cheap to read only then (RSS, open fds) are computed by their
callbacks.

The event loop is single-threaded, and so is every update: no locks. (A GC callback runs
between bytecodes of the same thread; a pause it records while its own series settles may be
lost, one value of thousands.)
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence

Labels = tuple[str, ...]

# Latency bounds in seconds, 50 us to 1 s: fine where a loopback request lives (a purchase
# answers in 0.1-0.3 ms), coarse where only an outage does.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00005, 0.000075, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075,
    0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip


def escape(value: str) -> str:
    """A label value as the text format quotes it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{name}="{escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


class Metric:
    """A family: a name, its help, its label names; subclasses hold the series."""

    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.label_names = tuple(labels)

    def samples(self) -> Iterable[str]:
        raise NotImplementedError

    def render(self) -> str:
        help = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        head = f"# HELP {self.name} {help}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(f"{line}\n" for line in self.samples())


class Counter(Metric):
    """A total that only rises. ``values`` is public on purpose: the hot path adds to
    ``counter.values[labels]`` itself when it has the key precomputed."""

    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        assert name.endswith("_total"), name
        super().__init__(name, help, labels)
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), by: float = 1) -> None:
        self.values[labels] = self.values.get(labels, 0) + by

    def samples(self) -> Iterable[str]:
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


class Gauge(Metric):
    """A value read at scrape time from ``read``: label values -> value."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help: str,
        read: Callable[[], Iterable[tuple[Labels, float]]],
        labels: Sequence[str] = (),
    ) -> None:
        super().__init__(name, help, labels)
        self.read = read

    def samples(self) -> Iterable[str]:
        for labels, value in sorted(self.read()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


class CounterFunc(Gauge):
    """A counter whose total is kept elsewhere (the kernel's CPU time, the GC's collections)
    and read at scrape time."""

    kind = "counter"


class Series:
    """One histogram series: counts per bucket (not cumulative until rendered) and their sum.

    A value is recorded by ``record``, which is the ``append`` of a list of pending values: a
    call with no Python frame, a tenth of what sorting it into its bucket there and then cost
    a request. ``settle`` sorts what is pending into the buckets: before each scrape (so a
    scrape sees every value recorded before it) and on the telemetry's timer, which bounds
    what waits (a tenth of a second of requests)."""

    __slots__ = ("bounds", "counts", "pending", "record", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0
        self.pending: list[float] = []
        self.record: Callable[[float], None] = self.pending.append

    @property
    def count(self) -> int:
        self.settle()
        return sum(self.counts)

    def settle(self) -> None:
        pending = self.pending
        if not pending:
            return
        # Sorted (in C, with its fast path for floats), each bucket's count is the distance
        # between two bisections: half the work of finding each value's bucket in turn.
        pending.sort()
        counts, below = self.counts, 0
        for index, bound in enumerate(self.bounds):
            # bisect_right: a value equal to a bound belongs to that bound's bucket (le = "<=").
            upto = bisect_right(pending, bound, below)
            counts[index] += upto - below
            below = upto
        counts[-1] += len(pending) - below
        self.sum += sum(pending)
        pending.clear()  # the same list: ``record`` stays bound to it


class Histogram(Metric):
    kind = "histogram"

    def __init__(
        self, name: str, help: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> None:
        super().__init__(name, help, labels)
        assert list(buckets) == sorted(set(buckets)) and buckets, buckets
        self.bounds = tuple(float(b) for b in buckets)
        self.series: dict[Labels, Series] = {}

    def labels(self, *values: str) -> Series:
        """The series of these label values, made on first use; keep it to skip the lookup."""
        assert len(values) == len(self.label_names), (self.name, values)
        found = self.series.get(values)
        if found is None:
            found = self.series[values] = Series(self.bounds)
        return found

    def settle(self) -> None:
        for series in list(self.series.values()):
            series.settle()

    def samples(self) -> Iterable[str]:
        self.settle()
        bounds = [_number(b) for b in self.bounds] + ["+Inf"]
        for labels, series in sorted(self.series.items()):
            running = 0
            for bound, count in zip(bounds, series.counts, strict=True):
                running += count
                le = _labels(self.label_names, labels, f'le="{bound}"')
                yield f"{self.name}_bucket{le} {running}"
            names = _labels(self.label_names, labels)
            yield f"{self.name}_sum{names} {_number(series.sum)}"
            yield f"{self.name}_count{names} {running}"


CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class Registry:
    """The families one app exports, in the order they were added."""

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}

    def add(self, metric: Metric) -> Metric:
        assert metric.name not in self.metrics, f"metric {metric.name} registered twice"
        self.metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        found = Counter(name, help, labels)
        self.add(found)
        return found

    def histogram(
        self, name: str, help: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        found = Histogram(name, help, labels, buckets)
        self.add(found)
        return found

    def gauge(
        self,
        name: str,
        help: str,
        read: Callable[[], Iterable[tuple[Labels, float]]],
        labels: Sequence[str] = (),
        *,
        counter: bool = False,
    ) -> Gauge:
        found = (CounterFunc if counter else Gauge)(name, help, read, labels)
        self.add(found)
        return found

    def settle(self) -> None:
        """Sort every histogram's pending values into its buckets."""
        for metric in self.metrics.values():
            if isinstance(metric, Histogram):
                metric.settle()

    def render(self) -> bytes:
        return "".join(metric.render() for metric in self.metrics.values()).encode("utf-8")

    def __repr__(self) -> str:
        return f"<Registry metrics={len(self.metrics)}>"
