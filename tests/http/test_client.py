"""Both HttpClient implementations against a real server on loopback."""

from __future__ import annotations

import asyncio
import importlib.util
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
)
from ticketsys.http.models import Request, Response
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.http.server import Server, ServerLimits

# httpx is an optional extra: its twin is tested where it is installed.
HAS_HTTPX = importlib.util.find_spec("httpx") is not None
KINDS = [
    pytest.param(
        kind, id=kind, marks=pytest.mark.skipif(kind == "httpx" and not HAS_HTTPX, reason="no httpx")
    )
    for kind in CLIENTS
]


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
    """Without pipelining, a request finding the only connection busy waits for it, and fails
    unsent once its connect timeout is over (the busy one is not disturbed)."""

    async def test() -> None:
        backend = Backend()
        async with serving(backend) as server:
            pool = HttpPool(
                ClientOptions(
                    f"http://127.0.0.1:{server.port}", max_connections=1, max_pipeline=1, connect_timeout=0.05
                )
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


# -- pipelining against the real server ---------------------------------------------------


def test_pipelined_requests_are_answered_in_order_on_few_connections() -> None:
    async def test() -> None:
        async with serving(Backend()) as server:
            pool = HttpPool(ClientOptions(f"http://127.0.0.1:{server.port}", max_pipeline=8))
            try:
                bodies = [b'{"i": %d}' % i for i in range(50)]
                answers = await asyncio.gather(*(pool.request("POST", "/echo", body) for body in bodies))
                assert [a.body for a in answers] == [
                    b'{"body":"{\\"i\\": %d}","method":"POST"}' % i for i in range(50)
                ]
                assert len(server.state.connections) <= 7  # ceil(50 / 8): one write each
            finally:
                await pool.aclose()

    run(test)


def test_requests_behind_a_closing_answer_are_sent_again_and_answered() -> None:
    """The server answers /close with "connection: close" and drops what was pipelined behind
    it (it must not process it): the pool sends those again on a new connection."""

    async def test() -> None:
        async with serving(Backend()) as server:
            pool = HttpPool(ClientOptions(f"http://127.0.0.1:{server.port}", max_pipeline=8))
            try:
                paths = ["/echo", "/close", "/echo", "/echo"]
                answers = await asyncio.gather(*(pool.request("GET", path) for path in paths))
                assert [a.status for a in answers] == [200] * 4
                assert answers[2].body == answers[3].body == b'{"body":"","method":"GET"}'
            finally:
                await pool.aclose()

    run(test)


def test_a_server_hanging_up_mid_pipeline_fails_the_unanswered_as_maybe_processed() -> None:
    async def test() -> None:
        async def answer_two_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for _ in range(2):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer_two_then_hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = HttpPool(ClientOptions(f"http://127.0.0.1:{port}", max_pipeline=4))
        try:
            outcomes = await asyncio.gather(
                *(pool.request("GET", f"/{i}") for i in range(4)), return_exceptions=True
            )
            assert [getattr(o, "status", type(o)) for o in outcomes] == [
                200,
                200,
                RemoteProtocolError,
                RemoteProtocolError,
            ]
        finally:
            await pool.aclose()
            server.close()
            await server.wait_closed()

    run(test)


def test_aclose_while_busy_fails_the_requests_and_closes_their_connections() -> None:
    async def test() -> None:
        backend = Backend()
        async with serving(backend) as server:
            pool = HttpPool(ClientOptions(f"http://127.0.0.1:{server.port}", max_pipeline=2))
            busy = [asyncio.ensure_future(pool.request("GET", "/slow")) for _ in range(5)]
            while len(server.state.connections) < 3:
                await asyncio.sleep(0.001)  # until the server has accepted all three
            assert "5 in flight" in repr(pool)
            await pool.aclose()
            outcomes = await asyncio.gather(*busy, return_exceptions=True)
            assert all(isinstance(o, RemoteProtocolError) for o in outcomes), outcomes
            # The server keeps a half-closed connection until its running request is answered.
            backend.release.set()
            while server.state.connections:
                await asyncio.sleep(0.001)  # the server sees every connection closed: none leaked
            assert "connections: 0 active, 0 idle" in repr(pool)

    run(test)
