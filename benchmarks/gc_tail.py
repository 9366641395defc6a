"""Where the latency tail of a setup at a low rate comes from: each slow answer put beside the
garbage collector's pauses in the server processes at the time.

Every server process of the setup gets a ``sitecustomize`` (on PYTHONPATH, written to a
temporary directory; ticketsys is not changed) that logs each collection longer than 1 ms
with its generation, start and length on ``time.perf_counter`` (CLOCK_MONOTONIC, the same
clock in every process). wrk first fills the stores as the load runner's throughput runs do
(``--fill`` seconds of purchases: the orders and idempotency keys a long sale holds), then
``--runs`` open-loop runs at ``--rate`` list every answer slower than ``--slow-ms``. A slow
answer "overlaps" a pause when its wait and the pause share a moment; the table gives, per
run, the percentiles, the slow answers, how many overlap a pause, and the pauses over 5 ms.

    .venv/bin/python benchmarks/gc_tail.py                              # microservices, ~1 min
    .venv/bin/python benchmarks/gc_tail.py --setup monolith --fill 30
    .venv/bin/python benchmarks/gc_tail.py --no-gc                      # the same, GC disabled
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import loadrun

HOOK = """\
import gc, os, sys, time

def _log(phase, info, _started=[0.0]):
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took = time.perf_counter() - _started[0]
    if took > 0.001:
        sys.stderr.write(f"GCPAUSE pid={os.getpid()} gen={info['generation']} "
                         f"at={_started[0]:.6f} took={took:.6f}\\n")

if os.environ.get("GC_TAIL_DISABLE"):
    gc.disable()
gc.callbacks.append(_log)
"""
PAUSE = re.compile(r"GCPAUSE pid=(\d+) gen=(\d) at=([\d.]+) took=([\d.]+)")


def pauses(log_dir: Path, name: str, roles: dict[int, str]) -> list[tuple[float, float, int, str]]:
    """(start, length, generation, process role) of every logged collection."""
    found = []
    for log in log_dir.glob(f"{name}-*.log"):
        for m in PAUSE.finditer(log.read_text(errors="replace")):
            found.append((float(m[3]), float(m[4]), int(m[2]), roles.get(int(m[1]), m[1])))
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setup", default="microservices", choices=list(loadrun.SETUPS))
    p.add_argument("--fill", type=float, default=15.0, help="seconds of wrk purchases first")
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--slow-ms", type=float, default=1.0)
    p.add_argument("--no-gc", action="store_true", help="disable the GC in the servers (a control)")
    ns = p.parse_args(argv)
    hook_dir = Path(tempfile.mkdtemp(prefix="gc-tail-"))
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    os.environ["PYTHONPATH"] = str(hook_dir)  # loadrun passes the environment on
    if ns.no_gc:
        os.environ["GC_TAIL_DISABLE"] = "1"
    opts = loadrun.Options(
        setups=[ns.setup], runs=1, wrk_seconds=ns.fill, open_seconds=ns.seconds, warmup=1.0,
        rates=[ns.rate], startup_reps=0, out=loadrun.BENCH / "results" / "gc_tail", quick=False,
    )  # fmt: skip
    for log in opts.log_dir.glob(f"{ns.setup}-*.log"):
        log.unlink()  # the logs are appended to: start clean
    print(f"{ns.setup}, {ns.fill:.0f} s of wrk purchases first, then {ns.rate}/s open loop; GC "
          f"{'disabled' if ns.no_gc else 'on'}")  # fmt: skip
    print(f"| run | P50 / P99 / max ms | answers > {ns.slow_ms:g} ms | of which during a GC pause | "
          "pauses > 5 ms (ms, generation, process) |")  # fmt: skip
    print("|---|---:|---:|---:|---|")
    with loadrun.started(ns.setup, opts) as running:
        roles = {
            pid: loadrun._role(proc.args) for proc in running.procs for pid in loadrun.descendants(proc.pid)
        }
        if ns.fill:
            loadrun.wrk(running, opts, "/api/v1/purchase", ns.fill)
        for run in range(ns.runs):
            loadrun.quiet_moment(running.pids(), 5.0)
            args = [
                "taskset", "-c", loadrun.LOAD_CPU, loadrun.PY, str(loadrun.BENCH / "openloop.py"),
                "--port", str(running.port), "--rate", str(ns.rate), "--duration", str(ns.seconds),
                "--warmup", "1", "--slow-ms", str(ns.slow_ms),
            ]  # fmt: skip
            result = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
            slow = result["slow"]
            seen = pauses(opts.log_dir, ns.setup, roles)
            during = sum(
                1
                for start, took in slow
                if any(p0 <= start + took and start <= p0 + d for p0, d, _, _ in seen)
            )
            begin = min((s for s, _ in slow), default=0.0)
            end = max((s + t for s, t in slow), default=0.0)
            big = [
                f"{d * 1000:.0f}, gen {g}, {who}"
                for p0, d, g, who in seen
                if d > 0.005 and begin <= p0 <= end
            ]
            print(
                f"| {run + 1} | {result['p50_ms']:.2f} / {result['p99_ms']:.2f} / {result['max_ms']:.1f} | "
                f"{len(slow)} | {during} | {'; '.join(big) or '-'} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
