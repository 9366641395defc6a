"""One keep-alive connection of the pool, carrying pipelined requests (see pool.py for the
rules; this module carries them out).

A ``Connection`` is an asyncio Protocol. The pool gives it batches of ``Exchange``s; each
batch goes out in one ``write()`` (held back, whole, until the connection is made). The
answers come back in order, through ``ResponseParser``: each completes the oldest exchange
in flight. One loop timer watches the earliest deadline in flight, re-armed lazily (a busy
connection arms about one per ``read_timeout``, not one per request). A connection that ends
-- its peer, a timeout, garbage, a ``connection: close`` answer, the pool -- ends all at once
in ``_end``, which fails or hands back every exchange it held, then tells the pool.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import Protocol

from ticketsys.http.client.assign import ConnState
from ticketsys.http.client.interface import (
    ClientError,
    ClientResponse,
    ClientTimeout,
    RemoteProtocolError,
)
from ticketsys.http.client.wire import ResponseParser


class Exchange:
    """One request: its bytes, its caller's future and its one deadline. Until the request
    is written the deadline is for getting it onto the wire; once written, for its answer
    (set at the first write, never moved again)."""

    __slots__ = ("data", "deadline", "future", "requeued", "written")

    def __init__(self, data: bytes, future: asyncio.Future[ClientResponse], deadline: float) -> None:
        self.data = data
        self.future = future
        self.deadline = deadline
        self.written = False
        self.requeued = 0  # times handed back to the pool unanswered (see HttpPool._requeue)

    def fail(self, error: ClientError) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class Owner(Protocol):
    """What a connection tells its pool."""

    def connection_ready(self, conn: Connection) -> None:
        """It may take more: an answer came (``depth`` 0: it is idle), or it connected."""

    def connection_ended(self, conn: Connection, unsent: list[Exchange]) -> None:
        """It is closed. ``unsent``: exchanges provably not processed, to be sent again."""


class Connection(asyncio.Protocol):
    _parser: ResponseParser  # from connection_made to connection_lost (see ResponseParser.close)

    def __init__(
        self,
        owner: Owner,
        loop: asyncio.AbstractEventLoop,
        read_timeout: float,
        keepalive_expiry: float,
    ) -> None:
        self.owner = owner
        self.loop = loop
        self.read_timeout = read_timeout
        self.keepalive_expiry = keepalive_expiry
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.unsent: list[Exchange] = []  # given before the connection was made
        self.in_flight: deque[Exchange] = deque()  # written, unanswered, oldest first
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # -- what the assignment reads ----------------------------------------------------------

    @property
    def depth(self) -> int:
        return len(self.in_flight) + len(self.unsent)

    def state(self, now: float) -> ConnState:
        if self.closed or (self.transport is not None and self.transport.is_closing()):
            return ConnState.CLOSED
        if self.transport is None or self.in_flight or self.unsent:
            return ConnState.ACTIVE
        if now - self.idle_since >= self.keepalive_expiry:
            return ConnState.EXPIRED
        return ConnState.IDLE

    # -- sending ----------------------------------------------------------------------------

    def send(self, batch: list[Exchange]) -> None:
        """Write ``batch`` after what is in flight, in one write (or once connected)."""
        transport = self.transport
        if transport is None:
            self.unsent.extend(batch)
            return
        try:
            transport.write(batch[0].data if len(batch) == 1 else b"".join([ex.data for ex in batch]))
        except RuntimeError:
            # uvloop, when the peer's close reached the transport before connection_lost
            # reached us (seen when a Vacancy replica was killed): nothing of it was sent.
            self._end(RemoteProtocolError("the connection closed under the pipeline"), unsent=batch)
            return
        answer_by = self.loop.time() + self.read_timeout
        earliest = answer_by
        for ex in batch:
            if ex.written:  # sent again (see HttpPool._requeue): its deadline stands
                earliest = min(earliest, ex.deadline)
            else:
                ex.written = True
                ex.deadline = answer_by
        self.in_flight.extend(batch)
        if self._timer is None or earliest < self._timer_at:
            self._arm(earliest)

    # -- transport callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        self._parser = ResponseParser(self._answered)
        if self.closed:  # the pool closed while we were connecting
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # uvloop and asyncio set it already; said here because pipelined batches and
            # single requests alike are written whole, and Nagle would only delay them.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        batch = [ex for ex in self.unsent if not ex.future.done()]  # drop the cancelled
        self.unsent = []
        if batch:
            self.send(batch)
        else:
            self.idle_since = self.loop.time()
            self.owner.connection_ready(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
        except RemoteProtocolError as exc:
            if not self.closed:  # else: bytes after an answer that closed the connection
                self._end(exc)

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            reason = f": {exc}" if exc is not None else ""
            self._end(RemoteProtocolError(f"the server closed the connection before answering{reason}"))
        self._parser.close()  # the transport calls nothing after this

    # -- answers ----------------------------------------------------------------------------

    def _answered(self, status: int, body: bytes, keep_alive: bool) -> None:
        if not self.in_flight:
            raise RemoteProtocolError(f"the server sent a {status} response to no request")
        ex = self.in_flight.popleft()
        if not ex.future.done():  # not cancelled by its caller
            ex.future.set_result(ClientResponse(status, body))
        if keep_alive:
            if not self.in_flight:
                self.idle_since = self.loop.time()
            self.owner.connection_ready(self)
        else:
            # RFC 9112 §9.6: a server that answers with "close" processes nothing after it:
            # the requests behind it are provably unprocessed, and go out again elsewhere.
            self._end(None)

    # -- deadlines --------------------------------------------------------------------------

    def _arm(self, when: float) -> None:
        """Fire at ``when``, earlier than the timer armed (if any)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self.loop.call_at(when, self._timer_fired), when

    def _timer_fired(self) -> None:
        self._timer = None
        if not self.in_flight:
            return
        earliest = min(ex.deadline for ex in self.in_flight)
        if earliest > self.loop.time():
            self._arm(earliest)  # the answers it was armed for came: watch the next
            return
        # An answer is late. Answers come in order: nothing behind it can be answered before
        # it, and a late answer must never be taken for the next one's. Close, and fail all:
        # a timeout, for each was sent and waited on the same stalled server.
        self._end(ClientTimeout(f"no response within {self.read_timeout}s"))

    # -- ending -----------------------------------------------------------------------------

    def close(self, in_flight_error: ClientError | None = None) -> None:
        """Close now (the pool: expired, or the pool closes). Exchanges in flight fail with
        ``in_flight_error``; those never written go back to the pool."""
        if not self.closed:
            self._end(in_flight_error or RemoteProtocolError("the connection was closed by the client"))

    def _end(self, in_flight_error: ClientError | None, unsent: list[Exchange] | None = None) -> None:
        """``in_flight_error``: what the written, unanswered exchanges fail with; None hands
        them back as unprocessed (after a "close" answer)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        in_flight, self.in_flight = self.in_flight, deque()
        back = [*(unsent or ()), *self.unsent]
        self.unsent = []
        if in_flight_error is None:
            back = [*in_flight, *back]
        else:
            for ex in in_flight:
                ex.fail(in_flight_error)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.owner.connection_ended(self, back)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "opening" if self.transport is None else "open"
        return f"<Connection {state} in_flight={len(self.in_flight)} unsent={len(self.unsent)}>"
