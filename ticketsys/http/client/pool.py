"""``HttpPool``: our keep-alive HTTP/1.1 pool, pipelining the requests of one event-loop tick.

How the flow works. ``request()`` renders the request whole, puts it at the back of the
queue of waiting requests, and schedules one ``_flush`` for the end of the tick. ``_flush``
asks ``assign`` (a pure decision, see assign.py) which waiting requests go on which
connection, then carries the plan out: closes what expired, writes each connection's share in
one ``write()``, opens the new connections (their share goes out in one write once
connected). So the calls that leave the process in one tick share a write, and their answers
-- read in order, usually in one read -- a read. Whenever a connection frees up or closes,
another flush hands it to the requests at the head of the queue: first come, first served;
nobody wakes up to compete for it again.

Deadlines. Each request has one deadline at a time, never restarted. Until it is written: its
start plus ``connect_timeout`` (waiting for a connection and connecting included); past it,
``ClientTimeout`` if it was still waiting, ``ConnectError`` if its connection was still being
made. From its first write: the write plus ``read_timeout``, for its answer.

Depth. At most ``max_pipeline`` requests are in flight on one connection (8 by default:
measured, see interface.py). Idle connections take a tick's requests first, then new
connections, and only once ``max_connections`` are open do requests queue behind others in
flight.

How a pipeline fails. Answers come in order, so what happens to one request decides the fate
of those behind it on its connection:

=====================================================  =====================================
what happened                                           each request on the connection
=====================================================  =====================================
not written yet (waiting, or its connection was still   unsent: ``ConnectError`` if the
being made, or the write was refused)                   connect failed, else sent again on
                                                        another connection (deadline kept)
behind an answer that said ``connection: close``        unprocessed (RFC 9112 §9.6): sent
                                                        again on another connection
written, then the connection closed or broke, or the    ``RemoteProtocolError``: sent, may
server sent garbage                                     have been processed
written, and an answer ahead of it or its own is late   ``ClientTimeout`` for every request
                                                        in flight there: the connection is
                                                        closed (a late answer must never be
                                                        read as the next one's)
the pool is closed (``aclose``)                         waiting: ``ConnectError``; in
                                                        flight: ``RemoteProtocolError``
=====================================================  =====================================

A request sent again goes through the queue like a new one, at its head, at most twice (a
server that keeps closing connections before answering gets a ``ConnectError``). Requests
are never repeated after being possibly processed: that is for ``Replicas`` to decide, and
only for idempotent ones.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from ticketsys.http.client.assign import assign
from ticketsys.http.client.connection import Connection, Exchange
from ticketsys.http.client.interface import (
    ClientOptions,
    ClientResponse,
    ClientTimeout,
    ConnectError,
    Headers,
    RemoteProtocolError,
)
from ticketsys.http.client.wire import render_headers, render_request

# A request handed back unprocessed (see the module docstring) goes out again at most this
# often: a stale keep-alive connection and a "close" answer each explain one.
MAX_REQUEUES = 2

# How connections are made: ``loop.create_connection``'s signature. Tests pass their own, to
# run the pool over fake transports (as httpcore's tests swap its network backend).
Opener = Callable[[Callable[[], asyncio.Protocol], str, int], Awaitable[tuple[Any, Any]]]


class HttpPool:
    """Our own keep-alive pool (see the module docstring)."""

    def __init__(self, options: ClientOptions, *, opener: Opener | None = None) -> None:
        url = urlsplit(options.base_url)
        assert url.scheme == "http" and url.hostname, options.base_url
        assert options.max_connections >= 1 and options.max_pipeline >= 1, options
        self.options = options
        self.host = url.hostname
        self.port = url.port or 80
        self._fixed = b"host: %s\r\n" % url.netloc.encode("ascii") + render_headers(options.headers)
        self._waiting: deque[Exchange] = deque()
        self._idle: list[Connection] = []  # least recently used first
        self._active: set[Connection] = set()  # opening, or with requests in flight
        self._connecting: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._wait_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._opener = opener

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Headers = (),
        *,
        idempotent: bool = False,
        lines: bytes = b"",
        gathered: bool = False,
    ) -> ClientResponse:
        if self._closed:
            raise ConnectError("client is closed")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[ClientResponse] = loop.create_future()
        data = render_request(method, path, self._fixed, body, headers, lines)
        self._waiting.append(Exchange(data, future, loop.time() + self.options.connect_timeout))
        if gathered:  # waiting for the tick's end would cost a loop iteration and gather nothing
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = loop.call_soon(self._flush)
        return await future

    # -- the hand-off -------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_handle = None
        waiting = self._waiting
        if self._closed or not waiting:
            return
        assert self._loop is not None
        plan = assign(
            len(waiting),
            self._idle,
            self._active,
            self._loop.time(),
            max_connections=self.options.max_connections,
            max_pipeline=self.options.max_pipeline,
        )
        for conn in plan.close:
            conn.close()  # connection_ended takes it out of the idle list
        idle, active = self._idle, self._active
        for conn, n in plan.send:
            batch = self._take(n)
            if not batch:
                break
            if conn not in active:
                if idle[-1] is conn:  # the newest: the usual pick
                    idle.pop()
                else:
                    idle.remove(conn)
                active.add(conn)
            conn.send(batch)
        for n in plan.open:
            batch = self._take(n)
            if not batch:
                break
            self._open(batch)
        if waiting and self._wait_timer is None:
            self._arm_wait_timer()

    def _take(self, n: int) -> list[Exchange]:
        """The next ``n`` waiting requests whose callers still wait (cancelled ones are
        dropped: they were never sent)."""
        batch: list[Exchange] = []
        waiting = self._waiting
        while n > 0 and waiting:
            ex = waiting.popleft()
            if not ex.future.done():
                batch.append(ex)
                n -= 1
        return batch

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and self._waiting and self._loop is not None and not self._closed:
            self._flush_handle = self._loop.call_soon(self._flush)

    # -- connections --------------------------------------------------------------------------

    def _open(self, batch: list[Exchange]) -> None:
        assert self._loop is not None
        conn = Connection(self, self._loop, self.options.read_timeout, self.options.keepalive_expiry)
        conn.unsent = batch
        self._active.add(conn)
        task = self._loop.create_task(self._connect(conn, min(ex.deadline for ex in batch)))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: Connection, deadline: float) -> None:
        assert self._loop is not None
        loop = self._loop
        opener = self._opener or loop.create_connection
        timeout = max(0.0, deadline - loop.time())
        try:
            await asyncio.wait_for(opener(lambda: conn, self.host, self.port), timeout)
        except (OSError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                error = ConnectError(f"connect to {self.host}:{self.port} timed out")
            else:
                error = ConnectError(f"connect to {self.host}:{self.port} failed: {exc.strerror or exc}")
            self._connect_failed(conn, error)
        except asyncio.CancelledError:
            self._connect_failed(conn, ConnectError("client is closed"))
            raise

    def _connect_failed(self, conn: Connection, error: ConnectError) -> None:
        conn.closed = True
        for ex in conn.unsent:
            ex.fail(error)
        conn.unsent = []
        self._active.discard(conn)
        self._schedule_flush()  # a slot is free

    def connection_ready(self, conn: Connection) -> None:
        if not conn.in_flight and not conn.unsent:
            self._active.discard(conn)
            self._idle.append(conn)
        if self._waiting:
            self._schedule_flush()

    def connection_ended(self, conn: Connection, unsent: list[Exchange]) -> None:
        if conn in self._active:
            self._active.discard(conn)
        elif conn in self._idle:
            self._idle.remove(conn)
        if unsent:
            self._requeue(unsent)
        self._schedule_flush()  # a slot is free

    def _requeue(self, unsent: list[Exchange]) -> None:
        """Requests provably not processed: to the head of the queue, in their order."""
        for ex in reversed(unsent):
            ex.requeued += 1
            if self._closed:
                ex.fail(ConnectError("client is closed"))
            elif ex.requeued > MAX_REQUEUES:
                ex.fail(ConnectError("the server closed the connection before processing the request"))
            else:
                self._waiting.appendleft(ex)

    # -- waiting too long ---------------------------------------------------------------------

    def _arm_wait_timer(self) -> None:
        assert self._loop is not None
        earliest = min(ex.deadline for ex in self._waiting)
        self._wait_timer = self._loop.call_at(earliest, self._wait_timer_fired)

    def _wait_timer_fired(self) -> None:
        assert self._loop is not None
        self._wait_timer = None
        now = self._loop.time()
        still: deque[Exchange] = deque()
        for ex in self._waiting:
            if ex.future.done():
                continue
            if ex.deadline <= now:
                what = "answer" if ex.written else "free connection"
                ex.fail(ClientTimeout(f"no {what} in time ({self.host}:{self.port})"))
            else:
                still.append(ex)
        self._waiting = still
        if still:
            self._arm_wait_timer()

    # -- closing ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every connection, busy ones too: requests in flight fail with
        ``RemoteProtocolError``, waiting ones with ``ConnectError``."""
        self._closed = True
        for handle in (self._flush_handle, self._wait_timer):
            if handle is not None:
                handle.cancel()
        self._flush_handle = self._wait_timer = None
        waiting, self._waiting = self._waiting, deque()
        for ex in waiting:
            ex.fail(ConnectError("client is closed"))
        for conn in [*self._idle, *self._active]:
            conn.close(RemoteProtocolError("the client was closed while the request was in flight"))
        tasks = list(self._connecting)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict[str, int]:
        """Connections by state and requests waiting for one (read by a metrics scrape)."""
        return {
            "active": len(self._active),
            "idle": len(self._idle),
            "waiting": len(self._waiting),
            "in_flight": sum(conn.depth for conn in self._active),
        }

    def __repr__(self) -> str:
        n = self.stats()
        state = "closed " if self._closed else ""
        return (
            f"<HttpPool {state}{self.host}:{self.port} [requests: {n['in_flight']} in flight, "
            f"{n['waiting']} waiting | connections: {n['active']} active, {n['idle']} idle]>"
        )
