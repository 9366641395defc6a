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

As a probe beside other load (``benchmarks/longsale.py``): ``--duration 0`` sends until SIGINT
or SIGTERM; ``--pacer timer`` replaces the spin by a Linux timerfd that the loop waits on
(nanosecond resolution, unlike libuv's 1 ms timers), so at a low rate the probe leaves its core
to the load generator beside it instead of competing for it (the kernel wakes it some tens of
microseconds late on this VM; that is charged to the request like any lateness);
``--log FILE`` writes one line per request (intended start as epoch seconds, latency in ms or
``inf`` if never answered, status, and the purchase answer's ``remaining`` and ``order_id``);
``--windows`` adds per-second windows (by intended start) to the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Iterable
from typing import IO, Any

import orjson
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
        self.gen.busy.add(self)
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
        self.gen.done(self, now, head[9:12], buf[end + 4 : total])


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
        self.busy: set[Conn] = set()  # connections with a request in flight
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
        self.stop_requested = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.epoch = time.time() - perf()  # perf() + epoch: wall-clock seconds
        # (epoch intended start, latency ms, status) per request, for --windows
        self.records: list[tuple[float, float, str]] | None = [] if ns.windows else None
        self.log: IO[str] | None = open(ns.log, "w") if ns.log else None  # noqa: SIM115

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

    def done(self, conn: Conn, now: float, status: bytes, body: bytes) -> None:
        self.in_flight -= 1
        self.busy.discard(conn)
        if conn.intended >= self.record_from:
            latency = now - conn.intended
            self.latencies.append(latency)
            if self.ns.slow_ms is not None and latency > self.ns.slow_ms / 1000:
                self.slow.append((conn.intended, latency))
            if status == b"200":
                self.ok += 1
            else:
                self.bad += 1
            if self.records is not None or self.log is not None:
                self.note(conn.intended, latency * 1000, status.decode("latin-1"), body)
        self.free(conn)

    def note(self, intended: float, ms: float, status: str, body: bytes = b"") -> None:
        """One request for --windows and --log (``ms`` inf: never answered)."""
        at = intended + self.epoch
        if self.records is not None:
            self.records.append((at, ms, status))
        if self.log is not None:
            remaining = order_id = "-"
            if status == "200" and body:
                with contextlib.suppress(orjson.JSONDecodeError):
                    answer = orjson.loads(body)
                    if isinstance(answer, dict):
                        remaining = str(answer.get("remaining", "-"))
                        order_id = str(answer.get("order_id", "-"))
            self.log.write(f"{at:.6f} {ms:.4f} {status} {remaining} {order_id}\n")

    def lost(self, conn: Conn) -> None:
        self.conns -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        elif conn in self.busy:
            self.busy.discard(conn)
            self.broken += 1
            self.in_flight -= 1
            if conn.intended >= self.record_from:
                self.note(conn.intended, math.inf, "lost")

    def stop(self) -> None:
        """Stop sending (--duration 0: on SIGINT or SIGTERM); what was sent is still awaited."""
        self.stop_requested = True

    async def run(self) -> dict[str, Any]:
        ns = self.ns
        for _ in range(ns.conns):
            self.start_opening()
        while self.tasks:
            await asyncio.wait(set(self.tasks))
        if not self.idle:
            raise SystemExit(f"openloop: cannot connect to {ns.host}:{ns.port}")
        rate = ns.rate
        endless = ns.duration <= 0
        if endless:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.loop.add_signal_handler(signum, self.stop)
        total: float = math.inf if endless else int(rate * (ns.warmup + ns.duration))
        start = perf() + 0.01
        self.record_from = start + ns.warmup
        sent = 0
        sending_done = self.loop.create_future()

        def send_due() -> bool:
            """Send every request due by now; False once there is nothing more to send."""
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
            return sent < total and not self.stop_requested

        def spin() -> None:
            if send_due():
                self.loop.call_soon(spin)
            else:
                sending_done.set_result(None)

        def on_timer() -> None:
            with contextlib.suppress(BlockingIOError):
                os.read(timer, 8)  # the count of expirations: send_due counts by the clock
            if not sending_done.done() and not send_due():
                sending_done.set_result(None)

        timer = -1
        if ns.pacer == "timer":
            timer = periodic_timer(start + 1e-6, 1 / rate)  # just after each is due, never before
            self.loop.add_reader(timer, on_timer)
        else:
            self.loop.call_soon(spin)
        try:
            await sending_done
        finally:
            if timer >= 0:
                self.loop.remove_reader(timer)
                os.close(timer)
        send_end = perf()
        total = sent
        self.sending = False
        if self.in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.finished.wait(), ns.drain)
        unanswered = self.in_flight
        for intended in [*self.waiting, *(conn.intended for conn in self.busy)]:
            if intended >= self.record_from:
                self.note(intended, math.inf, "none")
        if self.log is not None:
            self.log.close()
        # Requests never answered count as slower than every answered one.
        lat = sorted(self.latencies) + [math.inf] * unanswered
        measured = max(0, total - int(rate * ns.warmup))
        result = {
            "rate": rate,
            "duration": ns.duration if not endless else round(send_end - self.record_from, 3),
            "sent": total,
            "measured": measured,
            "achieved_send_rate": round(total / (send_end - start), 1),
            "completed": len(self.latencies),
            "ok": self.ok,
            "non_200": self.bad,
            "unanswered": unanswered,
            "broken": self.broken,
            "max_connections": self.max_seen_conns,
            "pacer": ns.pacer,
            "sender_max_lateness_ms": round(self.max_lateness * 1000, 3),
            **{f"p{name}_ms": percentile(lat, p, scale=1000) for name, p in PERCENTILES.items()},
            "max_ms": lat[-1] * 1000 if lat else None,
            **({"slow": self.slow} if ns.slow_ms is not None else {}),
        }
        if self.records is not None:
            result["windows"] = windows(self.records)
        return result


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


def periodic_timer(first: float, interval: float) -> int:
    """A Linux timerfd (non-blocking) that becomes readable at ``first`` (``perf()`` time) and
    every ``interval`` seconds after: nanosecond resolution, woken by the kernel's hrtimer."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd: int = libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "timerfd_create")
    at = first - perf() + time.clock_gettime(time.CLOCK_MONOTONIC)

    def spec(seconds: float) -> _Timespec:
        return _Timespec(int(seconds), int(seconds % 1 * 1e9))

    setting = _Itimerspec(spec(interval), spec(at))
    if libc.timerfd_settime(fd, 1, ctypes.byref(setting), None) != 0:  # 1: TFD_TIMER_ABSTIME
        os.close(fd)
        raise OSError(ctypes.get_errno(), "timerfd_settime")
    return fd


PERCENTILES = {"50": 50.0, "90": 90.0, "95": 95.0, "99": 99.0, "999": 99.9}


def percentile(ordered: list[float], p: float, scale: float = 1.0) -> float | None:
    """The ``p``-th percentile of sorted values (``inf`` for requests never answered, which sort
    last); None for no values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * scale


def windows(records: Iterable[tuple[float, float, str]], seconds: float = 1.0) -> list[dict[str, Any]]:
    """Requests (epoch intended start, latency ms or inf, status) by window of intended start:
    count, non-200 answers, P50, P99 and max in ms. A request never answered (its connection
    broke, or no answer came within ``--drain``) counts as slower than any answered one."""
    by_window: dict[int, list[float]] = {}
    bad: dict[int, int] = {}
    for at, ms, status in records:
        window = int(at // seconds)
        by_window.setdefault(window, []).append(ms)
        if status != "200":
            bad[window] = bad.get(window, 0) + 1
    out = []
    for window in sorted(by_window):
        lat = sorted(by_window[window])
        out.append(
            {
                "t": window * seconds,
                "count": len(lat),
                "non_200": bad.get(window, 0),
                "p50_ms": percentile(lat, 50),
                "p99_ms": percentile(lat, 99),
                "max_ms": lat[-1],
            }
        )
    return out


def read_log(path: str) -> list[tuple[float, float, str, str, str]]:
    """The lines of a --log file: (epoch intended start, latency ms, status, remaining, order_id)."""
    out = []
    with open(path) as f:
        for line in f:
            at, ms, status, remaining, order_id = line.split()
            out.append((float(at), float(ms), status, remaining, order_id))
    return out


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
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (0: until SIGINT/SIGTERM)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds at the rate before measuring")
    p.add_argument("--conns", type=int, default=16, help="connections opened up front")
    p.add_argument("--max-conns", type=int, default=512, help="never more connections than this")
    p.add_argument("--drain", type=float, default=5.0, help="seconds to wait for late answers")
    p.add_argument(
        "--pacer",
        choices=("spin", "timer"),
        default="spin",
        help="spin: a call_soon loop (uses its core fully); timer: woken by a timerfd (low rates)",
    )
    p.add_argument("--log", help="write one line per measured request to this file")
    p.add_argument("--windows", action="store_true", help="add per-second windows to the JSON")
    p.add_argument(
        "--slow-ms",
        type=float,
        help="also list each answer slower than this: (intended start, latency) in seconds of "
        "time.perf_counter (CLOCK_MONOTONIC: comparable with other processes' clocks)",
    )
    ns = p.parse_args(argv)
    result = uvloop.run(main_async(ns))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
