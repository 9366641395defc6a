#!/usr/bin/env bash
# Two trees' monoliths (or microservices) compared on this shared, noisy machine (issue 14's
# budget: purchases/s and P95 at 5k/s, or at RATE purchases/s).
#
#   benchmarks/side_by_side.sh TREE_A TREE_B [ROUNDS]     # ROUNDS: 5
#   SETUP=microservices benchmarks/side_by_side.sh /work/wt-old . 7   # vacancy + ticket each side
#   RATE=1000 benchmarks/side_by_side.sh /work/wt-old .        # P95 at 1,000 purchases/s
#   python -m benchmarks.observe_off /tmp/off && benchmarks/side_by_side.sh /tmp/off .
#
# Throughput: both monoliths run at once on CPU 0, each under its own wrk (1 thread, 32
# connections) on CPU 1. The kernel shares CPU 0 evenly between two busy processes, so the
# ratio of their purchases/s is the inverse ratio of their CPU per purchase, and whatever else
# this machine runs slows both alike (two runs of one tree agree within 1 %; run one after
# the other, throughput moved ±20 % here). The two sides swap ports every round.
# P95: each alone on CPU 0, benchmarks/openloop.py on CPU 1 at RATE (5,000) purchases/s for 10 s,
# A then B, then B then A the next round. TREE is a checkout or a copy of ticketsys (PYTHONPATH);
# STORE=memory (the default), sqlite (a fresh DATA_DIR per start) or redis (a fresh redis-server per
# start, on CPU 0 too). Needs wrk (apt-get install -y wrk; redis-server for STORE=redis). Prints
# one line per round, then the medians, and the paired P95 difference with its bootstrap interval.
set -euo pipefail
a=$(realpath "$1"); b=$(realpath "$2"); rounds=${3:-5}; p95_rate=${RATE:-5000}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"; py="$root/.venv/bin/python"
d=$(mktemp -d)
printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' \
  "'{\"qty\": 1}'" > "$d/post.lua"
pids=()
trap '[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$d"' EXIT
up() {  # PORT: wait until it answers
  for _ in $(seq 100); do curl -s -o /dev/null "localhost:$1/healthz" && return; sleep 0.1; done
  echo "nothing answers on port $1" >&2; exit 1
}
start() {  # TREE PORT: the setup on CPU 0 (microservices: Vacancy on PORT+1), ready
  local data store=${STORE:-memory}; data=$(mktemp -d -p "$d")
  if [ "$store" = redis ]; then  # its own redis-server on PORT+2, AOF fsync everysec as loadrun's
    taskset -c 0 redis-server --port $(($2 + 2)) --bind 127.0.0.1 --save "" --appendonly yes \
      --appendfsync everysec --dir "$data" >/dev/null 2>&1 & pids+=($!)
    for _ in $(seq 100); do redis-cli -p $(($2 + 2)) ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    store=redis://127.0.0.1:$(($2 + 2))/0
  fi
  local env=(PYTHONPATH=$1 STOCK_STORE=$store DATA_DIR="$data" INITIAL_STOCK=1000000000 LOG_LEVEL=warning)
  if [ "${SETUP:-monolith}" = microservices ]; then
    env "${env[@]}" taskset -c 0 "$py" -m ticketsys vacancy --port $(($2 + 1)) >/dev/null 2>&1 &
    pids+=($!); up $(($2 + 1))
    env "${env[@]}" VACANCY_URL=http://127.0.0.1:$(($2 + 1)) taskset -c 0 "$py" -m ticketsys ticket \
      --port "$2" >/dev/null 2>&1 & pids+=($!)
  else
    env "${env[@]}" taskset -c 0 "$py" -m ticketsys monolith --port "$2" >/dev/null 2>&1 & pids+=($!)
  fi
  up "$2"
}
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=(); }
rate() {  # PORT SECONDS -> purchases/s
  taskset -c 1 wrk -t1 -c32 "-d$2s" -s "$d/post.lua" "http://127.0.0.1:$1/api/v1/purchase" |
    awk '/Requests\/sec/{print $2}'
}
p95() {  # PORT -> P95 ms at RATE purchases/s
  (cd "$root" && taskset -c 1 "$py" benchmarks/openloop.py --port "$1" --rate "$p95_rate" --duration 10 \
    --warmup 2) | "$py" -c 'import json, sys; print(round(json.load(sys.stdin)["p95_ms"], 3))'
}
ratios=(); pa95=(); pb95=()
for r in $(seq "$rounds"); do
  ports=(21000 22000); [ $((r % 2)) = 0 ] && ports=(22000 21000)
  start "$a" "${ports[0]}"; start "$b" "${ports[1]}"
  rate "${ports[0]}" 2 >/dev/null & w=$!; rate "${ports[1]}" 2 >/dev/null; wait $w  # warm-up
  rate "${ports[0]}" 10 > "$d/a" & w=$!; rate "${ports[1]}" 10 > "$d/b"; wait $w
  stop
  if [ $((r % 2)) = 1 ]; then  # who goes first alternates too
    start "$a" 23000; x=$(p95 23000); stop; start "$b" 23000; y=$(p95 23000); stop
  else
    start "$b" 23000; y=$(p95 23000); stop; start "$a" 23000; x=$(p95 23000); stop
  fi
  ratio=$("$py" -c "print(round($(cat "$d/b") / $(cat "$d/a"), 4))")
  ratios+=("$ratio"); pa95+=("$x"); pb95+=("$y")
  echo "round $r: purchases/s A $(cat "$d/a") B $(cat "$d/b") B/A $ratio | P95 at $p95_rate/s A $x ms B $y ms"
done
"$py" - "$p95_rate" "${ratios[*]}" "${pa95[*]}" "${pb95[*]}" <<'EOF'
import math, random, statistics, sys
rate = sys.argv[1]
ratio, a, b = ([float(x) for x in arg.split()] for arg in sys.argv[2:])
# A round's P95s are measured minutes apart from other rounds' but seconds apart from each other:
# their difference is the figure the machine's drift moves least. How far it can be trusted: a
# bootstrap interval of its median, and in how many rounds B was the slower.
diffs = [y - x for x, y in zip(a, b) if math.isfinite(y - x)]  # inf: a side overloaded
paired = statistics.median(diffs) if diffs else math.nan
rng = random.Random(0)
boot = sorted(statistics.median(rng.choices(diffs, k=len(diffs))) for _ in range(2000)) if diffs else [math.nan]
low, high = boot[len(boot) // 20], boot[len(boot) - 1 - len(boot) // 20]
print(f"median B/A purchases/s {statistics.median(ratio):.4f} ({(statistics.median(ratio) - 1) * 100:+.2f} %); "
      f"median P95 at {rate}/s A {statistics.median(a):.3f} ms, B {statistics.median(b):.3f} ms; "
      f"median of the rounds' B-A {paired * 1000:+.0f} us (90 % bootstrap {low * 1000:+.0f} to "
      f"{high * 1000:+.0f} us; B slower in {sum(d > 0 for d in diffs)} of {len(diffs)} rounds)")
EOF
