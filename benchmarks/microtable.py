"""Microbenchmark results (pytest-benchmark JSON) as a markdown table, per operation.

.venv/bin/python -m pytest benchmarks --benchmark-enable --benchmark-json=benchmarks/results/micro.json
.venv/bin/python benchmarks/microtable.py benchmarks/results/micro.json
"""

from __future__ import annotations

import json
import sys


def table(path: str) -> str:
    with open(path) as f:
        data = json.load(f)
    rows = ["| group | benchmark | min µs/op | median µs/op | ops/s (median) |", "|---|---|---:|---:|---:|"]
    for b in sorted(data["benchmarks"], key=lambda b: (b["group"] or "", b["stats"]["median"])):
        ops = b.get("extra_info", {}).get("ops_per_round", 1)
        lo, med = b["stats"]["min"] / ops * 1e6, b["stats"]["median"] / ops * 1e6
        rows.append(f"| {b['group']} | {b['name']} | {lo:.2f} | {med:.2f} | {1e6 / med:,.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/micro.json"))
