"""The embedded HTTP/1.1 server: an asyncio Protocol on uvloop, httptools for parsing.

How the flow works. ``HttpConnection`` is one per connection: it feeds received bytes to the
parser, whose callbacks assemble one request at a time (URL, headers, body, each under its
limit). A complete request joins the connection's queue; a single task per connection answers
the queue in order, so pipelined requests get their responses in the order they came, and the
task exists only while there is work. Each request gets a ``RequestCycle``: its ASGI scope,
``receive``/``send``, and the flags of its response (started, complete, keep-alive).

Timers: one deadline per connection, set only through ``_arm_timer`` (which replaces the
previous one). While idle it is the keep-alive deadline (close quietly); from the first byte
of a request until its last it is the request deadline (408, close). Deadlines are plain
attributes; at most one loop timer is armed, and when it fires before the current deadline it
re-arms for the rest. A busy keep-alive connection thus re-arms about once per keep-alive
period instead of creating and cancelling two libuv timers per request (~5 us of ~45 here).

Ending a connection. Once the connection is known to end -- a protocol error, a request that
asked to close, a request timeout, or server shutdown -- it accepts no new request
(``_last_request`` is set): bytes after that point are ignored. What was already received
is answered in order; the last response says ``Connection: close``; then the transport
closes. Protocol errors (garbage, smuggling attempts, oversize heads or bodies) are answered
with a JSON error in that way; the process never notices.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

import httptools

from ticketsys.http.application import DirectHandler, Scope
from ticketsys.http.eager import start_worker
from ticketsys.http.errors import HTTPError
from ticketsys.http.limits import ServerLimits
from ticketsys.http.requests import Request
from ticketsys.http.responses import Response, error_response, status_line

log = logging.getLogger("ticketsys.server")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_ASGI = {"version": "3.0", "spec_version": "2.3"}
_INTERNAL_ERROR = error_response(HTTPError(500, "internal_error", "internal server error"))
_HEADERS_TOO_LARGE = HTTPError(431, "headers_too_large", "request headers too large")


class _DateHeader:
    """``Date`` is required of origin servers (RFC 9110 §6.6.1); format it once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self._line


DATE = _DateHeader()


class ServerState:
    """What the server and all its connections share."""

    def __init__(self, app: Any, limits: ServerLimits) -> None:
        self.app = app
        # Set by the runner after start-up when the app offers one (see RequestCycle).
        self.direct: DirectHandler | None = None
        self.limits = limits
        self.connections: set[HttpConnection] = set()
        self.closing = False
        # Every connection's worker task, until done: the loop keeps only weak references to
        # tasks, and a handler may outlive its connection (the client left mid-request).
        self.tasks: set[asyncio.Task[None]] = set()
        # Set whenever no connection is open: the runner's shutdown waits on it.
        self.all_closed = asyncio.Event()
        self.all_closed.set()

    def add(self, conn: HttpConnection) -> None:
        self.connections.add(conn)
        self.all_closed.clear()

    def discard(self, conn: HttpConnection) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self.all_closed.set()


class _Incoming:
    """A request being assembled by the parser callbacks."""

    __slots__ = (
        "body",
        "continue_pending",
        "head_bytes",
        "headers",
        "http_version",
        "in_head",
        "keep_alive",
        "method",
        "raw_head_bytes",
        "url",
    )

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.head_bytes = 0  # request line and header fields, as the callbacks report them
        self.raw_head_bytes = 0  # bytes received while the head was still open: see data_received
        self.in_head = True
        self.method = ""
        self.http_version = "1.1"
        self.keep_alive = True
        self.continue_pending = False


class _StopParsing(Exception):
    """Raised by ``on_message_begin`` once the connection accepts no new request."""


class HttpConnection(asyncio.Protocol):
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.limits = state.limits
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.server_addr: tuple[str, int] | None = None
        self.client_addr: tuple[str, int] | None = None
        self._incoming: _Incoming | None = None
        self._queue: deque[RequestCycle | Response] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None  # the armed loop timer, if any
        self._timer_at = 0.0  # when it fires
        self._deadline = 0.0
        self._on_deadline: Callable[[], None] | None = None  # None: no deadline pending
        self._reading_paused = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._last_request = False  # no new request will be accepted on this connection
        self.closed = False
        self.disconnected = asyncio.Event()

    def __repr__(self) -> str:
        return (
            f"<HttpConnection client={self.client_addr} queued={len(self._queue)} "
            f"busy={self._worker is not None} closed={self.closed}>"
        )

    # -- transport callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Responses are written whole; Nagle would only delay them.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server_addr = _address(transport.get_extra_info("sockname"))
        self.client_addr = _address(transport.get_extra_info("peername"))
        self.state.add(self)
        if self.state.closing:  # accepted in the instant the server began to shut down
            self.close()
            return
        self._arm_timer(self.limits.keepalive_timeout, self._idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.discard(self)
        self._stop_timer()
        self.disconnected.set()
        self._writable.set()  # wake a writer stuck in drain(); it will see `closed`

    def eof_received(self) -> bool:
        """The client shut its sending side (``nc -N``, ``curl`` never does, some load tools
        do) but may still read: answer every request it sent in full, then close. Closing at
        once (the default) would drop answers to purchases that did go through."""
        self._last_request = True
        self._incoming = None  # cut short by the EOF: it can never complete
        # With a worker running, it answers the queue, then closes (``_last_request``); else
        # False closes now (connection_lost stops the timer).
        return self._worker is not None

    def data_received(self, data: bytes) -> None:
        incoming = self._incoming
        if self._last_request and incoming is None:
            return  # the connection is ending: nothing after this point is a request
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
                self._finish_with(error_response(cause))
            else:
                log.error("parser callback failed", exc_info=cause)
                self._finish_with(_INTERNAL_ERROR)
            return
        except httptools.HttpParserError as exc:
            self._finish_with(error_response(HTTPError(400, "bad_request", f"malformed request: {exc}")))
            return
        # httptools buffers a header name or value until its line ends, so a client sending
        # one endless header line would never reach on_header's check, and the buffer grows
        # (quadratically: it is re-concatenated per chunk). Count the chunks that fell wholly
        # inside one request's head; what escapes the count is at most the chunks where the
        # head began and ended, so memory stays within the limit plus two reads.
        if incoming is not None and incoming.in_head and self._incoming is incoming:
            incoming.raw_head_bytes += len(data)
            if incoming.raw_head_bytes > self.limits.max_header_bytes:
                self._finish_with(error_response(_HEADERS_TOO_LARGE))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._last_request:
            # Pipelined bytes after a request that closes the connection: not ours to answer.
            raise _StopParsing
        self._incoming = _Incoming()
        self._arm_timer(self.limits.request_timeout, self._request_timeout)

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
            raise HTTPError(431, "headers_too_large", "request headers too large")
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
        expects_continue = False
        hosts = 0
        for name, value in incoming.headers:
            if name == b"host":
                hosts += 1
            # llhttp has already refused invalid or duplicate Content-Length, and
            # Content-Length together with Transfer-Encoding, so int() cannot fail here.
            if name == b"content-length" and int(value) > self.limits.max_body_bytes:
                raise _body_too_large(self.limits)
            if name == b"transfer-encoding":
                if value.strip().lower() != b"chunked":
                    # llhttp accepts "gzip, chunked"; we decode no codings: refuse (RFC 9112 §6.1).
                    raise HTTPError(501, "unsupported_transfer_encoding", "only chunked is supported")
                if incoming.http_version == "1.0":
                    # HTTP/1.0 has no chunked coding: the framing is suspect, so answer and
                    # close (RFC 9112 §6.1). llhttp would keep the connection alive.
                    incoming.keep_alive = False
            if name == b"expect" and value.lower() == b"100-continue":
                # An HTTP/1.0 client cannot understand 1xx (RFC 9110 §10.1.1: ignore it).
                expects_continue = incoming.http_version != "1.0"
        if hosts > 1 or (hosts == 0 and incoming.http_version != "1.0"):
            # RFC 9112 §3.2 requires 400 here, as h11 does: with two Hosts a proxy in front of
            # us and we could each route the request to a different place.
            raise HTTPError(400, "bad_request", "exactly one Host header is required")
        if expects_continue:
            if self._worker is None:
                self._write_raw(_CONTINUE)
            else:
                # Written now, it would land inside the answer to an earlier request still in
                # flight: the worker sends it once everything before this request is answered.
                incoming.continue_pending = True

    def on_body(self, body: bytes) -> None:
        incoming = self._incoming
        assert incoming is not None
        incoming.body += body
        if len(incoming.body) > self.limits.max_body_bytes:
            raise _body_too_large(self.limits)

    def on_message_complete(self) -> None:
        incoming = self._incoming
        assert incoming is not None
        self._incoming = None
        self._cancel_timer()
        self._enqueue(RequestCycle(self, incoming))
        if not incoming.keep_alive:
            self._last_request = True

    # -- the queue of requests, answered in order ------------------------------------------

    def _enqueue(self, item: RequestCycle | Response) -> None:
        self._queue.append(item)
        if len(self._queue) > self.limits.max_pipelined:
            self._pause_reading()
        if self._worker is None:
            task = start_worker(self.loop, self._answer_queue())
            if task is not None:
                self._worker = task
                self.state.tasks.add(task)
                task.add_done_callback(self.state.tasks.discard)

    def _finish_with(self, error: Response | None) -> None:
        """Accept nothing more; answer what is queued, then ``error`` if any, then close."""
        self._last_request = True
        self._incoming = None  # a half-parsed request is abandoned, and so is the parser
        self._cancel_timer()
        if error is not None:
            self._enqueue(error)
        elif self._worker is None:
            self.close()

    async def _answer_queue(self) -> None:
        keep_open = True
        try:
            while self._queue and not self.closed:
                item = self._queue.popleft()
                if isinstance(item, Response):  # a protocol error: the last thing said here
                    self.write_response(item, keep_alive=False)
                    keep_open = False
                    break
                await item.run()
                if not item.keep_alive:
                    keep_open = False  # it said "connection: close": anything behind it is dropped
                    break
                if self._reading_paused and len(self._queue) <= self.limits.max_pipelined // 2:
                    self._resume_reading()
        finally:
            self._worker = None
        if self.closed:
            return
        incoming = self._incoming
        if not keep_open:
            self.close()
        elif incoming is not None:
            # A request is still arriving (its timer runs); if it asked for 100-continue while
            # we were busy, now is its turn.
            if incoming.continue_pending:
                incoming.continue_pending = False
                self._write_raw(_CONTINUE)
        elif self._last_request or self.state.closing:
            self.close()  # shutdown began after the last response was written
        else:
            self._arm_timer(self.limits.keepalive_timeout, self._idle_timeout)

    def response_keeps_alive(self, request_keep_alive: bool) -> bool:
        """Whether the response being written may leave the connection open: not if the
        client asked to close, nor if it is the last one before a shutdown or an error."""
        if not request_keep_alive:
            return False
        is_last = not self._queue and self._incoming is None
        return not (is_last and (self._last_request or self.state.closing))

    # -- writing ---------------------------------------------------------------------------

    def write_response(
        self,
        response: Response,
        *,
        keep_alive: bool,
        head: bool = False,
        length: int | None = None,
        http10: bool = False,
    ) -> None:
        """Write a whole response. ``head`` omits the body but keeps its declared ``length``.
        ``http10``: an HTTP/1.0 client assumes close unless told ``keep-alive``."""
        if keep_alive:
            ending = b"connection: keep-alive\r\n\r\n" if http10 else b"\r\n"
        else:
            ending = b"connection: close\r\n\r\n"
        head_block = (
            status_line(response.status)
            + b"content-type: "
            + response.content_type
            + b"\r\ncontent-length: %d\r\n" % (len(response.body) if length is None else length)
            + b"".join(name + b": " + value + b"\r\n" for name, value in response.headers)
            + DATE.line()
            + ending
        )
        self._write_raw(head_block if head else head_block + response.body)

    def _write_raw(self, data: bytes) -> None:
        # After close() (or the runner's abort) the transport may still exist for a moment;
        # writing to it then raises in uvloop, inside the app's send().
        if not self.closed and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        if not self._writable.is_set():
            await self._writable.wait()

    # -- timers and closing ----------------------------------------------------------------

    @property
    def deadline_pending(self) -> bool:
        return self._on_deadline is not None

    def _arm_timer(self, delay: float, callback: Callable[[], None]) -> None:
        when = self.loop.time() + delay
        self._deadline, self._on_deadline = when, callback
        if self._timer is None or when < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_at = self.loop.call_at(when, self._timer_fired), when

    def _cancel_timer(self) -> None:
        self._on_deadline = None  # the armed timer, if any, will find nothing to do

    def _stop_timer(self) -> None:
        self._on_deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timer_fired(self) -> None:
        self._timer = None
        action = self._on_deadline
        if action is None:
            return
        if self.loop.time() < self._deadline:  # moved later since this timer was armed
            self._timer, self._timer_at = self.loop.call_at(self._deadline, self._timer_fired), self._deadline
            return
        self._on_deadline = None
        action()

    def _idle_timeout(self) -> None:
        if self._worker is None and self._incoming is None:
            self.close()

    def _request_timeout(self) -> None:
        if self._reading_paused:
            # We stopped reading (too many pipelined requests waiting): the stall is ours,
            # not the client's. Give it another period; we will be reading again by then.
            self._arm_timer(self.limits.request_timeout, self._request_timeout)
            return
        self._finish_with(error_response(HTTPError(408, "request_timeout", "request not received in time")))

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def shutdown(self) -> None:
        """Server shutdown: accept no new request; close now if idle, else once every
        request already received (even partly: its timer bounds it) has been answered."""
        self._last_request = True
        if self._worker is None and self._incoming is None:
            self.close()

    def close(self) -> None:
        self._stop_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Cut the connection now, unanswered (the runner, when the shutdown grace is over)."""
        if self.transport is not None:
            self.transport.abort()


def _body_too_large(limits: ServerLimits) -> HTTPError:
    return HTTPError(413, "payload_too_large", f"request body exceeds {limits.max_body_bytes} bytes")


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


def _target(url: bytes) -> tuple[bytes, bytes]:
    """The path and query of a request target (origin-form, or absolute-form from a proxy)."""
    raw_path, _, query = url.partition(b"?")
    if raw_path.startswith(b"/"):
        return raw_path, query
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        # llhttp lets "http://" or "http://a:99999/" through; they name no resource.
        raise HTTPError(400, "bad_request", "malformed request target") from None
    return parsed.path or b"/", parsed.query or b""


class RequestCycle:
    """One request and its response: the ASGI ``receive``/``send`` pair and their flags.

    With a direct handler (``ServerState.direct``) the request skips ASGI: no scope, no
    messages, ``App.handle`` gets a ``Request`` and its ``Response`` is written as is. The
    answers are the same bytes either way (the contract suite runs against both)."""

    __slots__ = (
        "_body_sent",
        "body",
        "complete",
        "conn",
        "headers",
        "http10",
        "http_version",
        "keep_alive",
        "method",
        "path",
        "query",
        "raw_path",
        "started",
        "status",
    )

    def __init__(self, conn: HttpConnection, incoming: _Incoming) -> None:
        self.conn = conn
        self.raw_path, self.query = _target(incoming.url)
        path = self.raw_path.decode("latin-1")
        self.path = unquote(path) if "%" in path else path
        self.method = incoming.method
        self.http_version = incoming.http_version
        self.headers: list[tuple[bytes, bytes]] = incoming.headers
        self.body = incoming.body
        self.keep_alive = incoming.keep_alive
        self.http10 = incoming.http_version == "1.0"
        self.started = False
        self.complete = False
        self.status = 0
        self._body_sent = False

    @property
    def scope(self) -> Scope:
        return {
            "type": "http",
            "asgi": _ASGI,
            "http_version": self.http_version,
            "server": self.conn.server_addr,
            "client": self.conn.client_addr,
            "scheme": "http",
            "method": self.method,
            "root_path": "",
            "path": self.path,
            "raw_path": self.raw_path,
            "query_string": self.query,
            "headers": self.headers,
        }

    async def run(self) -> None:
        direct = self.conn.state.direct
        if direct is not None:
            await self._run_direct(direct)
            return
        try:
            await self.conn.state.app(self.scope, self.receive, self.send)
        except Exception:
            log.exception("application error in %s %s", self.method, self.path)
            if not self.started:
                self.keep_alive = self.conn.response_keeps_alive(self.keep_alive)
                self.conn.write_response(_INTERNAL_ERROR, keep_alive=self.keep_alive, http10=self.http10)
            elif not self.complete:
                self.keep_alive = False  # half a response is out: only closing can end it
            return
        if not self.complete:
            if not self.started:
                log.error("application returned without a response: %s", self.path)
                self.conn.write_response(_INTERNAL_ERROR, keep_alive=False)
            self.keep_alive = False

    async def _run_direct(self, handle: DirectHandler) -> None:
        request = Request(self.method, self.path, self.headers, self.body, self.query)
        try:
            response = await handle(request)
        except Exception:  # App.handle answers every error itself; this is a last resort
            log.exception("application error in %s %s", self.method, self.path)
            response = _INTERNAL_ERROR
        self.started = self.complete = True
        self.status = response.status
        self.keep_alive = self.conn.response_keeps_alive(self.keep_alive)
        self.conn.write_response(
            response, keep_alive=self.keep_alive, head=self.method == "HEAD", http10=self.http10
        )
        await self.conn.drain()

    async def receive(self) -> dict[str, Any]:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.conn.disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started = True
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
        elif kind == "http.response.body":
            if not self.started or self.complete:
                raise RuntimeError("http.response.body out of order")
            if message.get("more_body", False):
                raise RuntimeError("streaming responses are not supported by this server")
            self.complete = True
            self._write(message.get("body", b""))
            await self.conn.drain()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _write(self, body: bytes) -> None:
        content_type = b"application/json"
        extra: list[tuple[bytes, bytes]] = []
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-type":
                content_type = value
            elif lower == b"connection" and value.lower() == b"close":
                self.keep_alive = False
            elif lower not in (b"content-length", b"connection", b"date"):
                extra.append((lower, value))
        self.keep_alive = self.conn.response_keeps_alive(self.keep_alive)
        response = Response(self.status, body, content_type, tuple(extra))
        if self.method == "HEAD":
            # The app sent no body, but declared the length GET's body would have had.
            length = _declared_length(self.headers)
            self.conn.write_response(
                response, keep_alive=self.keep_alive, head=True, length=length, http10=self.http10
            )
        else:
            self.conn.write_response(response, keep_alive=self.keep_alive, http10=self.http10)


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value)
    return 0
