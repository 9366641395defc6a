"""Both HttpClient implementations against a real server on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ticketsys.http.application import App
from ticketsys.http.client import (
    CLIENTS,
    ClientOptions,
    ClientTimeout,
    ConnectError,
    HttpClient,
    HttpPool,
    RemoteProtocolError,
    Replicas,
    _Connection,
)
from ticketsys.http.models import Request, Response
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.http.server import Server, ServerLimits

KINDS = [pytest.param(kind, id=kind) for kind in CLIENTS]


class Backend:
    """A server whose handlers record the client ports they saw (one port per connection)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen: list[str] = []

    def app(self) -> App:
        async def echo(request: Request) -> Response:
            return json_response({"body": request.body.decode(), "method": request.method})

        async def slow(request: Request) -> Response:
            await self.release.wait()
            return json_response({"slow": True})

        async def closing(request: Request) -> Response:
            return Response(200, b"{}", headers=((b"connection", b"close"),))

        return App(
            [
                Route("/echo", frozenset({"GET", "POST"}), echo),
                Route("/slow", frozenset({"GET"}), slow),
                Route("/close", frozenset({"GET"}), closing),
            ]
        )


@asynccontextmanager
async def serving(backend: Backend, keepalive: float = 5.0) -> AsyncIterator[Server]:
    server = Server(
        backend.app(), "127.0.0.1", 0, ServerLimits(keepalive_timeout=keepalive, shutdown_grace=0.5)
    )
    await server.start()
    try:
        yield server
    finally:
        backend.release.set()
        await server.shutdown()


def _client(kind: str, port: int, **options: float) -> HttpClient:
    return CLIENTS[kind](ClientOptions(f"http://127.0.0.1:{port}", **options))  # type: ignore[arg-type]


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


@pytest.mark.parametrize("kind", KINDS)
def test_get_and_post(kind: str) -> None:
    async def test() -> None:
        async with serving(Backend()) as server:
            client = _client(kind, server.port)
            try:
                get = await client.request("GET", "/echo")
                post = await client.request("POST", "/echo", b'{"qty": 1}')
            finally:
                await client.aclose()
        assert (get.status, get.body) == (200, b'{"body":"","method":"GET"}')
        assert post.body == b'{"body":"{\\"qty\\": 1}","method":"POST"}'

    run(test)


@pytest.mark.parametrize("kind", KINDS)
def test_connections_are_reused(kind: str) -> None:
    async def test() -> None:
        async with serving(Backend()) as server:
            client = _client(kind, server.port)
            try:
                for _ in range(20):
                    await client.request("GET", "/echo")
                assert len(server.state.connections) == 1
            finally:
                await client.aclose()

    run(test)


@pytest.mark.parametrize("kind", KINDS)
def test_connection_close_answer_is_not_reused(kind: str) -> None:
    async def test() -> None:
        async with serving(Backend()) as server:
            client = _client(kind, server.port)
            try:
                assert (await client.request("GET", "/close")).status == 200
                assert (await client.request("GET", "/echo")).status == 200
            finally:
                await client.aclose()

    run(test)


@pytest.mark.parametrize("kind", KINDS)
def test_refused_connection_is_a_connect_error(kind: str) -> None:
    async def test() -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # bound, not listening: connections are refused
            client = _client(kind, port)
            try:
                with pytest.raises(ConnectError):
                    await client.request("GET", "/echo")
            finally:
                await client.aclose()

    run(test)


@pytest.mark.parametrize("kind", KINDS)
def test_slow_answer_is_a_timeout_and_the_connection_is_dropped(kind: str) -> None:
    async def test() -> None:
        backend = Backend()
        async with serving(backend) as server:
            client = _client(kind, server.port, read_timeout=0.05)
            try:
                with pytest.raises(ClientTimeout):
                    await client.request("GET", "/slow")
                backend.release.set()
                # The late answer to /slow must never be taken for the answer to this one.
                assert (await client.request("GET", "/echo")).body == b'{"body":"","method":"GET"}'
            finally:
                await client.aclose()

    run(test)


@pytest.mark.parametrize("kind", KINDS)
def test_server_restart_is_transparent(kind: str) -> None:
    async def test() -> None:
        backend = Backend()
        async with serving(backend) as first:
            port = first.port
            client = _client(kind, port)
            assert (await client.request("GET", "/echo")).status == 200
        # The server closed our idle connection at shutdown; a new one takes the same port.
        second = Server(backend.app(), "127.0.0.1", port, ServerLimits(shutdown_grace=0.5))
        await second.start()
        try:
            assert (await client.request("GET", "/echo")).status == 200
        finally:
            await client.aclose()
            await second.shutdown()

    run(test)


def test_pool_waits_for_a_free_connection_then_times_out() -> None:
    async def test() -> None:
        backend = Backend()
        async with serving(backend) as server:
            pool = HttpPool(
                ClientOptions(f"http://127.0.0.1:{server.port}", max_connections=1, connect_timeout=0.05)
            )
            try:
                busy = asyncio.ensure_future(pool.request("GET", "/slow"))
                await asyncio.sleep(0)  # let it take the only connection
                with pytest.raises(ClientTimeout):
                    await pool.request("GET", "/echo")
                backend.release.set()
                assert (await busy).status == 200
                assert (await pool.request("GET", "/echo")).status == 200
            finally:
                await pool.aclose()

    run(test)


def test_pool_shares_connections_among_many_callers() -> None:
    async def test() -> None:
        async with serving(Backend()) as server:
            pool = HttpPool(ClientOptions(f"http://127.0.0.1:{server.port}", max_connections=4))
            try:
                answers = await asyncio.gather(*(pool.request("GET", "/echo") for _ in range(200)))
                assert {a.status for a in answers} == {200}
                assert len(server.state.connections) <= 4
            finally:
                await pool.aclose()

    run(test)


def test_peer_closing_mid_request_is_a_protocol_error() -> None:
    async def test() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = HttpPool(ClientOptions(f"http://127.0.0.1:{port}"))
        try:
            with pytest.raises(RemoteProtocolError):
                await pool.request("POST", "/x", b"{}")
        finally:
            await pool.aclose()
            server.close()
            await server.wait_closed()

    run(test)


class Counting:
    """A raw server that counts requests and answers or hangs up, as told."""

    def __init__(self, hang_up: bool = False) -> None:
        self.hang_up = hang_up
        self.requests = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        counter = self

        class Answer(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport
                self.buffer = b""

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                while b"\r\n\r\n" in self.buffer:
                    _, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
                    counter.requests += 1
                    if counter.hang_up:
                        self.transport.close()
                        return
                    self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")  # type: ignore[attr-defined]

        self.server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _replicas(*ports: int) -> Replicas:
    return Replicas([HttpPool(ClientOptions(f"http://127.0.0.1:{port}")) for port in ports])


def test_replicas_share_the_requests() -> None:
    async def test() -> None:
        one, two = Counting(), Counting()
        replicas = _replicas(await one.start(), await two.start())
        try:
            for _ in range(10):
                assert (await replicas.request("GET", "/")).status == 200
            assert (one.requests, two.requests) == (5, 5)
        finally:
            await replicas.aclose()
            await one.stop()
            await two.stop()

    run(test)


def test_replicas_fail_over_a_refused_connection_even_when_not_idempotent() -> None:
    async def test() -> None:
        alive = Counting()
        replicas = _replicas(_refused_port(), await alive.start())
        try:
            for _ in range(4):
                assert (await replicas.request("POST", "/", b"{}")).status == 200
            assert alive.requests == 4
        finally:
            await replicas.aclose()
            await alive.stop()

    run(test)


def test_replicas_all_refusing_is_a_connect_error() -> None:
    async def test() -> None:
        replicas = _replicas(_refused_port(), _refused_port())
        try:
            with pytest.raises(ConnectError):
                await replicas.request("GET", "/")
        finally:
            await replicas.aclose()

    run(test)


def test_a_lost_reply_is_repeated_only_when_idempotent() -> None:
    async def test() -> None:
        rude, polite = Counting(hang_up=True), Counting()
        replicas = _replicas(await rude.start(), await polite.start())
        try:
            with pytest.raises(RemoteProtocolError):
                await replicas.request("POST", "/", b"{}")  # went to the rude one first
            assert polite.requests == 0
            await replicas.request("GET", "/")  # round robin: the polite one now
            # Idempotent, starting at the rude one again: repeated once, on the next replica.
            assert (await replicas.request("POST", "/", b"{}", idempotent=True)).status == 200
            assert (rude.requests, polite.requests) == (2, 2)
        finally:
            await replicas.aclose()
            await rude.stop()
            await polite.stop()

    run(test)


def test_one_replica_repeats_an_idempotent_request_once() -> None:
    async def test() -> None:
        rude = Counting(hang_up=True)
        replicas = _replicas(await rude.start())
        try:
            with pytest.raises(RemoteProtocolError):
                await replicas.request("POST", "/", b"{}", idempotent=True)
            assert rude.requests == 2
        finally:
            await replicas.aclose()
            await rude.stop()

    run(test)


def test_a_write_to_a_connection_closed_under_it_is_a_connect_error() -> None:
    """uvloop raises RuntimeError writing to a transport whose peer's close it has seen but
    not yet reported: nothing was sent, so it is a ConnectError (the next replica may have it)."""

    class ClosedUnderneath(asyncio.Transport):
        def write(self, data: Any) -> None:
            raise RuntimeError("unable to perform operation on <TCPTransport>; the handler is closed")

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return default

    async def test() -> None:
        conn = _Connection(asyncio.get_running_loop())
        conn.connection_made(ClosedUnderneath())
        with pytest.raises(ConnectError):
            conn.send(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n", 1.0)
        assert conn._waiter is None and conn._timer is None  # nothing left waiting

    asyncio.run(test())
