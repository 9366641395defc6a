"""The process's own figures: RSS, CPU, open descriptors, start time (read at scrape time),
the garbage collector's collections and pauses (``gc.callbacks``), and event-loop lag.

Names follow prometheus-client's process and platform collectors (``process_*``,
``python_gc_*``) so that dashboards written for them work here.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import sys
import time
from collections.abc import Iterable

from ticketsys.observe.metrics import Histogram, Labels, Registry

# Pauses of the collector: a young collection takes microseconds, a full one of a large heap
# hundreds of milliseconds.
GC_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
# Loop lag: how late a timer fires. Under load a tick is a few ms; 100 ms is an outage.
LAG_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LAG_INTERVAL = 0.25  # seconds between two probes: 4 timers a second cost nothing measurable

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def resident_bytes() -> float:
    """The resident set now (Linux: /proc/self/statm), else the peak getrusage reports."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return float(int(statm.read().split()[1]) * _PAGE)
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return float(peak if sys.platform == "darwin" else peak * 1024)


def open_fds() -> float:
    try:
        return float(len(os.listdir("/proc/self/fd")))
    except OSError:
        return float("nan")


def start_time() -> float:
    """When the process started, in seconds since the epoch."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime"))
        return boot + int(fields[19]) / _TICKS  # field 22 of stat, "starttime", in clock ticks
    except (OSError, StopIteration, IndexError, ValueError):
        return _IMPORTED


_IMPORTED = time.time()


class GcWatch:
    """Times every collection through ``gc.callbacks`` (installed while open)."""

    def __init__(self, pauses: Histogram) -> None:
        self._series = [pauses.labels(str(generation)) for generation in range(3)]
        self._started = 0.0
        self.installed = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._series[info["generation"]].record(time.perf_counter() - self._started)

    def install(self) -> None:
        if not self.installed:
            gc.callbacks.append(self)
            self.installed = True

    def remove(self) -> None:
        if self.installed:
            gc.callbacks.remove(self)
            self.installed = False


class LagProbe:
    """A timer every ``interval``: how late it fires is how long the loop was busy elsewhere."""

    def __init__(self, lag: Histogram, interval: float = LAG_INTERVAL) -> None:
        self.series = lag.labels()
        self.interval = interval
        self.last = 0.0  # the latest lag measured, for the gauge
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self.interval
        self._handle = loop.call_at(self._due, self._fired, loop)

    def _fired(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        self.last = max(0.0, now - self._due)
        self.series.record(self.last)
        self._due = now + self.interval
        self._handle = loop.call_at(self._due, self._fired, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _one(value: float) -> Iterable[tuple[Labels, float]]:
    return (((), value),)


def register_process(registry: Registry) -> tuple[GcWatch, LagProbe]:
    """Add the process's families to ``registry``; the GC watch and the lag probe still have
    to be started (they need the loop, and are stopped at shutdown)."""
    registry.gauge(
        "process_resident_memory_bytes", "Resident memory size in bytes.", lambda: _one(resident_bytes())
    )
    registry.gauge(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        lambda: _one(sum(os.times()[:2])),
        counter=True,
    )
    registry.gauge("process_open_fds", "Number of open file descriptors.", lambda: _one(open_fds()))
    started = start_time()
    registry.gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        lambda: _one(started),
    )
    registry.gauge(
        "python_gc_collections_total",
        "Number of times this generation was collected.",
        lambda: (((str(g),), float(s["collections"])) for g, s in enumerate(gc.get_stats())),
        ["generation"],
        counter=True,
    )
    pauses = registry.histogram(
        "ticketsys_gc_pause_seconds",
        "Time the garbage collector stopped the process, by generation.",
        ["generation"],
        GC_BUCKETS,
    )
    lag = registry.histogram(
        "ticketsys_event_loop_lag_seconds", "How late a periodic timer fired.", (), LAG_BUCKETS
    )
    probe = LagProbe(lag)
    registry.gauge(
        "ticketsys_event_loop_lag_last_seconds", "The event-loop lag measured last.", lambda: _one(probe.last)
    )
    return GcWatch(pauses), probe
