"""Where a monolith purchase's time goes, sampled live with py-spy under wrk load.

    .venv/bin/python benchmarks/profile_live.py [--seconds 6] [--setup monolith|microservices|...]
        [--process 0|-1]   (microservices: 0 is Vacancy, -1 Ticket)

Starts the setup pinned to CPU 0, drives POST /api/v1/purchase with wrk (CPU 1), samples the
server with ``py-spy record --format raw --native``-free Python stacks, and prints the share of
samples (= of the server's CPU time) per frame: inclusive for the stages of a purchase, and the
top self-time frames. Multiply a share by (1 / throughput) for microseconds per purchase.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import loadrun


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=6)
    p.add_argument("--setup", default="monolith")
    p.add_argument("--process", type=int, default=-1, help="which of the setup's processes (0: vacancy)")
    ns = p.parse_args()
    opts = loadrun.Options([ns.setup], 1, ns.seconds, ns.seconds, 0.5, [], 0, Path(tempfile.mkdtemp()), True)
    with loadrun.started(ns.setup, opts) as running:
        pid = running.procs[ns.process].pid
        wrk = subprocess.Popen(
            ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{ns.seconds + 2}s",
             "-s", str(loadrun.lua_script(opts)), f"http://127.0.0.1:{running.port}/api/v1/purchase"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        raw = opts.out / "stacks.txt"
        subprocess.run(
            [str(loadrun.VENV / "py-spy"), "record", "--pid", str(pid), "--duration", str(ns.seconds),
             "--rate", "500", "--format", "raw", "--output", str(raw), "--nonblocking"],
            check=True, capture_output=True,
        )  # fmt: skip
        out, _ = wrk.communicate()
    rps = float(out.split("Requests/sec:")[1].split()[0])
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]  # fmt: skip
        for f in set(frames):
            inclusive[f] += n
        self_time[frames[-1]] += n
    us = 1e6 / rps
    print(f"{ns.setup}: {rps:,.0f} purchases/s under wrk -c64 = {us:.1f} µs of server CPU per purchase; "
          f"{total} samples (idle loop time included)\n")  # fmt: skip
    print("| inclusive | share | µs/purchase |\n|---|---:|---:|")
    for f, n in inclusive.most_common(40):
        print(f"| `{f}` | {100 * n / total:.1f} % | {us * n / total:.1f} |")
    print("\n| self | share | µs/purchase |\n|---|---:|---:|")
    for f, n in self_time.most_common(25):
        print(f"| `{f}` | {100 * n / total:.1f} % | {us * n / total:.1f} |")


if __name__ == "__main__":
    main()
