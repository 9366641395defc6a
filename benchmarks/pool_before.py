"""The pool as it was before issue 13 (commit e73b81e, ``ticketsys/http/client.py``), kept only
as the baseline that ``test_micro.py`` and ``loadrun.py`` measure the current pool against in
the same run: one request in flight per connection, idle connections reused last-in-first-out,
a woken waiter starting over. Not used by ticketsys; delete it with those benchmarks.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from urllib.parse import urlsplit

import httptools

from ticketsys.http.client import (
    ClientError,
    ClientOptions,
    ClientResponse,
    ClientTimeout,
    ConnectError,
    Headers,
    RemoteProtocolError,
)
from ticketsys.http.client.wire import render_headers as _render_headers


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[ClientResponse] | None = None
        self._body = b""
        self._timer: asyncio.TimerHandle | None = None
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(RemoteProtocolError("connection closed before the response was complete"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RemoteProtocolError(f"malformed response: {exc}"))
            self.close()

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self._waiter = self._waiter, None
        self._cancel_timer()
        if waiter is not None and not waiter.done():
            waiter.set_result(ClientResponse(self.parser.get_status_code(), self._body))
        self._body = b""

    @property
    def usable(self) -> bool:
        """Open, as far as this side knows: the peer's close may still be on its way."""
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def send(self, data: bytes, timeout: float) -> asyncio.Future[ClientResponse]:
        assert self._waiter is None and self.transport is not None
        try:
            self.transport.write(data)
        except RuntimeError as exc:
            # uvloop, when the peer's close reached the transport before connection_lost
            # reached us (seen once when a Vacancy replica was killed): nothing was sent.
            raise ConnectError(f"the pooled connection closed before the request was sent: {exc}") from exc
        self._waiter = self.loop.create_future()
        self._timer = self.loop.call_later(timeout, self._timed_out)
        return self._waiter

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(ClientTimeout("no response in time"))
        self.close()  # a late response must not be read as the answer to the next request

    def _fail(self, error: ClientError) -> None:
        self._cancel_timer()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class BeforePool:
    """The pre-issue-13 ``HttpPool``, unchanged but for its name."""

    def __init__(self, options: ClientOptions) -> None:
        url = urlsplit(options.base_url)
        assert url.scheme == "http" and url.hostname, options.base_url
        self.options = options
        self.host = url.hostname
        self.port = url.port or 80
        self._fixed_headers = b"host: %s\r\n" % url.netloc.encode("ascii") + _render_headers(options.headers)
        self._idle: deque[_Connection] = deque()
        self._open = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

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
        conn = await self._acquire()
        try:
            data = self._render(method, path, body, headers, lines)
            response = await conn.send(data, self.options.read_timeout)
        except BaseException:
            conn.close()
            self._forget(conn)
            raise
        if conn.keep_alive and not conn.closed:
            self._release(conn)
        else:
            conn.close()
            self._forget(conn)
        return response

    def _render(self, method: str, path: str, body: bytes | None, headers: Headers, lines: bytes) -> bytes:
        head = b"%s %s HTTP/1.1\r\n" % (method.encode(), path.encode()) + self._fixed_headers + lines
        if headers:
            head += _render_headers(headers)
        if body is None:
            return head + b"\r\n"
        return head + b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)

    async def _acquire(self) -> _Connection:
        if self._closed:
            raise ConnectError("client is closed")
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._idle:
            conn = self._idle.pop()  # most recently used first: the warmest, least likely stale
            if conn.usable and now - conn.idle_since < self.options.keepalive_expiry:
                return conn
            conn.close()
            self._open -= 1
        if self._open >= self.options.max_connections:
            await self._wait_for_slot(loop)
            return await self._acquire()
        self._open += 1
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(loop), self.host, self.port),
                self.options.connect_timeout,
            )
        except BaseException as exc:
            self._open -= 1
            self._wake_one()
            if isinstance(exc, TimeoutError):
                raise ConnectError(f"connect to {self.host}:{self.port} timed out") from None
            if isinstance(exc, OSError):
                raise ConnectError(
                    f"connect to {self.host}:{self.port} failed: {exc.strerror or exc}"
                ) from None
            raise
        return conn

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop) -> None:
        waiter = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(self.options.connect_timeout, self._pool_timeout, waiter)
        try:
            await waiter
        finally:
            timer.cancel()

    @staticmethod
    def _pool_timeout(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(ClientTimeout("no free connection in the pool in time"))

    def _release(self, conn: _Connection) -> None:
        conn.idle_since = asyncio.get_running_loop().time()
        self._idle.append(conn)
        self._wake_one()

    def _forget(self, conn: _Connection) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        self._open = 0
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ConnectError("client is closed"))

    def __repr__(self) -> str:
        return f"<BeforePool {self.host}:{self.port} open={self._open} idle={len(self._idle)}>"
