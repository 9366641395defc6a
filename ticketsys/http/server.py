"""The embedded HTTP/1.1 server: an asyncio Protocol on uvloop, httptools for parsing.

How the flow works. ``HttpConnection`` is one per connection: it feeds received bytes to the
parser, whose callbacks assemble one request at a time (URL, headers, body, each under its
limit). A complete request joins the connection's queue; a single task per connection answers
the queue in order, so pipelined requests get their responses in the order they came, and the
task exists only while there is work. Each request gets a ``RequestCycle``: its ASGI scope,
``receive``/``send``, and the flags of its response (started, complete, keep-alive).

Timers: one handle per connection, re-armed only through ``_arm_timer`` (which cancels the
previous). While idle it is the keep-alive timer (close quietly); from the first byte of a
request until its last it is the request timer (408, close).

Protocol errors (garbage, smuggling attempts, oversize heads or bodies) are answered with a
JSON error and ``Connection: close`` after whatever was already queued, then the connection
closes; the process never notices.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

import httptools

from ticketsys.http.application import Scope
from ticketsys.http.errors import HTTPError
from ticketsys.http.limits import ServerLimits
from ticketsys.http.responses import Response, error_response, status_line

log = logging.getLogger("ticketsys.server")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_ASGI = {"version": "3.0", "spec_version": "2.3"}
_INTERNAL_ERROR = error_response(HTTPError(500, "internal_error", "internal server error"))


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
        self.limits = limits
        self.connections: set[HttpConnection] = set()
        self.closing = False


class _Incoming:
    """A request being assembled by the parser callbacks."""

    __slots__ = ("url", "headers", "body", "head_bytes", "method", "keep_alive")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.head_bytes = 0
        self.method = ""
        self.keep_alive = True


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
        self._timer: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._close_after_queue = False
        self.closed = False
        self.disconnected = asyncio.Event()

    # -- transport callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Responses are written whole; Nagle would only delay them.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server_addr = _address(transport.get_extra_info("sockname"))
        self.client_addr = _address(transport.get_extra_info("peername"))
        self.state.connections.add(self)
        self._arm_timer(self.limits.keepalive_timeout, self._idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        self._cancel_timer()
        self.disconnected.set()
        self._writable.set()  # wake a writer stuck in drain(); it will see `closed`

    def data_received(self, data: bytes) -> None:
        if self._close_after_queue:
            return  # an error is queued and the connection will close: ignore the rest
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No upgrades here (no websockets, no h2c): answer what was parsed, then close.
            self._finish_with(None)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, HTTPError):
                self._finish_with(error_response(cause))
            else:
                log.exception("parser callback failed", exc_info=cause)
                self._finish_with(_INTERNAL_ERROR)
        except httptools.HttpParserError as exc:
            self._finish_with(error_response(HTTPError(400, "bad_request", f"malformed request: {exc}")))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
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
        if len(incoming.headers) >= self.limits.max_headers:
            raise HTTPError(431, "too_many_headers", "too many request headers")
        incoming.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        incoming = self._incoming
        assert incoming is not None
        incoming.method = self.parser.get_method().decode("ascii")
        incoming.keep_alive = self.parser.should_keep_alive()
        expects_continue = False
        for name, value in incoming.headers:
            if name == b"content-length" and int(value) > self.limits.max_body_bytes:
                raise _body_too_large(self.limits)
            if name == b"transfer-encoding" and value.strip().lower() != b"chunked":
                # llhttp accepts "gzip, chunked"; we decode no codings, so refuse (RFC 9112 §6.1).
                raise HTTPError(501, "unsupported_transfer_encoding", "only chunked is supported")
            if name == b"expect" and value.lower() == b"100-continue":
                expects_continue = True
        if expects_continue and self.transport is not None and not self._queue:
            self.transport.write(_CONTINUE)

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

    # -- the queue of requests, answered in order ------------------------------------------

    def _enqueue(self, item: RequestCycle | Response) -> None:
        self._queue.append(item)
        if len(self._queue) > self.limits.max_pipelined:
            self._pause_reading()
        if self._worker is None:
            self._worker = self.loop.create_task(self._answer_queue())

    def _finish_with(self, error: Response | None) -> None:
        """Stop reading; answer what is queued, then ``error`` if any, then close."""
        self._close_after_queue = True
        self._cancel_timer()
        if error is not None:
            self._enqueue(error)
        elif self._worker is None:
            self.close()

    async def _answer_queue(self) -> None:
        try:
            while self._queue and not self.closed:
                item = self._queue.popleft()
                if isinstance(item, Response):  # a protocol error: the last thing said here
                    self.write_response(item, keep_alive=False)
                    break
                await item.run()
                if not item.keep_alive:
                    break
                if self._reading_paused and len(self._queue) <= self.limits.max_pipelined // 2:
                    self._resume_reading()
        finally:
            self._worker = None
        if self.closed:
            return
        if self._queue or self._close_after_queue or self.state.closing:
            self.close()  # a response said "connection: close"; anything behind it is dropped
        elif self._incoming is None:
            self._arm_timer(self.limits.keepalive_timeout, self._idle_timeout)

    def response_keeps_alive(self, request_keep_alive: bool) -> bool:
        """Whether the response being written may leave the connection open: not if the
        client asked to close, nor if it is the last one before a shutdown or an error."""
        if not request_keep_alive:
            return False
        is_last = not self._queue
        return not (is_last and (self._close_after_queue or self.state.closing))

    # -- writing ---------------------------------------------------------------------------

    def write_response(
        self, response: Response, *, keep_alive: bool, head: bool = False, length: int | None = None
    ) -> None:
        """Write a whole response. ``head`` omits the body but keeps its declared ``length``."""
        if self.closed or self.transport is None:
            return
        head_block = (
            status_line(response.status)
            + b"content-type: "
            + response.content_type
            + b"\r\ncontent-length: %d\r\n" % (len(response.body) if length is None else length)
            + b"".join(name + b": " + value + b"\r\n" for name, value in response.headers)
            + DATE.line()
            + (b"\r\n" if keep_alive else b"connection: close\r\n\r\n")
        )
        self.transport.write(head_block if head else head_block + response.body)

    async def drain(self) -> None:
        if not self._writable.is_set():
            await self._writable.wait()

    # -- timers and closing ----------------------------------------------------------------

    def _arm_timer(self, delay: float, callback: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _idle_timeout(self) -> None:
        self._timer = None
        if self._worker is None and self._incoming is None:
            self.close()

    def _request_timeout(self) -> None:
        self._timer = None
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
        """Server shutdown: close if idle, else finish what was received and close after."""
        self._pause_reading()
        if self._worker is None and self._incoming is None:
            self.close()
        elif self._worker is None:
            self._finish_with(None)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _body_too_large(limits: ServerLimits) -> HTTPError:
    return HTTPError(413, "payload_too_large", f"request body exceeds {limits.max_body_bytes} bytes")


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


class RequestCycle:
    """One request and its response: the ASGI ``receive``/``send`` pair and their flags."""

    __slots__ = ("conn", "scope", "body", "keep_alive", "started", "complete", "status", "headers", "_body_sent")

    def __init__(self, conn: HttpConnection, incoming: _Incoming) -> None:
        self.conn = conn
        raw_path, _, query = incoming.url.partition(b"?")
        if not raw_path.startswith(b"/"):  # absolute-form (a proxy-style request)
            parsed = httptools.parse_url(incoming.url)
            raw_path, query = parsed.path or b"/", parsed.query or b""
        path = raw_path.decode("latin-1")
        self.scope: Scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": "1.1",
            "server": conn.server_addr,
            "client": conn.client_addr,
            "scheme": "http",
            "method": incoming.method,
            "root_path": "",
            "path": unquote(path) if "%" in path else path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": incoming.headers,
        }
        self.body = incoming.body
        self.keep_alive = incoming.keep_alive
        self.started = False
        self.complete = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._body_sent = False

    async def run(self) -> None:
        try:
            await self.conn.state.app(self.scope, self.receive, self.send)
        except Exception:
            log.exception("application error in %s %s", self.scope["method"], self.scope["path"])
            if not self.started:
                self.keep_alive = self.conn.response_keeps_alive(self.keep_alive)
                self.conn.write_response(_INTERNAL_ERROR, keep_alive=self.keep_alive)
            else:
                self.keep_alive = False
            return
        if not self.complete:
            if not self.started:
                log.error("application returned without a response: %s", self.scope["path"])
                self.conn.write_response(_INTERNAL_ERROR, keep_alive=False)
            self.keep_alive = False

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
        if self.scope["method"] == "HEAD":
            # The app sent no body, but declared the length GET's body would have had.
            length = _declared_length(self.headers)
            self.conn.write_response(response, keep_alive=self.keep_alive, head=True, length=length)
        else:
            self.conn.write_response(response, keep_alive=self.keep_alive)


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value)
    return 0
