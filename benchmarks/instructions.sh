#!/usr/bin/env bash
# Instructions per purchase of one process, counted by callgrind: a figure the shared
# machine's noise cannot move (wall-clock throughput moved ±20 % between rounds here).
#
#   benchmarks/instructions.sh TREE ROLE [N]     # ROLE: monolith, ticket or vacancy; N purchases (2000)
#   benchmarks/instructions.sh /tmp/tree-d641799 ticket
#
# TREE is a checkout (a `git worktree add --detach DIR COMMIT`, or a copy of ticketsys such as
# benchmarks/observe_off.py writes) imported through PYTHONPATH
# with this project's .venv; the memory store. ROLE runs under valgrind, the other natively;
# the monolith is one process, under valgrind;
# after 500 warm-up purchases the counters are zeroed, then N purchases (hey, 8 connections)
# are counted and the total divided by N (KEEP=FILE keeps the callgrind output, for callgrind_annotate). Needs valgrind and hey (apt-get install -y valgrind hey).
set -euo pipefail
tree=$(realpath "$1"); role=$2; n=${3:-2000}
py="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/python"
d=$(mktemp -d); cd "$d"
export PYTHONPATH=$tree STOCK_STORE=memory INITIAL_STOCK=1000000000 LOG_LEVEL=warning \
  VACANCY_TIMEOUT=5 PYTHONHASHSEED=0
vport=$((20000 + RANDOM % 20000)); tport=$((vport + 1))
cg=(valgrind --tool=callgrind "--callgrind-out-file=$d/cg.out")
vrun=(); trun=()
if [ "$role" = vacancy ]; then vrun=("${cg[@]}"); else trun=("${cg[@]}"); fi
ready() { for _ in $(seq 300); do curl -s -o /dev/null "localhost:$1/healthz" && return; sleep 0.1; done; exit 1; }
if [ "$role" = monolith ]; then
  "${cg[@]}" "$py" -m ticketsys monolith --port $tport >/dev/null 2>"$d/monolith.log" & t=$!
  v=$t
else
  "${vrun[@]}" "$py" -m ticketsys vacancy --port $vport >/dev/null 2>"$d/vacancy.log" & v=$!
  ready $vport
  VACANCY_URL=http://127.0.0.1:$vport "${trun[@]}" "$py" -m ticketsys ticket --port $tport \
    >/dev/null 2>"$d/ticket.log" & t=$!
fi
ready $tport
trap 'kill -9 $t $v 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] && cp "$(ls -t "$d"/cg.out* | head -1)" "$KEEP"; rm -rf "$d"' EXIT  # a process under valgrind drains slowly
buy() { hey -n "$1" -c 8 -m POST -T application/json -d '{"qty": 1}' "http://127.0.0.1:$tport/api/v1/purchase"; }
if [ "$role" = vacancy ]; then counted=$v; else counted=$t; fi
buy 500 >/dev/null
callgrind_control -z $counted >/dev/null 2>&1
buy "$n" | grep -qE "\[200\][[:space:]]+$n responses" || { echo "not all $n purchases answered 200" >&2; exit 1; }
callgrind_control -d $counted >/dev/null 2>&1
sleep 1
total=$(grep -hE "^(summary|totals):" "$(ls -t "$d"/cg.out* | head -1)" | head -1 | awk '{print $2}')
echo "$role $(git -C "$tree" rev-parse --short HEAD 2>/dev/null || echo "$tree"): $((total / n)) instructions per purchase"
