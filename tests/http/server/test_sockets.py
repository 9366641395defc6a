"""The embedded server over real loopback sockets: pipelining, many connections, slow clients,
limits with the default values, and graceful shutdown.

Every test runs on uvloop (what ``bin/ticketsys`` uses) and on asyncio's own loop. Servers
listen on port 0 and tests start talking once ``Server.start()`` has returned: nothing sleeps
to wait for a server.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import socket
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson
import pytest
import uvloop

from tests.http.server.raw import (
    GARBAGE,
    GET_HELLO,
    GET_HELLO_CLOSE,
    GET_MISSING,
    HEAD_HELLO,
    POST_ECHO,
    POST_ECHO_CHUNKED,
    Reply,
    assert_json_error,
)
from ticketsys.config import MEMORY, Settings
from ticketsys.http.application import App
from ticketsys.http.models import Request, Response
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.http.server import Server, ServerLimits
from ticketsys.http.server.connection import Phase

Runner = Callable[[Awaitable[None]], None]

GET_SLOW = b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n"
GET_STUCK = b"GET /stuck HTTP/1.1\r\nHost: test\r\n\r\n"
HUGE_HEADER = b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Big: " + b"h" * (17 * 1024) + b"\r\n\r\n"
HUGE_URL = b"GET /" + b"u" * (17 * 1024) + b" HTTP/1.1\r\nHost: test\r\n\r\n"
HUGE_BODY_HEAD = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1048576\r\n\r\n"
TWO_MIB = 2 * 1024 * 1024
TRIES = 20  # issue 11: http.client got BrokenPipeError instead of the 413 in 4 of 5 tries


def _run_uvloop(main: Awaitable[None]) -> None:
    uvloop.run(main)  # type: ignore[arg-type]


def _run_asyncio(main: Awaitable[None]) -> None:
    asyncio.run(main)  # type: ignore[arg-type]


@pytest.fixture(params=[pytest.param(_run_uvloop, id="uvloop"), pytest.param(_run_asyncio, id="asyncio")])
def run(request: pytest.FixtureRequest) -> Runner:
    runner: Runner = request.param
    return runner


class Backend:
    """A tiny app: ``/slow`` waits for ``release``; ``/stuck`` never returns on its own."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.slow_entered = asyncio.Event()
        self.cancelled: list[str] = []

    def app(self) -> App:
        async def hello(request: Request) -> Response:
            return json_response({"hello": "world"})

        async def echo(request: Request) -> Response:
            return json_response({"bytes": len(request.body), "body": request.body.decode()})

        async def slow(request: Request) -> Response:
            self.slow_entered.set()
            await self.release.wait()
            return json_response({"slow": True})

        async def stuck(request: Request) -> Response:
            self.slow_entered.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(request.path)
                raise
            raise AssertionError("unreachable")

        return App(
            [
                Route("/hello", frozenset({"GET"}), hello),
                Route("/echo", frozenset({"POST"}), echo),
                Route("/slow", frozenset({"GET"}), slow),
                Route("/stuck", frozenset({"GET"}), stuck),
            ]
        )


@asynccontextmanager
async def serving(app: Any, **limits: Any) -> AsyncIterator[Server]:
    limits.setdefault("keepalive_timeout", 60.0)
    server = Server(app, "127.0.0.1", 0, ServerLimits(**limits))
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown()


class Client:
    """A raw HTTP/1.1 client: writes bytes as given, reads one response at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, server: Server) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, head: bool = False) -> Reply:
        block = await self.reader.readuntil(b"\r\n\r\n")
        assert b"Traceback" not in block
        status_line, *lines = block[:-4].split(b"\r\n")
        version, status, _ = status_line.split(b" ", 2)
        assert version == b"HTTP/1.1"
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.lower()] = value.strip()
        length = 0 if head else int(headers[b"content-length"])
        body = await self.reader.readexactly(length)
        assert b"Traceback" not in body
        return Reply(int(status), headers, body)

    async def request(self, data: bytes, head: bool = False) -> Reply:
        await self.send(data)
        return await self.reply(head)

    async def at_eof(self) -> bool:
        """Whether the server closed: the next read gives nothing (a reset counts too). The
        servers here keep idle connections a minute, so only a deliberate close passes."""
        try:
            async with asyncio.timeout(5):
                return await self.reader.read(1) == b""
        except ConnectionResetError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


async def _saw_eof(server: Server) -> None:
    """Until the server's one connection has seen its client shut the sending side. (It stays
    open while a request is still being answered: the client may only have half-closed.)"""
    (connection,) = server.state.connections
    while connection.state.phase is not Phase.CLOSING:
        await asyncio.sleep(0)


def test_pipelining_over_a_socket(run: Runner) -> None:
    async def main() -> None:
        async with serving(Backend().app()) as server:
            client = await Client.connect(server)
            await client.send(GET_HELLO + POST_ECHO + HEAD_HELLO + GET_MISSING + POST_ECHO_CHUNKED)
            replies = [await client.reply(head=i == 2) for i in range(5)]
            assert [r.status for r in replies] == [200, 200, 200, 404, 200]
            assert replies[1].json() == replies[4].json() == {"bytes": 10, "body": '{"qty": 5}'}
            assert replies[2].headers[b"content-length"] == b"17"
            assert (await client.request(GET_HELLO)).json() == {"hello": "world"}  # still open
            await client.close()

    run(main())


def test_pipelining_under_flow_control_keeps_order(run: Runner) -> None:
    # Thousands of requests in flight and a client that writes before it reads: the server
    # must stop reading (max_pipelined) and wait for the socket to drain, and lose nothing.
    count = 3000
    requests = [b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%d" % (len(b"%d" % i), i)
                for i in range(count)]  # fmt: skip

    async def main() -> None:
        async with serving(Backend().app(), max_pipelined=4) as server:
            client = await Client.connect(server)
            writing = asyncio.create_task(client.send(b"".join(requests)))
            for i in range(count):
                reply = await client.reply()
                assert reply.json() == {"bytes": len(b"%d" % i), "body": str(i)}
            await writing
            await client.close()

    run(main())


def test_many_concurrent_keep_alive_connections(run: Runner) -> None:
    clients_count, requests_each = 100, 5

    async def one_client(server: Server) -> Client:
        client = await Client.connect(server)
        for _ in range(requests_each):
            reply = await client.request(GET_HELLO)
            assert reply.status == 200 and b"connection" not in reply.headers
        return client

    async def main() -> None:
        async with serving(Backend().app()) as server:
            clients = await asyncio.gather(*(one_client(server) for _ in range(clients_count)))
            # Every client kept its one connection for all its requests.
            assert len(server.state.connections) == clients_count
            for client in clients:
                await client.close()

    run(main())


def test_connection_close_is_honoured(run: Runner) -> None:
    async def main() -> None:
        async with serving(Backend().app()) as server:
            client = await Client.connect(server)
            reply = await client.request(GET_HELLO_CLOSE)
            assert reply.status == 200 and reply.closes
            assert await client.at_eof()
            await client.close()

    run(main())


def test_a_half_closed_client_still_gets_its_answers(run: Runner) -> None:
    """`printf 'GET ...' | nc -N`: the client sends its requests, shuts its sending side and
    reads. Every request it sent in full is answered (one still running included), then the
    server closes; a request cut short by the half-close is dropped."""

    async def main() -> None:
        backend = Backend()
        async with serving(backend.app()) as server:
            client = await Client.connect(server)
            await client.send(GET_HELLO + GET_SLOW + POST_ECHO + b"GET /hello HTTP/1.1\r\nHo")
            await backend.slow_entered.wait()
            client.writer.write_eof()
            await _saw_eof(server)  # while /slow still runs
            backend.release.set()
            replies = [await client.reply() for _ in range(3)]
            assert [r.status for r in replies] == [200, 200, 200]
            assert replies[2].json()["bytes"] == 10
            assert await client.at_eof()
            await client.close()

            idle = await Client.connect(server)  # nothing asked: the half-close just closes
            idle.writer.write_eof()
            assert await idle.at_eof()
            await idle.close()

    run(main())


def test_slow_client_gets_408_while_others_are_served(run: Runner) -> None:
    trickle = b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"s" * 1000  # never finished

    async def slow_client(server: Server) -> tuple[Reply, float]:
        client = await Client.connect(server)
        answer = asyncio.create_task(client.reply())
        for byte in trickle:  # a byte every 20 ms, as a slowloris would
            if answer.done():
                break
            try:
                await client.send(bytes([byte]))
            except ConnectionError:
                break
            await asyncio.sleep(0.02)  # the client's own pace, not a wait for the server
        reply = await answer
        answered_at = time.monotonic()
        assert await client.at_eof()
        await client.close()
        return reply, answered_at

    async def fast_client(server: Server) -> float:
        client = await Client.connect(server)
        for _ in range(20):
            assert (await client.request(GET_HELLO)).status == 200
        await client.close()
        return time.monotonic()

    async def main() -> None:
        async with serving(Backend().app(), request_timeout=0.3) as server:
            slow = asyncio.create_task(slow_client(server))
            fast_done = await fast_client(server)
            reply, answered_at = await slow
            assert_json_error(reply, 408)
            assert reply.closes
            assert fast_done < answered_at  # served while the slow client still held its slot

    run(main())


def test_garbage_is_400_and_the_server_keeps_serving(run: Runner) -> None:
    async def main() -> None:
        async with serving(Backend().app()) as server:
            client = await Client.connect(server)
            reply = await client.request(GARBAGE)
            assert_json_error(reply, 400)
            assert reply.closes and await client.at_eof()
            await client.close()
            client = await Client.connect(server)
            assert (await client.request(GET_HELLO)).status == 200
            await client.close()

    run(main())


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(HUGE_URL, 414, id="request-line"),
        pytest.param(HUGE_HEADER, 431, id="headers"),
        pytest.param(HUGE_BODY_HEAD, 413, id="body-by-content-length"),
    ],
)
def test_default_limits_refuse_oversize(run: Runner, request_bytes: bytes, status: int) -> None:
    async def main() -> None:
        async with serving(Backend().app()) as server:
            client = await Client.connect(server)
            reply = await client.request(request_bytes)  # the 1 MiB body is never sent
            assert_json_error(reply, status)
            assert await client.at_eof()
            await client.close()

    run(main())


def _post_with_http_client(port: int, body: bytes) -> tuple[int, Any]:
    """What a Python client does: write the whole request, then read the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/echo", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, orjson.loads(response.read())
    finally:
        conn.close()


def _send_then_read(port: int, data: bytes) -> bytes:
    """Write ``data`` whole, then read until the server closes (a raw socket, blocking)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_a_client_writing_a_2_mib_body_reads_the_413(run: Runner) -> None:
    """The server refuses by Content-Length before the body arrives, then lingers, reading and
    discarding it, so the client's writes succeed and its read finds the answer (RFC 9112
    §9.6). Closing at once would reset the connection under both."""

    async def main() -> None:
        async with serving(Backend().app()) as server:
            answers = [await asyncio.to_thread(_post_with_http_client, server.port, b"x" * TWO_MIB)
                       for _ in range(TRIES)]  # fmt: skip
            assert [status for status, _ in answers] == [413] * TRIES
            assert {payload["error"] for _, payload in answers} == {"payload_too_large"}
            client = await Client.connect(server)  # and the server goes on serving
            assert (await client.request(GET_HELLO)).status == 200
            await client.close()

    run(main())


def test_a_client_writing_huge_headers_reads_the_431(run: Runner) -> None:
    head = b"GET /hello HTTP/1.1\r\nHost: test\r\n" + b"X-Pad: %s\r\n" % (b"p" * 1000) * 2000 + b"\r\n"

    async def main() -> None:
        async with serving(Backend().app()) as server:
            for _ in range(TRIES):
                answer = await asyncio.to_thread(_send_then_read, server.port, head)  # 2 MB of headers
                assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
                assert b'"error":"headers_too_large"' in answer

    run(main())


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /hello HTTP/2.0\r\nHost: test\r\n\r\n", id="http-2.0"),
        pytest.param(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", id="h2-preface"),
        pytest.param(b"GET /hello HTTP/3.0\r\nHost: test\r\n\r\n", id="http-3.0"),
    ],
)
def test_unsupported_versions_get_505_over_a_socket(run: Runner, request_bytes: bytes) -> None:
    async def main() -> None:
        async with serving(Backend().app()) as server:
            answer = await asyncio.to_thread(_send_then_read, server.port, request_bytes)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n"), head
            assert b"connection: close" in head
            assert orjson.loads(body)["error"] == "http_version_not_supported"

    run(main())


def test_graceful_shutdown(run: Runner) -> None:
    async def main() -> None:
        backend = Backend()
        server = Server(backend.app(), "127.0.0.1", 0, ServerLimits(shutdown_grace=5.0))
        await server.start()
        busy = await Client.connect(server)
        idle = await Client.connect(server)
        assert (await idle.request(GET_HELLO)).status == 200
        await busy.send(GET_SLOW + GET_HELLO)  # both received before the shutdown
        await backend.slow_entered.wait()

        stopping = asyncio.create_task(server.shutdown())
        assert await idle.at_eof()  # idle connections go at once
        with pytest.raises(ConnectionRefusedError):  # and nobody new gets in
            await asyncio.open_connection("127.0.0.1", server.port)
        assert not stopping.done()

        backend.release.set()
        slow, hello = await busy.reply(), await busy.reply()
        assert (slow.status, slow.json(), slow.closes) == (200, {"slow": True}, False)
        assert (hello.status, hello.closes) == (200, True)  # the last answer says close
        assert await busy.at_eof()
        await stopping
        assert not server.state.connections
        for client in (busy, idle):
            await client.close()

    run(main())


def test_shutdown_grace_cuts_a_stuck_request(run: Runner) -> None:
    async def main() -> None:
        backend = Backend()
        server = Server(backend.app(), "127.0.0.1", 0, ServerLimits(shutdown_grace=0.2))
        await server.start()
        client = await Client.connect(server)
        await client.send(GET_STUCK)
        await backend.slow_entered.wait()
        await server.shutdown()
        assert await client.at_eof()
        assert backend.cancelled == ["/stuck"]  # the handler was told, and could clean up
        assert not server.state.connections
        await client.close()

    run(main())


def test_shutdown_waits_for_a_handler_whose_client_left(run: Runner) -> None:
    async def main() -> None:
        backend = Backend()
        server = Server(backend.app(), "127.0.0.1", 0, ServerLimits(shutdown_grace=5.0))
        await server.start()
        client = await Client.connect(server)
        await client.send(GET_SLOW)
        await backend.slow_entered.wait()
        await client.close()
        await _saw_eof(server)

        stopping = asyncio.create_task(server.shutdown())
        done, _ = await asyncio.wait({stopping}, timeout=0.1)
        assert not done  # a purchase half done is finished, not abandoned
        backend.release.set()
        await stopping
        assert not server.state.tasks and backend.cancelled == []

    run(main())


def test_shutdown_grace_cancels_a_stuck_handler_whose_client_left(run: Runner) -> None:
    async def main() -> None:
        backend = Backend()
        server = Server(backend.app(), "127.0.0.1", 0, ServerLimits(shutdown_grace=0.2))
        await server.start()
        client = await Client.connect(server)
        await client.send(GET_STUCK)
        await backend.slow_entered.wait()
        await client.close()
        await _saw_eof(server)
        await server.shutdown()
        assert backend.cancelled == ["/stuck"] and not server.state.tasks

    run(main())


def test_monolith_over_a_socket(run: Runner) -> None:
    from ticketsys.apps.monolith import build_monolith

    def purchase(qty: int) -> bytes:
        body = orjson.dumps({"qty": qty})
        return (
            b"POST /api/v1/purchase HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    available = b"GET /api/v1/available HTTP/1.1\r\nHost: test\r\n\r\n"

    async def main() -> None:
        async with serving(build_monolith(Settings(initial_stock=10, stock_store=MEMORY))) as server:
            client = await Client.connect(server)
            await client.send(available + purchase(3) + purchase(20) + available + GARBAGE)
            first, bought, refused, after, garbage = [await client.reply() for _ in range(5)]
            assert first.json() == {"available": 10}
            assert bought.status == 200
            expected = {"success": True, "remaining": 7, "message": "Purchase successful!"}
            assert expected.items() <= bought.json().items()
            assert refused.status == 409
            expected = {"success": False, "remaining": 7, "error": "sold_out"}
            assert expected.items() <= refused.json().items()
            assert after.json() == {"available": 7}
            assert_json_error(garbage, 400)
            assert await client.at_eof()
            await client.close()

    run(main())


def test_a_closed_connection_is_freed_without_the_cyclic_gc(run: Runner) -> None:
    # Each end of a connection (the server's protocol, the pool's) is linked to its httptools
    # parser both ways; a connection that ends unlinks, so it goes when its last reference
    # does. Otherwise connections that close pile up for the GC: the long sale's microservices
    # ran a 3-8 ms collection every ~15 s for the pool's connections closed after a burst.
    from ticketsys.http.client import ClientOptions, HttpPool

    async def main() -> None:
        async with serving(Backend().app()) as server:
            pool = HttpPool(ClientOptions(f"http://127.0.0.1:{server.port}", max_pipeline=1))
            gc.disable()
            try:
                answers = await asyncio.gather(*(pool.request("GET", "/hello") for _ in range(8)))
                assert [a.status for a in answers] == [200] * 8
                ends = [weakref.ref(c) for c in (*pool._idle, *server.state.connections)]
                assert len(ends) == 16  # 8 on each side
                await pool.aclose()
                for _ in range(100):  # the server sees each close a few loop turns later
                    if not server.state.connections:
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0)  # past the last connection_lost callbacks
                assert [end() for end in ends] == [None] * 16
            finally:
                gc.enable()

    run(main())
