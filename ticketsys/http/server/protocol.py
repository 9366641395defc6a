"""The asyncio Protocol of one connection: bytes in, requests parsed and queued, answers out.

How the flow works. ``HttpConnection`` feeds received bytes to httptools, whose callbacks
assemble one request at a time (``incoming.Incoming``: URL, headers, body, each under its
limit). A complete request becomes a cycle (``cycle.DirectCycle`` or ``cycle.ASGICycle``) and
joins the connection's queue; a single worker task per connection answers the queue in order,
so pipelined requests get their answers in the order they came, and the task exists only
while there is work. Protocol errors (garbage, smuggling attempts, oversize heads or bodies)
join the queue as a JSON error answer; the process never notices.

Whether the connection stays open is decided by ``connection.ConnectionState`` alone: this
module tells it what happened (a request began, the client half-closed, an error, shutdown),
asks it whether each answer keeps the connection alive, and, whenever nothing is being
answered, does the ``Next`` step it names. The one deadline (``timer.Deadline``) and flow
control (``flow.FlowControl``) are their own small objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import socket
from collections import deque
from typing import Any

import httptools

from ticketsys.http import request_id
from ticketsys.http.errors import INTERNAL_ERROR, HTTPError, error_response, payload_too_large
from ticketsys.http.models import Response
from ticketsys.http.server.connection import (
    ACTIVE,
    CLOSED,
    IDLE,
    KEEP_ALIVE,
    LINGER,
    LINGERING,
    WAIT,
    ConnectionState,
    Next,
)
from ticketsys.http.server.cycle import ASGICycle, DirectCycle
from ticketsys.http.server.eager import start_worker
from ticketsys.http.server.flow import FlowControl
from ticketsys.http.server.incoming import Incoming, check_head, version_not_supported
from ticketsys.http.server.state import ServerState
from ticketsys.http.server.timer import Deadline
from ticketsys.http.server.wire import CONTINUE, render

log = logging.getLogger("ticketsys.server")

_HEADERS_TOO_LARGE = HTTPError(431, "headers_too_large", "request headers too large")


class _StopParsing(Exception):
    """Raised by ``on_message_begin`` once the connection accepts no new request."""


class HttpConnection(asyncio.Protocol):
    def __init__(self, server_state: ServerState) -> None:
        self.server_state = server_state
        self.limits = server_state.limits
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        # llhttp refuses versions other than 0.9, 1.0, 1.1 and 2.0 as malformed (400); let it
        # pass any digit.digit so that check_head answers every unsupported one 505.
        self.parser.set_dangerous_leniencies(lenient_version=True)
        self.state = ConnectionState()
        self.deadline = Deadline(self.loop)
        self.transport: asyncio.Transport | None = None
        self.server_addr: tuple[str, int] | None = None
        self.client_addr: tuple[str, int] | None = None
        self.flow: FlowControl | None = None
        self._incoming: Incoming | None = None
        self._queue: deque[DirectCycle | ASGICycle | Response] = deque()
        self._worker: asyncio.Task[None] | None = None
        self.disconnected = asyncio.Event()
        # The context every worker of this connection runs in, with the slot of its request
        # id (http/request_id.py): filled per request, no context variable set per request.
        self.id_slot = request_id.Slot()
        self.context = contextvars.copy_context()
        self.context.run(request_id.current.set, self.id_slot)

    def __repr__(self) -> str:
        return (
            f"<HttpConnection client={self.client_addr} {self.state.phase.value} "
            f"queued={len(self._queue)} busy={self._worker is not None}>"
        )

    @property
    def closed(self) -> bool:
        return self.state.phase is CLOSED

    # -- transport callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Responses are written whole; Nagle would only delay them.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server_addr = _address(transport.get_extra_info("sockname"))
        self.client_addr = _address(transport.get_extra_info("peername"))
        self.flow = FlowControl(self.transport)  # type: ignore[arg-type]
        self.server_state.add(self)
        if self.server_state.closing:  # accepted in the instant the server began to shut down
            self.shutdown()
            return
        self.deadline.set(self.limits.keepalive_timeout, self._idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.lost()
        self.server_state.discard(self)
        self.deadline.stop()
        self.disconnected.set()
        if self.flow is not None:
            self.flow.resume_writing()  # wake a writer stuck in drain(); it will see `closed`
        # The parser holds this connection for its callbacks, and the queued requests hold it
        # too: unlinked, a closed connection is freed when its last reference goes, not by a
        # cyclic GC pass (3-8 ms each, every ~15 s, in the long sale's Vacancy). The transport
        # feeds nothing after this, and the worker stops at its current request.
        with contextlib.suppress(AttributeError):  # unlinked already: a second report
            del self.parser
        self._queue.clear()

    def eof_received(self) -> bool:
        """The client shut its sending side (``nc -N``, ``curl`` never does, some load tools
        do) but may still read: answer every request it sent in full, then close. Closing at
        once (the default) would drop answers to purchases that did go through."""
        if self.state.phase is LINGERING:
            return False  # what we waited for: close
        self._incoming = None  # cut short by the EOF: it can never complete
        self.state.no_more_requests()
        # With a worker running, it answers the queue, then closes; else False closes now
        # (connection_lost stops the timer).
        return self._worker is not None

    def data_received(self, data: bytes) -> None:
        incoming = self._incoming
        if incoming is None:
            phase = self.state.phase
            if phase is not IDLE and phase is not ACTIVE:
                return  # the connection is ending (or lingering): nothing here is a request
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No upgrades here (no websockets, no h2c): answer what was parsed, then close.
            self._finish_with(None)
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _StopParsing):
                return
            if isinstance(cause, HTTPError):
                self._refuse(error_response(cause))
            else:
                log.error("parser callback failed", exc_info=cause)
                self._refuse(INTERNAL_ERROR)
            return
        except httptools.HttpParserError as exc:
            if self.parser.get_method() == b"PRI":
                # "PRI * HTTP/2.0", the HTTP/2 connection preface (RFC 9113 §3.4): llhttp
                # stops at it before check_head could see the version.
                self._refuse(error_response(version_not_supported("2.0")))
            else:
                self._refuse(error_response(HTTPError(400, "bad_request", f"malformed request: {exc}")))
            return
        # httptools buffers a header name or value until its line ends, so a client sending
        # one endless header line would never reach on_header's check, and the buffer grows
        # (quadratically: it is re-concatenated per chunk). Count the chunks that fell wholly
        # inside one request's head; what escapes the count is at most the chunks where the
        # head began and ended, so memory stays within the limit plus two reads.
        if incoming is not None and incoming.in_head and self._incoming is incoming:
            incoming.raw_head_bytes += len(data)
            if incoming.raw_head_bytes > self.limits.max_header_bytes:
                self._refuse(error_response(_HEADERS_TOO_LARGE))

    def pause_writing(self) -> None:
        assert self.flow is not None
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        assert self.flow is not None
        self.flow.resume_writing()

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self.state.begin_request():
            # Pipelined bytes after a request that closes the connection: not ours to answer.
            raise _StopParsing
        self._incoming = Incoming()
        self.deadline.set(self.limits.request_timeout, self._request_timeout)

    def on_url(self, url: bytes) -> None:
        incoming = self._incoming
        assert incoming is not None
        incoming.url += url
        incoming.head_bytes += len(url)
        if incoming.head_bytes > self.limits.max_header_bytes:
            raise HTTPError(414, "uri_too_long", "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        incoming = self._incoming
        assert incoming is not None
        incoming.head_bytes += len(name) + len(value) + 4
        if incoming.head_bytes > self.limits.max_header_bytes:
            raise _HEADERS_TOO_LARGE
        if not incoming.in_head:
            # A chunked body's trailer field: counted against the limit, but not merged into
            # the headers the app sees (RFC 9110 §6.5.1: the server cannot know it is safe).
            return
        if len(incoming.headers) >= self.limits.max_headers:
            raise HTTPError(431, "too_many_headers", "too many request headers")
        incoming.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        incoming = self._incoming
        assert incoming is not None
        incoming.in_head = False
        incoming.method = self.parser.get_method().decode("ascii")
        incoming.http_version = self.parser.get_http_version()
        incoming.keep_alive = self.parser.should_keep_alive()
        if check_head(incoming, self.limits):
            if self._worker is None:
                self._write_raw(CONTINUE)
            else:
                # Written now, it would land inside the answer to an earlier request still in
                # flight: the worker sends it once everything before this request is answered.
                incoming.continue_pending = True

    def on_body(self, body: bytes) -> None:
        incoming = self._incoming
        assert incoming is not None
        incoming.body += body
        if len(incoming.body) > self.limits.max_body_bytes:
            raise payload_too_large(self.limits.max_body_bytes)

    def on_message_complete(self) -> None:
        incoming = self._incoming
        assert incoming is not None
        self._incoming = None
        self.deadline.clear()
        if not incoming.keep_alive:
            self.state.no_more_requests()
        direct = self.server_state.direct
        if direct is not None:
            self._enqueue(DirectCycle(self, incoming, direct))
        else:
            self._enqueue(ASGICycle(self, incoming, self.server_state.app))

    # -- the queue of requests, answered in order ------------------------------------------

    def _enqueue(self, item: DirectCycle | ASGICycle | Response) -> None:
        self._queue.append(item)
        if len(self._queue) > self.limits.max_pipelined:
            assert self.flow is not None
            self.flow.pause_reading()
        if self._worker is None:
            task = start_worker(self.loop, self._answer_queue(), self.context)
            if task is not None:
                self._worker = task
                self.server_state.tasks.add(task)
                task.add_done_callback(self.server_state.tasks.discard)

    def _refuse(self, error: Response) -> None:
        """A request refused while it arrives: answer ``error`` after what is queued, then
        linger (the client may still be sending what we refused; see connection.py)."""
        self.state.no_more_requests(linger=True)
        self._finish_with(error)

    def _finish_with(self, error: Response | None) -> None:
        """Accept nothing more; answer what is queued, then ``error`` if any, then close."""
        self.state.no_more_requests()
        self._incoming = None  # a half-parsed request is abandoned, and so is the parser
        self.deadline.clear()
        if error is not None:
            self._enqueue(error)
        elif self._worker is None:
            self._settle()

    async def _answer_queue(self) -> None:
        flow = self.flow
        assert flow is not None
        try:
            while self._queue and self.state.phase is not CLOSED:
                item = self._queue.popleft()
                if isinstance(item, Response):  # a protocol error: the last thing said here
                    self.write(item, False, extra=next(request_id.fresh))
                    break
                await item.run()
                if not item.keep_alive:
                    break  # it said "connection: close": anything behind it is dropped
                if flow.read_paused and len(self._queue) <= self.limits.max_pipelined // 2:
                    flow.resume_reading()
        finally:
            self._worker = None
        step = self.state.next(self._incoming is not None)
        if step is KEEP_ALIVE:  # the common case, taken here without a call
            self.deadline.set(self.limits.keepalive_timeout, self._idle_timeout)
        else:
            self._take(step)

    def _settle(self) -> None:
        """Nothing is being answered: take the step the connection state names."""
        self._take(self.state.next(self._incoming is not None))

    def _take(self, step: Next) -> None:
        incoming = self._incoming
        if step is KEEP_ALIVE:
            self.deadline.set(self.limits.keepalive_timeout, self._idle_timeout)
        elif step is WAIT:
            # A request is still arriving (its deadline runs); if it asked for 100-continue
            # while we were busy, now is its turn.
            assert incoming is not None
            if incoming.continue_pending:
                incoming.continue_pending = False
                self._write_raw(CONTINUE)
        elif step is LINGER:
            self._linger()
        else:
            self.close()

    def _linger(self) -> None:
        """Shut our sending side once the answer is out, then read and discard (see
        data_received) until the client's EOF or the lingering deadline, then close."""
        transport = self.transport
        assert transport is not None and self.flow is not None
        if transport.can_write_eof():
            transport.write_eof()
        self.flow.resume_reading()
        self.deadline.set(self.limits.lingering_time, self.close)

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        response: Response,
        keep_alive: bool,
        head: bool = False,
        length: int | None = None,
        http10: bool = False,
        extra: bytes = b"",
    ) -> bool:
        """Write a whole answer; ``keep_alive``: what the request and the app allow; ``extra``:
        header lines to add (the request id's). Return
        whether the connection stays open after it (``ConnectionState.keeps_alive``)."""
        keep_alive = self.state.keeps_alive(keep_alive, not self._queue and self._incoming is None)
        self._write_raw(render(response, keep_alive, head, length, http10, extra))
        return keep_alive

    def _write_raw(self, data: bytes) -> None:
        # After close() (or the runner's abort) the transport may still exist for a moment;
        # writing to it then raises in uvloop, inside the app's send().
        transport = self.transport
        if transport is not None and not transport.is_closing() and self.state.phase is not CLOSED:
            transport.write(data)

    # -- deadlines and closing -------------------------------------------------------------

    def _idle_timeout(self) -> None:
        if self.state.phase is IDLE:
            self.close()

    def _request_timeout(self) -> None:
        assert self.flow is not None
        if self.flow.read_paused:
            # We stopped reading (too many pipelined requests waiting): the stall is ours,
            # not the client's. Give it another period; we will be reading again by then.
            self.deadline.set(self.limits.request_timeout, self._request_timeout)
            return
        self._finish_with(error_response(HTTPError(408, "request_timeout", "request not received in time")))

    def shutdown(self) -> None:
        """Server shutdown: accept no new request; close now if idle, else once every
        request already received (even partly: its deadline bounds it) has been answered."""
        self.state.no_more_requests()
        if self._worker is None:
            self._settle()

    def close(self) -> None:
        self.deadline.stop()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Cut the connection now, unanswered (the runner, when the shutdown grace is over)."""
        if self.transport is not None:
            self.transport.abort()


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None
