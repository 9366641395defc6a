"""The process's figures: GC pauses timed by gc.callbacks, event-loop lag, /proc readings."""

from __future__ import annotations

import asyncio
import gc
import os
import time

from ticketsys.observe.metrics import Registry
from ticketsys.observe.process import open_fds, register_process, resident_bytes, start_time


def test_a_collection_is_timed_by_generation_while_installed() -> None:
    gc_watch, _ = register_process(registry := Registry())
    pauses = registry.metrics["ticketsys_gc_pause_seconds"]
    gc_watch.install()
    try:
        gc.collect(2)
    finally:
        gc_watch.remove()
    assert gc_watch not in gc.callbacks
    full = pauses.series[("2",)]  # type: ignore[attr-defined]
    assert full.count >= 1 and full.sum > 0
    gc.collect(2)  # removed: not counted
    assert pauses.series[("2",)].count == full.count  # type: ignore[attr-defined]


def test_a_blocked_loop_shows_as_lag() -> None:
    _, probe = register_process(Registry())
    probe.interval = 0.01

    async def main() -> None:
        probe.start()
        try:
            await asyncio.sleep(0.02)
            time.sleep(0.1)  # the loop is stuck: the timer due meanwhile fires late
            await asyncio.sleep(0.03)
        finally:
            probe.stop()

    asyncio.run(main())
    assert probe.series.count >= 2
    assert 0.05 < probe.series.sum < 1


def test_process_readings_are_plausible() -> None:
    assert resident_bytes() > 1_000_000
    assert open_fds() >= 3
    assert time.time() - 3600 * 24 < start_time() <= time.time()
    assert os.times()[0] >= 0
