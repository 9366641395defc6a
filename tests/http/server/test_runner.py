"""Server: lifespan around listening, signals, and shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Awaitable

import pytest
import uvloop

from ticketsys.http.application import App
from ticketsys.http.models import Receive, Request, Response, Scope, Send
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.http.server import LifespanError, Server, ServerLimits

GET_HELLO = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"


def run(main: Awaitable[None]) -> None:
    uvloop.run(main)  # type: ignore[arg-type]


def _app(events: list[str], *, fail_startup: bool = False, fail_shutdown: bool = False) -> App:
    async def hello(request: Request) -> Response:
        return json_response({"hello": "world"})

    async def start_db() -> None:
        events.append("start db")
        if fail_startup:
            raise RuntimeError("database unreachable")

    async def start_pool() -> None:
        events.append("start pool")

    async def stop_db() -> None:
        events.append("stop db")
        if fail_shutdown:
            raise RuntimeError("flush failed")

    async def stop_pool() -> None:
        events.append("stop pool")

    return App(
        [Route("/hello", frozenset({"GET"}), hello)],
        on_startup=[start_db, start_pool],
        on_shutdown=[stop_db, stop_pool],
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _get_hello(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(GET_HELLO)
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    await writer.wait_closed()
    return head.split(b"\r\n", 1)[0]


def test_startup_runs_before_listening_and_shutdown_hooks_run_in_reverse() -> None:
    events: list[str] = []

    async def main() -> None:
        server = Server(_app(events), "127.0.0.1", 0)
        await server.start()
        assert events == ["start db", "start pool"]
        assert server.port != 0
        assert await _get_hello(server.port) == b"HTTP/1.1 200 OK"
        await server.shutdown()
        assert events == ["start db", "start pool", "stop pool", "stop db"]
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", server.port)

    run(main())


def test_startup_failure_propagates_and_nothing_listens() -> None:
    events: list[str] = []
    port = _free_port()

    async def main() -> None:
        server = Server(_app(events, fail_startup=True), "127.0.0.1", port)
        with pytest.raises(LifespanError, match="database unreachable"):
            await server.start()
        assert events == ["start db"]
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        await server.shutdown()  # what serve() does in its finally: harmless
        assert events == ["start db"]

    run(main())


def test_port_in_use_propagates_and_shuts_the_app_down() -> None:
    events: list[str] = []

    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            server = Server(_app(events), "127.0.0.1", taken.getsockname()[1])
            with pytest.raises(OSError):
                await server.start()
        # Start-up had opened things; they are closed again, not leaked.
        assert events == ["start db", "start pool", "stop pool", "stop db"]

    run(main())


def test_shutdown_hook_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []

    async def main() -> None:
        server = Server(_app(events, fail_shutdown=True), "127.0.0.1", 0)
        await server.start()
        await server.shutdown()

    with caplog.at_level(logging.ERROR, logger="ticketsys.server"):
        run(main())
    assert "flush failed" in caplog.text


def test_shutdown_without_connections_does_not_wait_for_the_grace() -> None:
    async def main() -> None:
        server = Server(_app([]), "127.0.0.1", 0, ServerLimits(shutdown_grace=20.0))
        await server.start()
        assert await _get_hello(server.port) == b"HTTP/1.1 200 OK"  # a connection came and went
        async with asyncio.timeout(5):
            await server.shutdown()

    run(main())


def test_serve_until_request_stop() -> None:
    events: list[str] = []

    async def main() -> None:
        server = Server(_app(events), "127.0.0.1", 0)
        await server.serve(on_ready=server.request_stop)

    run(main())
    assert events == ["start db", "start pool", "stop pool", "stop db"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_cleanly_on_a_signal(signum: signal.Signals) -> None:
    events: list[str] = []
    before = signal.getsignal(signum)

    async def main() -> None:
        server = Server(_app(events), "127.0.0.1", 0)
        await server.serve(on_ready=lambda: os.kill(os.getpid(), signum))

    run(main())
    assert events == ["start db", "start pool", "stop pool", "stop db"]
    assert signal.getsignal(signum) == before


def test_app_without_lifespan_is_served() -> None:
    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError("lifespan? never heard of it")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def main() -> None:
        server = Server(bare, "127.0.0.1", 0)
        await server.start()
        assert await _get_hello(server.port) == b"HTTP/1.1 200 OK"
        await server.shutdown()

    run(main())


def test_a_second_stop_request_cuts_the_grace_short_and_still_shuts_the_app_down() -> None:
    """Ctrl-C twice: the stuck request is cancelled at once instead of after the grace, and
    the app's shutdown hooks (closing the stores) still run."""
    events: list[str] = []
    entered = asyncio.Event()

    async def stuck(request: Request) -> Response:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def stop_store() -> None:
        events.append("stop store")

    app = App([Route("/stuck", frozenset({"GET"}), stuck)], on_shutdown=[stop_store])

    async def main() -> None:
        server = Server(app, "127.0.0.1", 0, ServerLimits(shutdown_grace=20.0))

        async def client_then_two_stops() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /stuck HTTP/1.1\r\nHost: test\r\n\r\n")
            await entered.wait()
            server.request_stop()  # graceful: would wait the 20 s grace for /stuck
            server.request_stop()
            assert await reader.read() == b""  # cut, unanswered
            writer.close()

        started = asyncio.Event()
        serving = asyncio.create_task(server.serve(on_ready=started.set))
        await started.wait()
        await asyncio.wait_for(asyncio.gather(serving, client_then_two_stops()), timeout=10)

    run(main())
    assert events == ["stop store"]
