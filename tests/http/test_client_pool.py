"""HttpPool and its connections over fake transports: the hand-off, pipelining, deadlines and
every way a pipeline ends, without sockets. The test plays the server: it reads what the pool
wrote and feeds answers to the connection's ``data_received``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ticketsys.http.client import (
    ClientOptions,
    ClientResponse,
    ClientTimeout,
    ConnectError,
    HttpPool,
    RemoteProtocolError,
)
from ticketsys.http.client.connection import Connection

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
CLOSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"


def answer(n: int) -> bytes:
    body = b'{"n":%d}' % n
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


class FakeTransport:
    def __init__(self, protocol: Connection) -> None:
        self.protocol = protocol
        self.writes: list[bytes] = []
        self.closing = False
        self.refuse_writes = False

    def write(self, data: bytes) -> None:
        if self.refuse_writes:
            raise RuntimeError("unable to perform operation on <TCPTransport>; the handler is closed")
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def paths(self) -> list[str]:
        """The request targets written, in order."""
        data = b"".join(self.writes)
        return [line.split(b" ")[1].decode() for line in data.split(b"\r\n") if b" HTTP/1.1" in line]


class FakeNetwork:
    """Stands in for ``loop.create_connection``: connects at once, or never, or refuses."""

    def __init__(self) -> None:
        self.transports: list[FakeTransport] = []
        self.mode = "connect"  # or "hang", "refuse"
        self.refuse_writes = False

    async def open(self, factory: Callable[[], asyncio.Protocol], host: str, port: int) -> tuple[Any, Any]:
        if self.mode == "refuse":
            raise ConnectionRefusedError(111, "Connection refused")
        if self.mode == "hang":
            await asyncio.Event().wait()
        protocol = factory()
        assert isinstance(protocol, Connection)
        transport = FakeTransport(protocol)
        transport.refuse_writes = self.refuse_writes
        self.transports.append(transport)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        return transport, protocol


def pool(net: FakeNetwork, **options: Any) -> HttpPool:
    return HttpPool(ClientOptions("http://vacancy:8001", **options), opener=net.open)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


async def ticks(n: int = 10) -> None:
    """Let the loop run the flush and the callbacks it leads to (no time passes)."""
    for _ in range(n):
        await asyncio.sleep(0)


def start(p: HttpPool, *paths: str) -> list[asyncio.Future[ClientResponse]]:
    return [asyncio.ensure_future(p.request("GET", path)) for path in paths]


def test_requests_of_one_tick_share_one_write_and_their_answers_one_read() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net)
        calls = start(p, "/1", "/2", "/3")
        await ticks()
        [transport] = net.transports
        assert len(transport.writes) == 1 and transport.paths() == ["/1", "/2", "/3"]
        transport.protocol.data_received(answer(1) + answer(2) + answer(3))
        assert [(await c).body for c in calls] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
        assert repr(p) == (
            "<HttpPool vacancy:8001 [requests: 0 in flight, 0 waiting | connections: 0 active, 1 idle]>"
        )
        await p.aclose()

    run(test)


def test_a_tick_spreads_over_connections_by_pipeline_depth() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net, max_pipeline=3, max_connections=2)
        calls = start(p, *(f"/{i}" for i in range(8)))
        await ticks()
        assert [t.paths() for t in net.transports] == [["/0", "/1", "/2"], ["/3", "/4", "/5"]]
        assert "2 waiting" in repr(p)  # both pipelines full: the rest wait their turn
        one, two = net.transports
        one.protocol.data_received(OK * 3)  # the first connection drains: the next two go on it
        await ticks()
        assert one.paths()[3:] == ["/6", "/7"] and len(one.writes) == 2
        one.protocol.data_received(OK * 2)
        two.protocol.data_received(OK * 3)
        assert {(await c).status for c in calls} == {200}
        await p.aclose()

    run(test)


def test_waiting_requests_get_a_free_connection_first_come_first_served() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net, max_pipeline=1, max_connections=1)
        calls = start(p, "/a", "/b", "/c", "/d")
        await ticks()
        [transport] = net.transports
        calls[2].cancel()  # a caller that gave up is skipped, never sent
        for expected in (["/a"], ["/a", "/b"], ["/a", "/b", "/d"]):
            assert transport.paths() == expected
            transport.protocol.data_received(OK)
            await ticks()
        assert [c.cancelled() or (c.result().status == 200) for c in calls] == [True] * 4
        await p.aclose()

    run(test)


def test_a_waiting_requests_deadline_is_not_restarted_when_it_is_passed_over() -> None:
    """/b waits behind /a0 (one connection, no pipelining). When /a0 is answered, /a1 -- first
    in line -- gets the connection and /b waits on: its deadline is still its start plus the
    connect timeout, not the moment it was passed over plus the connect timeout."""

    async def test() -> None:
        loop = asyncio.get_running_loop()
        net = FakeNetwork()
        timeout = 0.2
        p = pool(net, max_pipeline=1, max_connections=1, connect_timeout=timeout, read_timeout=10.0)
        [a0] = start(p, "/a0")
        await ticks()
        began = loop.time()
        a1, b = start(p, "/a1", "/b")
        seen: list[bool] = []
        loop.call_at(began + timeout * 0.6, net.transports[0].protocol.data_received, OK)  # a0 answered
        # Timers run in the order of their times, whatever the machine's load: when this one
        # runs, a deadline of began + timeout has been acted on, one of began + 1.6*timeout not.
        loop.call_at(began + timeout * 1.3, lambda: seen.append(b.done()))
        with pytest.raises(ClientTimeout, match="free connection"):
            await b
        assert seen == [] or seen == [True]
        await asyncio.sleep(timeout * 0.5)
        assert seen == [True]
        assert (await a0).status == 200 and not a1.done()
        await p.aclose()

    run(test)


def test_a_late_answer_fails_every_request_in_flight_on_its_connection() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net, read_timeout=0.05)
        first, second, third = start(p, "/1", "/2", "/3")
        await ticks()
        [transport] = net.transports
        transport.protocol.data_received(OK)  # /1 answered; /2 never is
        assert (await first).status == 200
        for call in (second, third):
            with pytest.raises(ClientTimeout):
                await call
        assert transport.closing
        # The pool goes on with a new connection; nothing is left of the old one.
        [fourth] = start(p, "/4")
        await ticks()
        assert len(net.transports) == 2
        net.transports[1].protocol.data_received(OK)
        assert (await fourth).status == 200
        assert "connections: 0 active, 1 idle" in repr(p)
        await p.aclose()

    run(test)


def test_requests_behind_a_closing_answer_go_out_again_on_a_new_connection() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net)
        calls = start(p, "/1", "/2", "/3")
        await ticks()
        first = net.transports[0]
        first.protocol.data_received(CLOSE)  # /1 answered; the server processes nothing more
        await ticks()
        assert first.closing
        second = net.transports[1]
        assert second.paths() == ["/2", "/3"]
        second.protocol.data_received(answer(2) + answer(3))
        assert [(await c).body for c in calls] == [b"{}", b'{"n":2}', b'{"n":3}']
        await p.aclose()

    run(test)


def test_a_connection_lost_mid_pipeline_fails_what_was_written_as_maybe_processed() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net)
        first, second, third = start(p, "/1", "/2", "/3")
        await ticks()
        transport = net.transports[0]
        transport.protocol.data_received(OK + b"HTTP/1.1 200 OK\r\ncontent-len")  # /2 half answered
        transport.protocol.connection_lost(ConnectionResetError(104, "reset"))
        assert (await first).status == 200
        for call in (second, third):
            with pytest.raises(RemoteProtocolError, match="closed the connection before answering"):
                await call
        await p.aclose()

    run(test)


def test_garbage_mid_pipeline_fails_the_rest_and_closes() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net)
        first, second = start(p, "/1", "/2")
        await ticks()
        transport = net.transports[0]
        transport.protocol.data_received(OK + b"SMTP ready\r\n")
        assert (await first).status == 200
        with pytest.raises(RemoteProtocolError, match="malformed"):
            await second
        assert transport.closing
        await p.aclose()

    run(test)


def test_an_answer_to_no_request_closes_the_connection() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net)
        [call] = start(p, "/1")
        await ticks()
        transport = net.transports[0]
        transport.protocol.data_received(OK)
        assert (await call).status == 200
        transport.protocol.data_received(OK)  # unsolicited
        assert transport.closing
        await ticks()
        assert "connections: 0 active, 0 idle" in repr(p)
        await p.aclose()

    run(test)


def test_a_write_refused_by_a_connection_closed_under_it_goes_out_on_another() -> None:
    """uvloop raises RuntimeError writing to a transport whose peer's close it has seen but not
    yet reported: nothing was sent, so the request goes out again on a new connection."""

    async def test() -> None:
        net = FakeNetwork()
        p = pool(net)
        [warm] = start(p, "/warm")
        await ticks()
        stale = net.transports[0]
        stale.protocol.data_received(OK)
        await warm
        stale.refuse_writes = True
        [call] = start(p, "/again")
        await ticks()
        assert stale.paths() == ["/warm"] and net.transports[1].paths() == ["/again"]
        net.transports[1].protocol.data_received(OK)
        assert (await call).status == 200
        await p.aclose()

    run(test)


def test_a_server_that_keeps_closing_before_answering_ends_in_a_connect_error() -> None:
    async def test() -> None:
        net = FakeNetwork()
        net.refuse_writes = True  # every connection is closed under us before we can write
        p = pool(net)
        [call] = start(p, "/x")
        with pytest.raises(ConnectError, match="before processing"):
            await call
        assert len(net.transports) == 3  # first try, then sent again twice at most
        await p.aclose()

    run(test)


def test_refused_connect_fails_its_requests_as_unsent() -> None:
    async def test() -> None:
        net = FakeNetwork()
        net.mode = "refuse"
        p = pool(net)
        calls = start(p, "/1", "/2")
        for call in calls:
            with pytest.raises(ConnectError, match="refused"):
                await call
        assert "connections: 0 active, 0 idle" in repr(p)
        await p.aclose()

    run(test)


def test_a_connect_that_hangs_fails_at_the_requests_deadline() -> None:
    async def test() -> None:
        net = FakeNetwork()
        net.mode = "hang"
        p = pool(net, connect_timeout=0.05)
        [call] = start(p, "/1")
        with pytest.raises(ConnectError, match="timed out"):
            await call
        await p.aclose()

    run(test)


def test_an_expired_idle_connection_is_closed_not_reused() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net, keepalive_expiry=0.01)
        [call] = start(p, "/1")
        await ticks()
        net.transports[0].protocol.data_received(OK)
        await call
        await asyncio.sleep(0.02)
        [later] = start(p, "/2")
        await ticks()
        assert net.transports[0].closing and net.transports[1].paths() == ["/2"]
        net.transports[1].protocol.data_received(OK)
        await later
        await p.aclose()

    run(test)


def test_aclose_fails_requests_in_flight_and_waiting_and_closes_busy_connections() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net, max_pipeline=2, max_connections=1)
        in_flight = start(p, "/1", "/2")
        await ticks()
        waiting = start(p, "/3")
        await ticks()
        assert repr(p) == (
            "<HttpPool vacancy:8001 [requests: 2 in flight, 1 waiting | connections: 1 active, 0 idle]>"
        )
        await p.aclose()
        for call in in_flight:
            with pytest.raises(RemoteProtocolError, match="client was closed"):
                await call
        with pytest.raises(ConnectError, match="closed"):
            await waiting[0]
        assert net.transports[0].closing
        await ticks()
        assert repr(p) == (
            "<HttpPool closed vacancy:8001 "
            "[requests: 0 in flight, 0 waiting | connections: 0 active, 0 idle]>"
        )
        with pytest.raises(ConnectError, match="closed"):
            await p.request("GET", "/4")

    run(test)


def test_aclose_while_connecting_fails_the_requests_as_unsent() -> None:
    async def test() -> None:
        net = FakeNetwork()
        net.mode = "hang"
        p = pool(net)
        [call] = start(p, "/1")
        await ticks()
        await p.aclose()
        with pytest.raises(ConnectError, match="closed"):
            await call

    run(test)


def test_a_cancelled_request_in_flight_leaves_the_pipeline_in_order() -> None:
    """Its answer still arrives (and is dropped): the next one is not taken for it."""

    async def test() -> None:
        net = FakeNetwork()
        p = pool(net)
        first, second = start(p, "/1", "/2")
        await ticks()
        first.cancel()
        net.transports[0].protocol.data_received(answer(1) + answer(2))
        assert (await second).body == b'{"n":2}'
        await p.aclose()

    run(test)


def test_a_gathered_request_is_written_at_once_not_at_the_ticks_end() -> None:
    async def test() -> None:
        net = FakeNetwork()
        p = pool(net)
        [warm] = start(p, "/warm")
        await ticks()
        [transport] = net.transports
        transport.protocol.data_received(answer(1))
        await warm  # the connection is idle now
        plain = asyncio.ensure_future(p.request("GET", "/plain"))
        await asyncio.sleep(0)  # its task has run: queued until the tick's end
        assert transport.paths() == ["/warm"]
        await ticks()
        assert transport.paths() == ["/warm", "/plain"]
        transport.protocol.data_received(answer(2))
        await plain
        gathered = asyncio.ensure_future(p.request("POST", "/batch", b"{}", gathered=True))
        await asyncio.sleep(0)  # its task has run: written already
        assert transport.paths() == ["/warm", "/plain", "/batch"]
        transport.protocol.data_received(answer(3))
        assert (await gathered).body == b'{"n":3}'
        await p.aclose()

    run(test)
