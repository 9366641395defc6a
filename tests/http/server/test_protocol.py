"""The embedded server's protocol on raw bytes, without a socket.

Requests are module constants fed to ``HttpConnection.data_received``; a fake transport records
what the server writes and whether it closed. Timers run on a loop whose clock only moves when
a test says so (``Peer.advance``), so timeouts are tested without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    parse_replies,
)
from tests.support.aio import ManualClockLoop, run_on
from ticketsys.http.application import App
from ticketsys.http.models import Receive, Request, Response, Scope, Send
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.http.server import ServerLimits
from ticketsys.http.server.protocol import HttpConnection
from ticketsys.http.server.state import ServerState

# Every test here runs on a loop whose clock moves only when a test moves it (Peer.loop).
pytestmark = pytest.mark.loop("manual-clock")

# Small limits keep the oversize cases small; the defaults are exercised over sockets.
LIMITS = ServerLimits(
    max_header_bytes=1024,
    max_headers=10,
    max_body_bytes=100,
    request_timeout=10.0,
    keepalive_timeout=5.0,
    max_pipelined=4,
)

GET_HELLO_10 = b"GET /hello HTTP/1.0\r\n\r\n"
GET_HELLO_10_KEEP_ALIVE = b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
GET_ABSOLUTE = b"GET http://test/hello?x=1 HTTP/1.1\r\nHost: test\r\n\r\n"
GET_BAD_TARGET = b"GET http:// HTTP/1.1\r\nHost: test\r\n\r\n"
DELETE_HELLO = b"DELETE /hello HTTP/1.1\r\nHost: test\r\n\r\n"
GET_CRASH = b"GET /crash HTTP/1.1\r\nHost: test\r\n\r\n"
GET_GATE_A = b"GET /gate/a HTTP/1.1\r\nHost: test\r\n\r\n"
GET_GATE_B = b"GET /gate/b HTTP/1.1\r\nHost: test\r\n\r\n"
GET_HEADERS = b"GET /headers HTTP/1.1\r\nHost: test\r\nX-One: 1\r\n\r\n"
POST_ECHO_TRAILER = (
    b"POST /headers HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nhi\r\n0\r\nX-Trailer: sneaky\r\n\r\n"
)
EXPECT_HEAD = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"
EXPECT_HEAD_10 = b"POST /echo HTTP/1.0\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"
EXPECT_BODY = b'{"qty": 5}'
EXPECT_TOO_LARGE = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 101\r\nExpect: 100-continue\r\n\r\n"
BODY_TOO_LARGE_HEAD = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 101\r\n\r\n"
CHUNKED_TOO_LARGE = (
    b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"32\r\n" + b"x" * 50 + b"\r\n"
    + b"32\r\n" + b"x" * 50 + b"\r\n"
    + b"1\r\nx\r\n0\r\n\r\n"
)  # fmt: skip
LONG_URL = b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\nHost: test\r\n\r\n"
LARGE_HEADER = b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Big: " + b"b" * 1100 + b"\r\n\r\n"
MANY_HEADERS = b"GET /hello HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(11)) + b"\r\n"
UPGRADE = b"GET /hello HTTP/1.1\r\nHost: test\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
NO_HOST = b"GET /hello HTTP/1.1\r\n\r\n"
TWO_HOSTS = b"GET /hello HTTP/1.1\r\nHost: test\r\nHost: evil\r\n\r\n"
TE_IN_HTTP10 = (
    b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
)
SMUGGLED = GET_MISSING  # what a smuggling attempt hides after its first request

CL_AND_TE = (
    b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n" + SMUGGLED
)
TE_AND_CL = (
    b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
    b"0\r\n\r\n" + SMUGGLED
)
DUPLICATE_CL_SAME = (
    b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + SMUGGLED
)
DUPLICATE_CL_DIFFERENT = (
    b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}" + SMUGGLED
)


def _post_with_length(value: bytes) -> bytes:
    return b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: " + value + b"\r\n\r\n{}"


def _post_with_coding(value: bytes) -> bytes:
    return b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: " + value + b"\r\n\r\n0\r\n\r\n"


# -- a fake transport, and a client "peer" ------------------------------------------------


class FakeTransport:
    """Records writes; like real transports, reports ``connection_lost`` one loop turn after
    ``close()``."""

    def __init__(self, protocol: HttpConnection) -> None:
        self.protocol = protocol
        self.data = bytearray()
        self.closing = False
        self.eof = False  # our sending side is shut (a lingering close)
        self.reading = True
        self.lost = asyncio.Event()
        self.wrote = asyncio.Event()

    def write(self, data: bytes) -> None:
        assert not self.closing and not self.eof, "write after close"
        self.data += data
        self.wrote.set()

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self._lose, None)

    def abort(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        assert not self.closing, "write_eof after close"
        self.eof = True

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        assert self.reading, "paused twice"
        self.reading = False

    def resume_reading(self) -> None:
        assert not self.reading, "resumed while reading"
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def _lose(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)
        self.lost.set()


class Gates:
    """Handlers that wait until the test opens their gate, and say when they are waiting."""

    def __init__(self) -> None:
        self.open: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}

    def _get(self, table: dict[str, asyncio.Event], name: str) -> asyncio.Event:
        return table.setdefault(name, asyncio.Event())

    async def wait(self, name: str) -> None:
        self._get(self.entered, name).set()
        await self._get(self.open, name).wait()

    async def entered_(self, name: str) -> None:
        await self._get(self.entered, name).wait()

    def release(self, name: str) -> None:
        self._get(self.open, name).set()


def build_app(gates: Gates, calls: list[str]) -> App:
    async def hello(request: Request) -> Response:
        calls.append("hello")
        return json_response({"hello": "world"})

    async def echo(request: Request) -> Response:
        calls.append("echo")
        return json_response({"bytes": len(request.body), "body": request.body.decode()})

    async def headers(request: Request) -> Response:
        return json_response(sorted(name.decode() for name, _ in request.headers))

    async def crash(request: Request) -> Response:
        raise RuntimeError("secret internal detail")

    async def gate(request: Request) -> Response:
        name = request.path_params["name"]
        calls.append(name)
        await gates.wait(name)
        return json_response({"gate": name})

    return App(
        [
            Route("/hello", frozenset({"GET"}), hello),
            Route("/echo", frozenset({"POST"}), echo),
            Route("/headers", frozenset({"GET", "POST"}), headers),
            Route("/crash", frozenset({"GET"}), crash),
            Route("/gate/{name}", frozenset({"GET"}), gate),
        ]
    )


class Peer:
    """One client connection to a fresh ``HttpConnection`` over a ``FakeTransport``."""

    def __init__(
        self, app: Any = None, limits: ServerLimits = LIMITS, state: ServerState | None = None
    ) -> None:
        self.gates = Gates()
        self.calls: list[str] = []
        self.state = state or ServerState(app or build_app(self.gates, self.calls), limits)
        self.conn = HttpConnection(self.state)
        self.transport = FakeTransport(self.conn)
        self.conn.connection_made(self.transport)  # type: ignore[arg-type]

    @property
    def loop(self) -> ManualClockLoop:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, ManualClockLoop)
        return loop

    def send(self, data: bytes) -> None:
        self.conn.data_received(data)

    def send_eof(self) -> None:
        """The client shuts its sending side; as a real transport does, close unless the
        protocol asks to keep the connection half-open."""
        if not self.conn.eof_received():
            self.transport.close()

    async def settle(self) -> None:
        """Run until the connection has answered all it can (a handler held at a closed gate
        would make this wait forever: tests wait on ``gates.entered_`` instead)."""
        while (worker := self.conn._worker) is not None:
            await asyncio.wait({worker})
        if self.transport.closing:
            await self.transport.lost.wait()

    async def exchange(self, data: bytes, heads: Collection[int] = ()) -> list[Reply]:
        self.send(data)
        await self.settle()
        return self.take(heads)

    def take(self, heads: Collection[int] = ()) -> list[Reply]:
        """The responses written since the last ``take``."""
        replies = parse_replies(bytes(self.transport.data), heads)
        self.transport.data.clear()
        return replies

    async def tick(self, seconds: float) -> None:
        """Move the clock and run every timer now due (they run in the same loop turn as the
        marker, so once the marker has fired they have too)."""
        self.loop.advance(seconds)
        marker: asyncio.Future[None] = self.loop.create_future()
        self.loop.call_at(self.loop.time(), marker.set_result, None)
        await marker

    async def advance(self, seconds: float) -> None:
        """``tick``, then let the connection answer whatever the timers caused."""
        await self.tick(seconds)
        await self.settle()

    @property
    def closed(self) -> bool:
        return self.transport.closing

    @property
    def lingering(self) -> bool:
        """The server said its last, shut its sending side, and discards what still comes."""
        return self.transport.eof and not self.transport.closing


# -- keep-alive ---------------------------------------------------------------------------


async def test_two_requests_on_one_connection_stay_open() -> None:
    peer = Peer()
    for _ in range(2):
        [reply] = await peer.exchange(GET_HELLO)
        assert (reply.status, reply.json()) == (200, {"hello": "world"})
        assert b"connection" not in reply.headers
        assert reply.headers[b"content-length"] == b"17"
        assert b"date" in reply.headers
    assert not peer.closed
    assert peer.conn in peer.state.connections
    assert not peer.state.tasks  # the worker exists only while there is work


async def test_http10_without_keep_alive_closes() -> None:
    peer = Peer()
    [reply] = await peer.exchange(GET_HELLO_10)
    assert reply.status == 200 and reply.closes
    assert peer.closed and peer.conn not in peer.state.connections


async def test_http10_keep_alive_is_confirmed_and_kept() -> None:
    peer = Peer()
    [reply] = await peer.exchange(GET_HELLO_10_KEEP_ALIVE)
    assert reply.status == 200
    assert reply.headers[b"connection"] == b"keep-alive"  # or a 1.0 client assumes close
    assert not peer.closed


async def test_connection_close_closes_after_the_response() -> None:
    peer = Peer()
    [reply] = await peer.exchange(GET_HELLO_CLOSE)
    assert reply.status == 200 and reply.closes
    assert peer.closed


async def test_nothing_after_connection_close_is_answered() -> None:
    peer = Peer()
    replies = await peer.exchange(GET_HELLO_CLOSE + POST_ECHO + GARBAGE)
    assert [r.status for r in replies] == [200]
    assert peer.calls == ["hello"]  # the pipelined POST never reached the app
    assert peer.lingering


def test_app_asking_to_close_closes_even_with_a_request_arriving() -> None:
    async def closing(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b"{}"})

    async def main() -> None:
        peer = Peer(closing)
        replies = await peer.exchange(GET_HELLO + GET_HELLO[:10])
        assert [(r.status, r.closes) for r in replies] == [(200, True)]
        assert peer.closed

    run_on("manual-clock", main())


# -- pipelining ---------------------------------------------------------------------------


async def test_pipelined_requests_are_answered_in_order() -> None:
    peer = Peer()
    replies = await peer.exchange(GET_HELLO + POST_ECHO + GET_MISSING + POST_ECHO_CHUNKED + GET_HELLO)
    assert [r.status for r in replies] == [200, 200, 404, 200, 200]
    assert replies[1].json() == {"bytes": 10, "body": '{"qty": 5}'}
    assert replies[3].json() == {"bytes": 10, "body": '{"qty": 5}'}
    assert not any(r.closes for r in replies)
    assert not peer.closed


async def test_slow_first_request_is_not_overtaken() -> None:
    peer = Peer()
    peer.send(GET_GATE_A + GET_HELLO + GET_GATE_B)
    await peer.gates.entered_("a")
    assert peer.transport.data == b""
    assert peer.calls == ["a"]  # one request at a time: hello waits its turn
    peer.gates.release("a")
    await peer.gates.entered_("b")
    assert [r.json() for r in peer.take()] == [{"gate": "a"}, {"hello": "world"}]
    peer.gates.release("b")
    await peer.settle()
    assert [r.json() for r in peer.take()] == [{"gate": "b"}]


def _without_ids(replies: list[Reply]) -> list[Reply]:
    """The replies, but for the request ids the server made up (each answer has its own)."""
    for reply in replies:
        assert len(reply.headers.pop(b"x-request-id")) == 16
    return replies


def test_byte_at_a_time_is_the_same_as_all_at_once() -> None:
    stream = GET_HELLO + POST_ECHO_CHUNKED + HEAD_HELLO + POST_ECHO

    async def main() -> None:
        whole = await Peer().exchange(stream, heads={2})
        peer = Peer()
        for i in range(len(stream)):
            peer.send(stream[i : i + 1])
        await peer.settle()
        assert _without_ids(peer.take(heads={2})) == _without_ids(whole)
        assert [r.status for r in whole] == [200, 200, 200, 200]

    run_on("manual-clock", main())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(POST_ECHO_CHUNKED) * 3), max_size=12))
def test_any_split_of_a_pipeline_gives_the_same_answers(cuts: list[int]) -> None:
    stream = POST_ECHO_CHUNKED + GET_HELLO + POST_ECHO
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})

    async def main() -> None:
        peer = Peer()
        for start, end in pairwise(points):
            peer.send(stream[start:end])
        await peer.settle()
        assert [r.status for r in peer.take()] == [200, 200, 200]

    run_on("manual-clock", main())


async def test_every_answer_has_a_request_id_and_a_clients_own_is_kept() -> None:
    given = b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Request-ID: buyer-42\r\n\r\n"
    bad = b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Request-ID: has space\r\n\r\n"
    peer = Peer()
    replies = await peer.exchange(GET_HELLO + given + bad + GET_MISSING + GARBAGE)
    ids = [reply.headers[b"x-request-id"] for reply in replies]
    assert [reply.status for reply in replies] == [200, 200, 200, 404, 400]
    assert ids[1] == b"buyer-42"
    assert len(set(ids)) == 5 and all(len(made) == 16 for made in ids[:1] + ids[2:])


async def test_too_many_pipelined_requests_pause_reading_until_drained() -> None:
    peer = Peer()  # max_pipelined=4
    peer.send(GET_GATE_A + GET_HELLO * 5)  # the gate is in flight, five wait: one too many
    await peer.gates.entered_("a")
    assert not peer.transport.reading
    peer.gates.release("a")
    await peer.settle()
    assert peer.transport.reading
    assert [r.status for r in peer.take()] == [200] * 6


async def test_a_blocked_writer_holds_the_next_response() -> None:
    peer = Peer()
    peer.conn.pause_writing()  # the client is not reading: the kernel buffer is full
    peer.send(GET_HELLO + POST_ECHO)
    await peer.transport.wrote.wait()
    assert [r.json() for r in peer.take()] == [{"hello": "world"}]
    assert peer.calls == ["hello"]  # the echo waits for drain()
    peer.conn.resume_writing()
    await peer.settle()
    assert [r.status for r in peer.take()] == [200]


# -- request smuggling and framing --------------------------------------------------------

SMUGGLING = [
    pytest.param(CL_AND_TE, id="content-length-then-transfer-encoding"),
    pytest.param(TE_AND_CL, id="transfer-encoding-then-content-length"),
    pytest.param(DUPLICATE_CL_SAME, id="duplicate-content-length-same"),
    pytest.param(DUPLICATE_CL_DIFFERENT, id="duplicate-content-length-different"),
]


@pytest.mark.parametrize("request_bytes", SMUGGLING)
async def test_smuggling_attempts_get_400_and_close(request_bytes: bytes) -> None:
    peer = Peer()
    [reply] = await peer.exchange(request_bytes)
    assert_json_error(reply, 400)
    assert reply.closes and peer.lingering
    assert peer.calls == []  # neither the request nor what it hid reached the app


@pytest.mark.parametrize("request_bytes", SMUGGLING)
async def test_smuggling_after_a_good_request_answers_it_first(request_bytes: bytes) -> None:
    peer = Peer()
    replies = await peer.exchange(GET_HELLO + request_bytes)
    assert [(r.status, r.closes) for r in replies] == [(200, False), (400, True)]
    assert peer.calls == ["hello"]


@pytest.mark.parametrize("value", [b"abc", b"-1", b"+2", b"2, 2", b"0x2", b"2 2", b"99999999999999999999999"])
async def test_invalid_content_length_is_400(value: bytes) -> None:
    peer = Peer()
    [reply] = await peer.exchange(_post_with_length(value))
    assert_json_error(reply, 400)
    assert peer.lingering and peer.calls == []


@pytest.mark.parametrize(
    ("coding", "status"),
    [
        pytest.param(b"gzip", 501, id="gzip"),
        pytest.param(b"gzip, chunked", 501, id="gzip-then-chunked"),
        pytest.param(b"identity", 501, id="identity"),
        # llhttp refuses a coding after chunked itself: the body's end is unknowable.
        pytest.param(b"chunked, gzip", 400, id="chunked-then-gzip"),
    ],
)
async def test_transfer_codings_other_than_chunked_are_refused(coding: bytes, status: int) -> None:
    peer = Peer()
    [reply] = await peer.exchange(_post_with_coding(coding))
    assert_json_error(reply, status)
    assert peer.lingering and peer.calls == []


@pytest.mark.parametrize(
    "request_bytes", [pytest.param(NO_HOST, id="none"), pytest.param(TWO_HOSTS, id="two")]
)
async def test_http11_needs_exactly_one_host(request_bytes: bytes) -> None:
    peer = Peer()
    [reply] = await peer.exchange(request_bytes)
    assert_json_error(reply, 400)
    assert peer.lingering and peer.calls == []


def test_transfer_encoding_in_http10_is_answered_then_closed() -> None:
    # RFC 9112 §6.1: such framing is suspect, so the connection ends after the response.
    async def main() -> None:
        peer = Peer()
        [reply] = await peer.exchange(TE_IN_HTTP10 + GET_HELLO_10_KEEP_ALIVE)
        assert reply.json() == {"bytes": 2, "body": "{}"}
        assert reply.closes and peer.closed

    run_on("manual-clock", main())


async def test_chunked_body_is_decoded() -> None:
    peer = Peer()
    [reply] = await peer.exchange(POST_ECHO_CHUNKED)
    assert reply.json() == {"bytes": 10, "body": '{"qty": 5}'}
    assert not peer.closed


async def test_trailer_fields_are_not_merged_into_headers() -> None:
    [reply] = await Peer().exchange(POST_ECHO_TRAILER)
    assert reply.json() == ["host", "transfer-encoding"]


async def test_absolute_form_target_is_routed_by_its_path() -> None:
    [reply] = await Peer().exchange(GET_ABSOLUTE)
    assert reply.json() == {"hello": "world"}


async def test_target_the_url_parser_rejects_is_400_not_500() -> None:
    peer = Peer()
    [reply] = await peer.exchange(GET_BAD_TARGET)
    assert_json_error(reply, 400)
    assert peer.lingering


async def test_upgrade_is_answered_then_closed() -> None:
    peer = Peer()
    [reply] = await peer.exchange(UPGRADE + GET_HELLO)
    assert reply.status == 200 and reply.closes
    assert peer.closed and peer.calls == ["hello"]


# -- limits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        pytest.param(LONG_URL, 414, "uri_too_long", id="request-line"),
        pytest.param(LARGE_HEADER, 431, "headers_too_large", id="header-bytes"),
        pytest.param(MANY_HEADERS, 431, "too_many_headers", id="header-count"),
    ],
)
async def test_oversized_heads_are_refused(request_bytes: bytes, status: int, code: str) -> None:
    peer = Peer()
    [reply] = await peer.exchange(request_bytes)
    assert_json_error(reply, status)
    assert reply.json()["error"] == code
    assert reply.closes and peer.lingering and peer.calls == []


def test_an_endless_header_line_is_cut_off() -> None:
    # httptools holds an unfinished header line in its own buffer, out of on_header's sight.
    async def main() -> None:
        peer = Peer()
        peer.send(b"GET /hello HTTP/1.1\r\nX-Endless: ")
        sent = 0
        while not peer.transport.data and sent < 100 * LIMITS.max_header_bytes:
            peer.send(b"z" * 256)
            sent += 256
            await peer.settle()
        [reply] = peer.take()
        assert_json_error(reply, 431)
        assert sent <= LIMITS.max_header_bytes + 256
        assert peer.lingering

    run_on("manual-clock", main())


async def test_body_over_the_limit_by_content_length_is_refused_before_it_arrives() -> None:
    peer = Peer()
    [reply] = await peer.exchange(BODY_TOO_LARGE_HEAD)  # no body sent at all
    assert_json_error(reply, 413)
    assert reply.closes and peer.lingering and peer.calls == []


async def test_chunked_body_over_the_limit_is_refused() -> None:
    peer = Peer()
    [reply] = await peer.exchange(CHUNKED_TOO_LARGE)
    assert_json_error(reply, 413)
    assert peer.lingering and peer.calls == []


async def test_body_at_the_limit_is_accepted() -> None:
    body = b'"' + b"x" * 98 + b'"'
    [reply] = await Peer().exchange(_post_with_length(b"100")[:-2] + body)
    assert reply.json()["bytes"] == 100


# -- the lingering close and unsupported versions ------------------------------------------


async def test_a_refused_request_lingers_discarding_until_the_clients_eof() -> None:
    peer = Peer()
    [reply] = await peer.exchange(BODY_TOO_LARGE_HEAD)
    assert_json_error(reply, 413)
    assert reply.closes and peer.lingering
    peer.send(b"x" * 50 + GET_HELLO)  # the rest of the refused body: read, never parsed
    await peer.settle()
    assert peer.transport.data == b"" and peer.calls == [] and peer.lingering
    peer.send_eof()
    await peer.settle()
    assert peer.closed and peer.conn.closed


async def test_lingering_ends_at_its_deadline() -> None:
    peer = Peer()
    await peer.exchange(LARGE_HEADER)
    await peer.advance(LIMITS.lingering_time - 0.5)
    assert peer.lingering
    peer.send(b"y" * 100)  # a client still sending does not extend it
    await peer.advance(0.5)
    assert peer.closed


async def test_lingering_reads_again_when_the_error_came_while_reading_was_paused() -> None:
    peer = Peer()  # max_pipelined=4
    peer.send(GET_GATE_A + GET_HELLO * 5 + GARBAGE)
    await peer.gates.entered_("a")
    assert not peer.transport.reading
    peer.gates.release("a")
    await peer.settle()
    assert [r.status for r in peer.take()] == [200] * 6 + [400]
    assert peer.lingering and peer.transport.reading  # or the client's bytes would pile up


async def test_shutdown_ends_lingering_at_once() -> None:
    peer = Peer()
    await peer.exchange(GARBAGE)
    assert peer.lingering
    peer.conn.shutdown()
    await peer.settle()
    assert peer.closed


def test_a_timed_out_request_is_not_lingered_on() -> None:
    # The client was too slow to send its request: waiting longer for it helps nobody.
    async def main() -> None:
        peer = Peer()
        peer.send(POST_ECHO[:-3])
        await peer.advance(LIMITS.request_timeout)
        assert_json_error(peer.take()[0], 408)
        assert peer.closed and not peer.transport.eof

    run_on("manual-clock", main())


@pytest.mark.parametrize(
    "request_line",
    [
        pytest.param(b"GET /hello HTTP/2.0", id="2.0"),
        pytest.param(b"GET /hello HTTP/3.0", id="3.0"),
        pytest.param(b"GET /hello HTTP/1.2", id="1.2"),
        pytest.param(b"GET /hello HTTP/0.9", id="0.9"),
        pytest.param(b"GET /hello", id="no-version"),
        pytest.param(b"PRI * HTTP/2.0\r\n\r\nSM", id="h2-preface"),
    ],
)
async def test_versions_other_than_1_0_and_1_1_get_505(request_line: bytes) -> None:
    peer = Peer()
    [reply] = await peer.exchange(request_line + b"\r\nHost: test\r\n\r\n")
    assert_json_error(reply, 505)
    assert reply.json()["error"] == "http_version_not_supported"
    assert reply.closes and peer.lingering and peer.calls == []


# -- garbage ------------------------------------------------------------------------------


async def test_garbage_gets_400_json_and_close_and_the_next_connection_is_served() -> None:
    peer = Peer()
    [reply] = await peer.exchange(GARBAGE)
    assert_json_error(reply, 400)
    assert reply.closes and peer.lingering
    peer.send(GET_HELLO)  # bytes after the close are ignored, not parsed
    assert peer.transport.data == b""
    other = Peer(state=peer.state)
    [reply] = await other.exchange(GET_HELLO)
    assert reply.status == 200


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(min_size=1, max_size=300))
def test_arbitrary_bytes_never_give_a_500_or_a_traceback(data: bytes) -> None:
    async def main() -> None:
        peer = Peer()
        peer.send(data)
        await peer.settle()
        for reply in parse_replies(bytes(peer.transport.data)):
            assert reply.status != 500
            if reply.status >= 400:
                assert_json_error(reply, reply.status)

    run_on("manual-clock", main())


# -- timers -------------------------------------------------------------------------------


async def test_partial_request_then_timeout_is_408_and_close() -> None:
    peer = Peer()
    peer.send(POST_ECHO[:-3])
    await peer.advance(LIMITS.request_timeout - 0.5)
    assert peer.transport.data == b"" and not peer.closed
    await peer.advance(0.5)
    [reply] = peer.take()
    assert_json_error(reply, 408)
    assert reply.closes and peer.closed and peer.calls == []
    peer.send(POST_ECHO[-3:])  # too late: ignored


async def test_slowloris_a_byte_at_a_time_gets_408() -> None:
    peer = Peer()
    for byte in GET_HELLO[:-2]:
        peer.send(bytes([byte]))
        await peer.advance(LIMITS.request_timeout / 20)
        if peer.closed:
            break
    [reply] = peer.take()
    assert_json_error(reply, 408)
    assert peer.closed


async def test_idle_keep_alive_closes_quietly() -> None:
    peer = Peer()
    await peer.exchange(GET_HELLO)
    await peer.advance(LIMITS.keepalive_timeout - 0.5)
    assert not peer.closed
    await peer.advance(0.5)
    assert peer.closed and peer.transport.data == b""


async def test_a_connection_that_never_speaks_closes_quietly() -> None:
    peer = Peer()
    await peer.advance(LIMITS.keepalive_timeout)
    assert peer.closed and peer.transport.data == b""


async def test_idle_timer_waits_for_a_slow_handler() -> None:
    peer = Peer()
    peer.send(GET_GATE_A)
    await peer.gates.entered_("a")
    await peer.tick(LIMITS.keepalive_timeout * 3)  # no timer runs while we are busy
    assert not peer.conn.deadline.pending and not peer.closed
    peer.gates.release("a")
    await peer.settle()
    assert [r.status for r in peer.take()] == [200]
    assert not peer.closed
    await peer.advance(LIMITS.keepalive_timeout)  # re-armed when the answer was written
    assert peer.closed


async def test_keep_alive_timer_restarts_after_each_request() -> None:
    peer = Peer()
    for _ in range(3):
        await peer.advance(LIMITS.keepalive_timeout - 1)
        assert [r.status for r in await peer.exchange(GET_HELLO)] == [200]
    assert not peer.closed


async def test_request_timer_is_not_the_clients_fault_while_we_stopped_reading() -> None:
    peer = Peer()  # max_pipelined=4
    peer.send(GET_GATE_A + GET_HELLO * 5 + GET_HELLO[:5])
    await peer.gates.entered_("a")
    assert not peer.transport.reading
    await peer.tick(LIMITS.request_timeout)
    await peer.tick(LIMITS.request_timeout)
    assert peer.transport.data == b"" and not peer.closed
    peer.gates.release("a")
    await peer.settle()
    peer.send(GET_HELLO[5:])
    await peer.settle()
    assert [r.status for r in peer.take()] == [200] * 7


# -- HEAD, errors, Expect -----------------------------------------------------------------


async def test_head_has_gets_length_and_no_body() -> None:
    peer = Peer()
    replies = await peer.exchange(HEAD_HELLO + GET_HELLO, heads={0})
    assert [r.status for r in replies] == [200, 200]
    assert replies[0].body == b""
    assert replies[0].headers[b"content-length"] == replies[1].headers[b"content-length"] == b"17"


async def test_not_found_and_wrong_method_are_json() -> None:
    peer = Peer()
    missing, wrong = await peer.exchange(GET_MISSING + DELETE_HELLO)
    assert_json_error(missing, 404)
    assert_json_error(wrong, 405)
    assert wrong.headers[b"allow"] == b"GET, HEAD"
    assert not peer.closed


async def test_handler_that_raises_is_500_json_without_traceback() -> None:
    peer = Peer()
    crash, hello = await peer.exchange(GET_CRASH + GET_HELLO)
    assert_json_error(crash, 500)
    assert hello.status == 200 and not peer.closed


async def _raises_before_start(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("secret internal detail")


async def _raises_after_start(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("secret internal detail")


async def _returns_without_response(scope: Scope, receive: Receive, send: Send) -> None:
    return None


async def test_asgi_app_that_raises_before_responding_is_500_json() -> None:
    peer = Peer(_raises_before_start)
    replies = await peer.exchange(GET_HELLO + GET_HELLO)
    for reply in replies:
        assert_json_error(reply, 500)
    assert len(replies) == 2 and not peer.closed  # a bug in one request is not the connection's


async def test_asgi_app_that_raises_mid_response_closes_the_connection() -> None:
    peer = Peer(_raises_after_start)
    assert await peer.exchange(GET_HELLO + GET_HELLO) == []
    assert peer.closed


async def test_asgi_app_that_returns_without_a_response_is_500_and_close() -> None:
    peer = Peer(_returns_without_response)
    [reply] = await peer.exchange(GET_HELLO + GET_HELLO)
    assert_json_error(reply, 500)
    assert reply.closes and peer.closed


async def test_expect_100_continue_gets_the_interim_response() -> None:
    peer = Peer()
    peer.send(EXPECT_HEAD)
    assert bytes(peer.transport.data) == b"HTTP/1.1 100 Continue\r\n\r\n"
    peer.transport.data.clear()
    [reply] = await peer.exchange(EXPECT_BODY)
    assert reply.json() == {"bytes": 10, "body": '{"qty": 5}'}


async def test_expect_100_continue_waits_for_earlier_answers() -> None:
    peer = Peer()
    peer.send(GET_GATE_A + EXPECT_HEAD)
    await peer.gates.entered_("a")
    assert peer.transport.data == b""  # a 100 now would read as the gate's answer
    peer.gates.release("a")
    await peer.settle()
    first, interim = peer.take()
    assert first.json() == {"gate": "a"} and interim.status == 100
    [reply] = await peer.exchange(EXPECT_BODY)
    assert reply.status == 200


async def test_expect_100_continue_is_ignored_for_http10() -> None:
    peer = Peer()
    peer.send(EXPECT_HEAD_10)
    assert peer.transport.data == b""
    [reply] = await peer.exchange(EXPECT_BODY)
    assert reply.status == 200 and reply.closes


async def test_expect_100_continue_with_a_body_too_large_gets_413_instead() -> None:
    peer = Peer()
    [reply] = await peer.exchange(EXPECT_TOO_LARGE)
    assert_json_error(reply, 413)
    assert peer.lingering


# -- the ASGI scope -----------------------------------------------------------------------


def test_scope_carries_version_path_query_and_addresses() -> None:
    scopes: list[Scope] = []

    async def capture(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def main() -> None:
        peer = Peer(capture)
        await peer.exchange(b"GET /a%20b?q=1 HTTP/1.1\r\nHost: test\r\nX-Case: Yes\r\n\r\n" + GET_HELLO_10)
        first, second = scopes
        assert (first["path"], first["raw_path"], first["query_string"]) == ("/a b", b"/a%20b", b"q=1")
        assert first["headers"] == [(b"host", b"test"), (b"x-case", b"Yes")]
        assert (first["http_version"], second["http_version"]) == ("1.1", "1.0")
        assert first["client"] == ("127.0.0.1", 50000) and first["server"] == ("127.0.0.1", 8000)

    run_on("manual-clock", main())


# -- connection_lost and shutdown ---------------------------------------------------------


def test_client_gone_mid_request_is_cleaned_up() -> None:
    seen: list[str] = []

    waiting = asyncio.Event()

    async def waits_for_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((await receive())["type"])
        waiting.set()
        seen.append((await receive())["type"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def main() -> None:
        peer = Peer(waits_for_disconnect)
        peer.send(GET_HELLO + GET_HELLO)
        await waiting.wait()
        peer.conn.connection_lost(None)
        await peer.settle()
        assert seen == ["http.request", "http.disconnect"]  # the second request never ran
        assert peer.transport.data == b""  # the late answer was dropped, without an error
        assert not peer.conn.deadline.armed and not peer.conn.deadline.pending
        assert peer.conn not in peer.state.connections
        assert peer.state.all_closed.is_set()

    run_on("manual-clock", main())


async def test_shutdown_closes_an_idle_connection() -> None:
    peer = Peer()
    await peer.exchange(GET_HELLO)
    peer.conn.shutdown()
    await peer.settle()
    assert peer.closed and peer.transport.data == b""


async def test_shutdown_finishes_what_was_received_and_says_close_last() -> None:
    peer = Peer()
    peer.send(GET_GATE_A + GET_HELLO)
    await peer.gates.entered_("a")
    peer.state.closing = True
    peer.conn.shutdown()
    peer.send(GET_HELLO)  # sent after shutdown began: not a request we accept
    assert not peer.closed
    peer.gates.release("a")
    await peer.settle()
    replies = peer.take()
    assert [(r.status, r.closes) for r in replies] == [(200, False), (200, True)]
    assert peer.calls == ["a", "hello"] and peer.closed


async def test_shutdown_lets_a_half_received_request_finish() -> None:
    peer = Peer()
    peer.send(POST_ECHO[:-4])
    peer.state.closing = True
    peer.conn.shutdown()
    assert not peer.closed
    [reply] = await peer.exchange(POST_ECHO[-4:])
    assert reply.status == 200 and reply.closes and peer.closed


async def test_connection_made_during_shutdown_is_closed() -> None:
    state = ServerState(build_app(Gates(), []), LIMITS)
    state.closing = True
    peer = Peer(state=state)
    await peer.settle()
    assert peer.closed and state.all_closed.is_set()


async def test_repr_shows_state() -> None:
    peer = Peer()
    expected = "<HttpConnection client=('127.0.0.1', 50000) idle queued=0 busy=False>"
    assert repr(peer.conn) == expected
