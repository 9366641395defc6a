"""HTTP/1.1 clients for service-to-service calls: one interface, two implementations.

``HttpPool`` is ours: an asyncio Protocol per connection, httptools' response parser, one
request in flight per connection, idle connections reused last-in-first-out. ``HttpxClient``
wraps httpx's pool behind the same interface. Both raise only the ``ClientError`` family
below, so callers translate failures in one place and never import an HTTP library.

Retries: ``HttpPool`` and ``HttpxClient`` repeat nothing. ``Replicas`` (several clients for
replicas of one service) moves a request to the next replica when the connection could not
be made (it was never sent), and repeats it once more only when the caller says it is
idempotent (a GET, or a call carrying an idempotency key). A timeout is never repeated.

Stale connections: a connection the server closed while idle gets ``connection_lost`` from the
loop and leaves the pool; ``keepalive_expiry`` (shorter than the server's keep-alive timeout)
keeps us from picking one the server is about to close.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httptools


class ClientError(Exception):
    """Base of the client's failures."""


class ConnectError(ClientError):
    """No connection could be made: the request was certainly not sent."""


class ClientTimeout(ClientError):
    """No answer in time. The request may have been processed."""


class RemoteProtocolError(ClientError):
    """The connection broke or the peer spoke nonsense. The request may have been processed."""


@dataclass(frozen=True, slots=True)
class ClientResponse:
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class ClientOptions:
    base_url: str
    connect_timeout: float = 0.25
    read_timeout: float = 0.5
    max_connections: int = 100
    keepalive_expiry: float = 2.0
    headers: tuple[tuple[str, str], ...] = ()  # sent with every request (e.g. authorization)


Headers = tuple[tuple[str, str], ...]


class HttpClient(Protocol):
    """What a service needs of an HTTP client: JSON bodies in, status and bytes out."""

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Headers = (),
        *,
        idempotent: bool = False,
    ) -> ClientResponse:
        """Send one request and read its whole response. Raises ``ClientError`` only.
        ``idempotent``: the request may be repeated if its reply was lost."""
        ...

    async def aclose(self) -> None:
        """Close every connection; the client is unusable afterwards."""
        ...


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


class HttpPool:
    """Our own keep-alive pool (see the module docstring)."""

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
    ) -> ClientResponse:
        conn = await self._acquire()
        try:
            response = await conn.send(self._render(method, path, body, headers), self.options.read_timeout)
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

    def _render(self, method: str, path: str, body: bytes | None, headers: Headers) -> bytes:
        head = b"%s %s HTTP/1.1\r\n" % (method.encode(), path.encode()) + self._fixed_headers
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
        return f"<HttpPool {self.host}:{self.port} open={self._open} idle={len(self._idle)}>"


def _render_headers(headers: Headers) -> bytes:
    for name, value in headers:
        if any(c in name + value for c in "\r\n\0"):
            raise ValueError(f"header {name!r} contains a line break")  # header injection
    return b"".join(b"%s: %s\r\n" % (n.encode("latin-1"), v.encode("latin-1")) for n, v in headers)


class HttpxClient:
    """httpx's pool behind the same interface, its exceptions mapped to ``ClientError``."""

    def __init__(self, options: ClientOptions) -> None:
        import httpx

        self._httpx = httpx
        o = options
        self._client = httpx.AsyncClient(
            base_url=o.base_url,
            timeout=httpx.Timeout(o.read_timeout, connect=o.connect_timeout, pool=o.connect_timeout),
            limits=httpx.Limits(
                max_connections=o.max_connections,
                max_keepalive_connections=o.max_connections,
                keepalive_expiry=o.keepalive_expiry,
            ),
            headers=dict(o.headers),
        )

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Headers = (),
        *,
        idempotent: bool = False,
    ) -> ClientResponse:
        httpx = self._httpx
        sent = dict(headers)
        if body is not None:
            sent["content-type"] = "application/json"
        try:
            response = await self._client.request(method, path, content=body, headers=sent)
        except httpx.ConnectTimeout as exc:
            raise ConnectError(f"connect timed out: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise ClientTimeout(f"{type(exc).__name__}: {exc}") from exc
        except httpx.ConnectError as exc:
            raise ConnectError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise RemoteProtocolError(f"{type(exc).__name__}: {exc}") from exc
        return ClientResponse(response.status_code, response.content)

    async def aclose(self) -> None:
        await self._client.aclose()


CLIENTS: dict[str, type[HttpPool] | type[HttpxClient]] = {"pool": HttpPool, "httpx": HttpxClient}


class Replicas:
    """One client per replica of a service: requests go round-robin; a replica whose
    connection was refused is tried last for ``down_for`` seconds."""

    def __init__(self, clients: list[HttpClient], *, down_for: float = 1.0) -> None:
        assert clients
        self.clients = clients
        self.down_for = down_for
        self._down_until = [0.0] * len(clients)
        self._next = 0

    def _order(self) -> list[int]:
        count = len(self.clients)
        start, self._next = self._next, (self._next + 1) % count
        rotated = [(start + i) % count for i in range(count)]
        now = asyncio.get_running_loop().time()
        return sorted(rotated, key=lambda i: self._down_until[i] > now)  # stable: up ones first

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Headers = (),
        *,
        idempotent: bool = False,
    ) -> ClientResponse:
        order = self._order()
        if idempotent and len(order) == 1:
            order *= 2  # a single replica: one repeat on the same one (a stale connection)
        repeated = False
        failure: ClientError | None = None
        for index in order:
            try:
                return await self.clients[index].request(method, path, body, headers, idempotent=idempotent)
            except ConnectError as exc:  # never sent: the next replica may have it
                self._down_until[index] = asyncio.get_running_loop().time() + self.down_for
                failure = exc
            except RemoteProtocolError as exc:  # maybe processed: repeat only the idempotent, once
                if not idempotent or repeated:
                    raise
                repeated, failure = True, exc
        assert failure is not None
        raise failure

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    def __repr__(self) -> str:
        return f"<Replicas {self.clients!r}>"
