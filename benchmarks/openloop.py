"""A constant-arrival-rate (open-loop) HTTP/1.1 load generator that avoids coordinated omission.

Request ``i`` is *due* at ``start + i / rate`` whatever happened before it, and its latency is
measured from that intended start to the last byte of its response. A stalled server therefore
cannot hide its queue: requests that piled up while it stalled are all charged for the wait
(wrk and hey instead wait for a reply before sending the next request, so a stall delays the
requests and shows up as a single slow one -- "coordinated omission", Gil Tene).

How it works. One uvloop thread, raw ``asyncio.Protocol`` connections, keep-alive, no
pipelining: a connection carries one outstanding request. A pool of ``--conns`` connections
is opened first; when a request is due and none is free, another is opened, up to
``--max-conns``; beyond that the request waits in a FIFO queue for the next free connection,
and that wait is part of its latency. The scheduler is a ``call_soon`` spin (not a timer: libuv
timers have 1 ms resolution, which would send requests in bursts and add up to 1 ms of
self-inflicted latency), so this process uses one CPU fully: pin it to a core of its own.
Responses must carry ``content-length`` (all the servers measured here do).

    .venv/bin/python benchmarks/openloop.py --port 8000 --rate 5000 --duration 10 --warmup 2

Prints one JSON object: achieved send rate, completed, errors, lateness of the sender, and the
P50/P90/P95/P99/P99.9/max latencies in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import time
from collections import deque
from typing import Any

import uvloop

perf = time.perf_counter


class Conn(asyncio.Protocol):
    __slots__ = ("buf", "gen", "intended", "transport")

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.buf = b""
        self.intended = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)

    def send(self, intended: float) -> None:
        self.intended = intended
        assert self.transport is not None
        self.transport.write(self.gen.request)

    def data_received(self, data: bytes) -> None:
        now = perf()
        buf = self.buf + data if self.buf else data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.buf = buf
            return
        head = buf[:end].lower()
        at = head.find(b"content-length:")
        if at < 0:
            raise RuntimeError("response without content-length: " + repr(head[:200]))
        length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
        total = end + 4 + length
        if len(buf) < total:
            self.buf = buf
            return
        if len(buf) > total:
            raise RuntimeError("bytes after the response: the server answered twice?")
        self.buf = b""
        self.gen.done(self, now, head[9:12] == b"200")


class Generator:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.loop = asyncio.get_running_loop()
        body = ns.body.encode()
        head = f"{ns.method} {ns.path} HTTP/1.1\r\nhost: {ns.host}:{ns.port}\r\n"
        if ns.method in ("POST", "PUT"):
            head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        self.request = head.encode() + b"\r\n" + (body if ns.method in ("POST", "PUT") else b"")
        self.idle: list[Conn] = []
        self.waiting: deque[float] = deque()  # intended start times of requests with no connection
        self.conns = 0  # open or opening
        self.max_seen_conns = 0
        self.latencies: list[float] = []
        self.slow: list[tuple[float, float]] = []  # (intended start, latency): see --slow-ms
        self.record_from = 0.0
        self.ok = 0
        self.bad = 0
        self.broken = 0
        self.in_flight = 0
        self.max_lateness = 0.0  # how late the sender itself was (its own overload)
        self.finished = asyncio.Event()
        self.sending = True
        self.tasks: set[asyncio.Task[None]] = set()

    def start_opening(self) -> None:
        # Counted from now, not from when the task runs: a burst must not overshoot the cap.
        self.conns += 1
        self.max_seen_conns = max(self.max_seen_conns, self.conns)
        task = self.loop.create_task(self.open_one())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def open_one(self) -> None:
        try:
            _, conn = await self.loop.create_connection(lambda: Conn(self), self.ns.host, self.ns.port)
        except OSError:
            self.conns -= 1
            self.broken += 1
            return
        self.free(conn)

    def free(self, conn: Conn) -> None:
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            self.idle.append(conn)
            if not self.sending and self.in_flight == 0:
                self.finished.set()

    def dispatch(self, intended: float) -> None:
        self.in_flight += 1
        if self.idle:
            self.idle.pop().send(intended)
            return
        self.waiting.append(intended)
        if self.conns < self.ns.max_conns:
            self.start_opening()

    def done(self, conn: Conn, now: float, ok: bool) -> None:
        self.in_flight -= 1
        if conn.intended >= self.record_from:
            self.latencies.append(now - conn.intended)
            if self.ns.slow_ms is not None and now - conn.intended > self.ns.slow_ms / 1000:
                self.slow.append((conn.intended, now - conn.intended))
            if ok:
                self.ok += 1
            else:
                self.bad += 1
        self.free(conn)

    def lost(self, conn: Conn) -> None:
        self.conns -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        elif self.sending or self.in_flight:
            self.broken += 1
            self.in_flight -= 1

    async def run(self) -> dict[str, Any]:
        ns = self.ns
        for _ in range(ns.conns):
            self.start_opening()
        while self.tasks:
            await asyncio.wait(set(self.tasks))
        if not self.idle:
            raise SystemExit(f"openloop: cannot connect to {ns.host}:{ns.port}")
        rate = ns.rate
        total = int(rate * (ns.warmup + ns.duration))
        start = perf() + 0.01
        self.record_from = start + ns.warmup
        sent = 0
        spin_done = self.loop.create_future()

        def spin() -> None:
            nonlocal sent
            now = perf()
            due = min(total, int((now - start) * rate) + 1) if now >= start else 0
            if due > sent:
                lateness = now - (start + sent / rate)
                if lateness > self.max_lateness:
                    self.max_lateness = lateness
                while sent < due:
                    self.dispatch(start + sent / rate)
                    sent += 1
            if sent < total:
                self.loop.call_soon(spin)
            else:
                spin_done.set_result(None)

        self.loop.call_soon(spin)
        await spin_done
        send_end = perf()
        self.sending = False
        if self.in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.finished.wait(), ns.drain)
        unanswered = self.in_flight
        lat = sorted(self.latencies)
        # Requests never answered count as slower than every answered one.
        n = len(lat) + unanswered

        def pct(p: float) -> float | None:
            if n == 0:
                return None
            i = min(n - 1, int(p / 100 * n))
            return lat[i] * 1000 if i < len(lat) else float("inf")

        measured = total - int(rate * ns.warmup)
        return {
            "rate": rate,
            "duration": ns.duration,
            "sent": total,
            "measured": measured,
            "achieved_send_rate": round(total / (send_end - start), 1),
            "completed": len(lat),
            "ok": self.ok,
            "non_200": self.bad,
            "unanswered": unanswered,
            "broken": self.broken,
            "max_connections": self.max_seen_conns,
            "sender_max_lateness_ms": round(self.max_lateness * 1000, 3),
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "p999_ms": pct(99.9),
            "max_ms": lat[-1] * 1000 if lat and not unanswered else (float("inf") if n else None),
            **({"slow": self.slow} if ns.slow_ms is not None else {}),
        }


async def main_async(ns: argparse.Namespace) -> dict[str, Any]:
    gen = Generator(ns)
    result = await gen.run()
    for conn in gen.idle:
        if conn.transport is not None:
            conn.transport.close()
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--method", default="POST")
    p.add_argument("--path", default="/api/v1/purchase")
    p.add_argument("--body", default='{"qty": 1}')
    p.add_argument("--rate", type=float, required=True, help="requests per second")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds at the rate before measuring")
    p.add_argument("--conns", type=int, default=16, help="connections opened up front")
    p.add_argument("--max-conns", type=int, default=512, help="never more connections than this")
    p.add_argument("--drain", type=float, default=5.0, help="seconds to wait for late answers")
    p.add_argument(
        "--slow-ms",
        type=float,
        help="also list each answer slower than this: (intended start, latency) in seconds of "
        "time.perf_counter (CLOCK_MONOTONIC: comparable with other processes' clocks)",
    )
    ns = p.parse_args(argv)
    result = uvloop.run(main_async(ns))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
