"""Run a ticketsys server with every garbage collection timed, from inside the process.

    .venv/bin/python benchmarks/gcprobe.py OUT.jsonl -- monolith --port 8000

Installs a ``gc.callbacks`` hook, then runs ``ticketsys.cli.main`` with the arguments after
``--``: the server is exactly the one ``ticketsys`` runs, only watched. The hook reads the clock
when a collection starts and when it stops (the pause: every request in flight waits for it)
and adds it to the statistics of the current wall-clock second; it also reads the thread's CPU
clock, because on a shared machine a collection can be preempted halfway and its wall time
then includes the wait for a CPU. A thread writes one JSON line per second that saw a
collection, once that second is over:

    {"t": 1764757200, "count": [g0, g1, g2], "max_ms": [g0, g1, g2],
     "max_cpu_ms": [g0, g1, g2], "total_ms": 1.2, "collected": 17, "frozen": 41234}

``t`` is the second (epoch), ``count``, ``max_ms`` and ``max_cpu_ms`` the collections, the
longest pause (wall clock: what a request waits) and the longest CPU time of one collection,
by generation; ``frozen`` what ``gc.freeze()`` moved out of reach (non-zero once the server
has announced it is listening). Each line is flushed as it is written, so a ``kill -9`` loses at
most the current second. The writer thread takes the interpreter lock for a few microseconds
once a second.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

perf = time.perf_counter
cpu = time.thread_time


class GcStats:
    def __init__(self) -> None:
        # second -> [count0..2, max0..2, max_cpu0..2, total, collected]
        self.by_second: dict[int, list[Any]] = {}
        self._started = self._started_cpu = 0.0

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started, self._started_cpu = perf(), cpu()
            return
        pause, used = perf() - self._started, cpu() - self._started_cpu
        second = int(time.time())
        stats = self.by_second.get(second)
        if stats is None:
            stats = self.by_second[second] = [0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0]
        generation = info["generation"]
        stats[generation] += 1
        stats[3 + generation] = max(stats[3 + generation], pause)
        stats[6 + generation] = max(stats[6 + generation], used)
        stats[9] += pause
        stats[10] += info["collected"]

    def take_finished(self) -> list[dict[str, Any]]:
        """The lines of every second that is over, oldest first (and forget them)."""
        now = int(time.time())
        lines = []
        for second in sorted(s for s in list(self.by_second) if s < now):
            stats = self.by_second.pop(second)
            lines.append(
                {
                    "t": second,
                    "count": stats[0:3],
                    "max_ms": [round(m * 1000, 4) for m in stats[3:6]],
                    "max_cpu_ms": [round(m * 1000, 4) for m in stats[6:9]],
                    "total_ms": round(stats[9] * 1000, 4),
                    "collected": stats[10],
                    "frozen": gc.get_freeze_count(),
                }
            )
        return lines


def write_every_second(stats: GcStats, path: Path) -> None:
    with path.open("a") as out:
        while True:
            time.sleep(1.0 - time.time() % 1.0 + 0.01)  # just after each second ends
            for line in stats.take_finished():
                out.write(json.dumps(line) + "\n")
            out.flush()


def read(path: Path) -> dict[int, dict[str, Any]]:
    """A gcprobe file by second (what benchmarks read back)."""
    if not path.exists():
        return {}
    return {line["t"]: line for line in map(json.loads, path.read_text().splitlines())}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        print("usage: gcprobe.py OUT.jsonl -- monolith|vacancy|ticket [ticketsys arguments]", file=sys.stderr)
        return 2
    stats = GcStats()
    gc.callbacks.append(stats.callback)
    threading.Thread(target=write_every_second, args=(stats, Path(argv[0])), daemon=True).start()
    from ticketsys.cli import main as ticketsys_main

    return int(ticketsys_main(argv[2:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
