"""Microbenchmarks of a purchase's hot path, innermost first.

    .venv/bin/python -m pytest benchmarks --benchmark-enable              # real numbers
    .venv/bin/python -m pytest benchmarks                                 # CI: each runs once

Async benchmarks time ``loop.run_until_complete(coro)`` on the session's one uvloop loop. That
call alone costs tens of microseconds on uvloop (it installs and removes its signal handling
every time; ``test_loop_overhead``), more than most operations measured, so each round's
coroutine performs the operation ``OPS`` times (``extra_info["ops_per_round"]``): divide the
table's times by it, or let ``benchmarks/microtable.py`` do it.

Stocks are huge (10**12) so no benchmark ever sells out. Groups
(``--benchmark-group-by=group``) put the alternatives of one decision side by side:
``parse`` (httptools vs h11), ``cycle`` (the ASGI adapter vs SERVER_DISPATCH=direct),
``json`` (orjson vs the standard library), ``remote`` (our pool vs httpx), ``pool`` (the
pool's own cost per call against a responder that parses nothing: the pool of before issue 13,
``benchmarks/pool_before.py``, against today's at several pipeline depths).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Coroutine, Iterator
from importlib.util import find_spec
from typing import Any

import h11
import httptools
import orjson
import pytest

from benchmarks.batch_prototype import BatchReserver, build_batch_vacancy
from benchmarks.ceiling import Ceiling
from benchmarks.pool_before import BeforePool
from ticketsys.apps.monolith import build_monolith
from ticketsys.apps.vacancy import build_vacancy
from ticketsys.config import Settings
from ticketsys.domain.schemas import read_qty
from ticketsys.http.application import App, direct_handler
from ticketsys.http.client import ClientOptions, HttpClient, HttpPool, HttpxClient
from ticketsys.http.client.assign import ConnState, assign
from ticketsys.http.limits import ServerLimits
from ticketsys.http.requests import Request
from ticketsys.http.responses import json_response
from ticketsys.http.runner import Server
from ticketsys.http.server import HttpConnection, ServerState
from ticketsys.ticket.clients import LocalVacancyClient, RemoteVacancyClient
from ticketsys.ticket.orders import OrderBook
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.service import VacancyService
from ticketsys.vacancy.stock import StockManager

HUGE = 10**12
BODY = b'{"qty": 1}'
# What a load generator sends: the same bytes wrk's script and benchmarks/openloop.py send.
PURCHASE = (
    b"POST /api/v1/purchase HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Content-Type: application/json\r\nContent-Length: 10\r\n\r\n" + BODY
)
HEADERS = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"), (b"content-length", b"10")]
PURCHASE_PAYLOAD = {
    "success": True,
    "remaining": 999_999_999_998,
    "message": "Purchase successful!",
    "qty": 1,
    "order_id": "0f8fad5bd9cb469fa16570867728950e",
}

OPS = 100  # operations per round of an async benchmark: see the module docstring

Run = Callable[..., Any]


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop, benchmark: Any) -> Run:
    """``run(make_coro, ops=OPS, per_op=1)``: one ``run_until_complete`` per round, of a
    coroutine that awaits ``make_coro()`` ``ops`` times (each doing ``per_op`` operations);
    returns the last result."""

    def bench(make: Callable[[], Coroutine[Any, Any, Any]], ops: int = OPS, per_op: int = 1) -> Any:
        async def many() -> Any:
            result = None
            for _ in range(ops):
                result = await make()
            return result

        benchmark.extra_info["ops_per_round"] = ops * per_op
        return benchmark(lambda: loop.run_until_complete(many()))

    return bench


def _settings() -> Settings:
    return Settings(initial_stock=HUGE, max_qty=1000, stock_store="memory")


@pytest.fixture(scope="session")
def monolith(loop: asyncio.AbstractEventLoop) -> Iterator[App]:
    app = build_monolith(_settings())
    loop.run_until_complete(app.startup())
    yield app
    loop.run_until_complete(app.shutdown())


# -- the loop itself -----------------------------------------------------------------------


async def _nothing() -> None:
    pass


@pytest.mark.benchmark(group="loop")
def test_loop_overhead(run: Run) -> None:
    """What one ``run_until_complete`` costs (ops=1): the reason for ``OPS``."""
    run(_nothing, ops=1)


# -- parsing: httptools (what the server uses) against h11 ---------------------------------


class _Collect:
    """The parser callbacks the embedded server implements, doing the same work."""

    __slots__ = ("body", "complete", "headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.complete = False

    def on_message_begin(self) -> None:
        self.headers = []
        self.body = b""

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


@pytest.mark.benchmark(group="parse")
def test_parse_httptools(benchmark: Any) -> None:
    """One keep-alive parser fed a purchase per round, as a connection sees them."""
    sink = _Collect()
    parser = httptools.HttpRequestParser(sink)

    def parse() -> None:
        parser.feed_data(PURCHASE)

    benchmark(parse)
    assert sink.complete and sink.body == BODY and parser.get_method() == b"POST"


@pytest.mark.benchmark(group="parse")
def test_parse_h11(benchmark: Any) -> None:
    """h11 needs the response sent before the next request: a fresh connection per round
    (its construction is ~1 us of the figure; ``test_cycle_h11`` is the fair comparison)."""

    def parse() -> list[Any]:
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(PURCHASE)
        events = []
        while True:
            event = conn.next_event()
            events.append(event)
            if type(event) is h11.EndOfMessage:
                return events

    events = benchmark(parse)
    assert events[0].method == b"POST" and events[1].data == BODY


@pytest.mark.benchmark(group="parse")
def test_cycle_httptools(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Parse a purchase and render its response, the embedded server's way (no app)."""
    sink = _Collect()
    parser = httptools.HttpRequestParser(sink)
    conn, transport = loop.run_until_complete(_connection(_NoApp()))
    response = json_response(PURCHASE_PAYLOAD)

    def cycle() -> None:
        parser.feed_data(PURCHASE)
        conn.write_response(response, keep_alive=parser.should_keep_alive())

    benchmark(cycle)
    assert transport.data.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.benchmark(group="parse")
def test_cycle_h11(benchmark: Any) -> None:
    """The same with h11: receive a purchase, send its response, start the next cycle."""
    conn = h11.Connection(h11.SERVER)
    body = orjson.dumps(PURCHASE_PAYLOAD)
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]

    def cycle() -> bytes:
        conn.receive_data(PURCHASE)
        while type(conn.next_event()) is not h11.EndOfMessage:
            pass
        out = conn.send(h11.Response(status_code=200, headers=head))
        out += conn.send(h11.Data(data=body))  # type: ignore[operator]
        out += conn.send(h11.EndOfMessage())  # type: ignore[operator]
        conn.start_next_cycle()
        return out  # type: ignore[return-value]

    assert benchmark(cycle).startswith(b"HTTP/1.1 200 ")


# -- routing, JSON, rendering ---------------------------------------------------------------


@pytest.mark.benchmark(group="route")
def test_route_fixed(benchmark: Any, monolith: App) -> None:
    found = benchmark(monolith.router.match, "POST", "/api/v1/purchase")
    assert found.route is not None and found.route.name == "purchase"


@pytest.mark.benchmark(group="route")
def test_route_templated(benchmark: Any, monolith: App) -> None:
    found = benchmark(monolith.router.match, "GET", "/api/v1/orders/0f8fad5bd9cb469fa16570867728950e")
    assert found.params == {"order_id": "0f8fad5bd9cb469fa16570867728950e"}


@pytest.mark.benchmark(group="json")
def test_read_qty(benchmark: Any) -> None:
    """Content-Type check, orjson decode, strict integer validation."""
    request = Request("POST", "/api/v1/purchase", HEADERS, BODY)
    assert benchmark(read_qty, request, 1000) == 1


@pytest.mark.benchmark(group="json")
def test_decode_orjson(benchmark: Any) -> None:
    assert benchmark(orjson.loads, BODY) == {"qty": 1}


@pytest.mark.benchmark(group="json")
def test_decode_stdlib(benchmark: Any) -> None:
    assert benchmark(json.loads, BODY) == {"qty": 1}


@pytest.mark.benchmark(group="json")
def test_encode_orjson(benchmark: Any) -> None:
    assert benchmark(orjson.dumps, PURCHASE_PAYLOAD).startswith(b'{"success":true')


@pytest.mark.benchmark(group="json")
def test_encode_stdlib(benchmark: Any) -> None:
    assert benchmark(lambda: json.dumps(PURCHASE_PAYLOAD, separators=(",", ":")).encode()).startswith(
        b'{"success":true'
    )


@pytest.mark.benchmark(group="render")
def test_render_response(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    """orjson dumps plus the head block ``HttpConnection.write_response`` builds."""
    conn, transport = loop.run_until_complete(_connection(_NoApp()))

    def render() -> None:
        conn.write_response(json_response(PURCHASE_PAYLOAD), keep_alive=True)

    benchmark(render)
    assert transport.data.startswith(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")


@pytest.mark.benchmark(group="ids")
def test_uuid4_hex(benchmark: Any) -> None:
    """A purchase makes two (the reservation key and the order id)."""
    assert len(benchmark(lambda: uuid.uuid4().hex)) == 32


# -- the services ---------------------------------------------------------------------------


@pytest.mark.benchmark(group="services")
def test_stock_reserve(run: Run) -> None:
    stock = StockManager(HUGE)
    assert run(lambda: stock.reserve(1)).success


@pytest.mark.benchmark(group="services")
def test_purchase_local_client(run: Run) -> None:
    """TicketService.purchase through LocalVacancyClient: reserve, order id, order book."""
    vacancy = VacancyService(StockManager(HUGE), 1000)
    service = TicketService(LocalVacancyClient(vacancy), OrderBook(), 1000)
    assert run(lambda: service.purchase(1)).qty == 1


# -- a whole purchase in-process: ASGI, App.handle, the server protocol without a socket -------


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": "/api/v1/purchase",
        "raw_path": b"/api/v1/purchase",
        "query_string": b"",
        "headers": HEADERS,
    }


@pytest.mark.benchmark(group="cycle")
def test_purchase_asgi(run: Run, monolith: App) -> None:
    """The monolith app called as an ASGI app (what hypercorn/uvicorn/our server do)."""
    sent: list[dict[str, Any]] = []

    async def purchase() -> None:
        sent.clear()
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            delivered = True
            return {"type": "http.request", "body": BODY, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await monolith(_scope(), receive, send)
        assert delivered

    run(purchase)
    assert sent[0]["status"] == 200 and b'"success":true' in sent[1]["body"]


@pytest.mark.benchmark(group="cycle")
def test_purchase_handle(run: Run, monolith: App) -> None:
    """The same purchase through ``App.handle(Request)``: no ASGI messages."""

    async def purchase() -> Any:
        return await monolith.handle(Request("POST", "/api/v1/purchase", HEADERS, BODY))

    assert run(purchase).status == 200


class _FakeTransport:
    """Records what the server writes and wakes whoever waits for it."""

    def __init__(self) -> None:
        self.data = b""
        self.waiter: asyncio.Future[None] | None = None

    def write(self, data: bytes) -> None:
        self.data = data
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name in ("sockname", "peername") else default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _NoApp:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")


async def _connection(app: Any, direct: bool = False) -> tuple[HttpConnection, _FakeTransport]:
    state = ServerState(app, ServerLimits())
    if direct:
        state.direct = direct_handler(app)
    conn = HttpConnection(state)
    transport = _FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


@pytest.mark.benchmark(group="cycle")
@pytest.mark.parametrize("dispatch", ["asgi", "direct"])
def test_purchase_server_protocol(
    run: Run, loop: asyncio.AbstractEventLoop, monolith: App, dispatch: str
) -> None:
    """Raw purchase bytes into the server's Protocol, until the response is written: all of
    a monolith purchase except the socket. ``direct`` is SERVER_DISPATCH=direct (App.handle
    without ASGI), ``asgi`` the ASGI adapter."""
    conn, transport = loop.run_until_complete(_connection(monolith, direct=dispatch == "direct"))

    async def purchase() -> None:
        transport.waiter = loop.create_future()
        conn.data_received(PURCHASE)
        await transport.waiter

    try:
        run(purchase)
        assert transport.data.startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        conn.connection_lost(None)


# -- a reserve over loopback -----------------------------------------------------------------


@pytest.fixture(scope="session")
def vacancy_url(loop: asyncio.AbstractEventLoop) -> Iterator[str]:
    """A Vacancy server on an ephemeral loopback port, in the benchmarks' own loop."""
    server = Server(build_vacancy(_settings()), "127.0.0.1", 0)
    loop.run_until_complete(server.start())
    yield f"http://127.0.0.1:{server.port}"
    loop.run_until_complete(server.shutdown())


def _client(kind: str, url: str, depth: int = 8) -> HttpClient:
    """``before``: the pool of before issue 13; ``pool``: ticketsys.http.client.HttpPool with
    ``depth`` requests pipelined at most (1: none); ``httpx``: its httpx twin."""
    options = ClientOptions(base_url=url, read_timeout=5.0, connect_timeout=5.0, max_pipeline=depth)
    kinds: dict[str, Callable[[ClientOptions], HttpClient]] = {
        "before": BeforePool,
        "pool": HttpPool,
        "httpx": HttpxClient,
    }
    return kinds[kind](options)


@pytest.mark.benchmark(group="remote")
@pytest.mark.parametrize(
    "client",
    [
        "before",
        "pool",
        pytest.param("httpx", marks=pytest.mark.skipif(not find_spec("httpx"), reason="no httpx")),
    ],
)
def test_remote_reserve(run: Run, loop: asyncio.AbstractEventLoop, vacancy_url: str, client: str) -> None:
    """RemoteVacancyClient.reserve to a Vacancy server in the same loop (both sides' work is in
    the figure), one at a time."""
    remote = RemoteVacancyClient(lambda: _client(client, vacancy_url), vacancy_url)
    loop.run_until_complete(remote.open())
    try:
        assert run(lambda: remote.reserve(1), ops=OPS // 4).success
    finally:
        loop.run_until_complete(remote.close())


BURST = 16  # reserves leaving Ticket in one tick: what 16 purchases read in one loop iteration give


@pytest.mark.benchmark(group="remote")
@pytest.mark.parametrize(("client", "depth"), [("before", 1), ("pool", 1), ("pool", 8), ("pool", 16)])
def test_remote_reserve_burst(
    run: Run, loop: asyncio.AbstractEventLoop, vacancy_url: str, client: str, depth: int
) -> None:
    """``BURST`` reserves at once through RemoteVacancyClient, both sides' work per reserve:
    how much pipelining saves the pair (on one core, as in the load runs)."""
    remote = RemoteVacancyClient(lambda: _client(client, vacancy_url, depth), vacancy_url)
    loop.run_until_complete(remote.open())

    async def burst() -> list[Any]:
        return await asyncio.gather(*(remote.reserve(1) for _ in range(BURST)))

    try:
        assert all(r.success for r in run(burst, ops=OPS // 20, per_op=BURST))
    finally:
        loop.run_until_complete(remote.close())


@pytest.fixture(scope="session")
def batch_vacancy_url(loop: asyncio.AbstractEventLoop) -> Iterator[str]:
    """Vacancy with the prototype batch endpoint (benchmarks/batch_prototype.py)."""
    server = Server(build_batch_vacancy(_settings()), "127.0.0.1", 0)
    loop.run_until_complete(server.start())
    yield f"http://127.0.0.1:{server.port}"
    loop.run_until_complete(server.shutdown())


@pytest.mark.benchmark(group="remote")
def test_remote_reserve_burst_batch(
    run: Run, loop: asyncio.AbstractEventLoop, batch_vacancy_url: str
) -> None:
    """The same ``BURST`` reserves as one batch request (the alternative to pipelining), per
    reserve: one request and one answer to parse and render on each side for all of them."""
    http = _client("pool", batch_vacancy_url, 1)
    reserver = BatchReserver(http)

    async def burst() -> list[Any]:
        return await asyncio.gather(*(reserver.reserve(1) for _ in range(BURST)))

    try:
        assert all(r.success for r in run(burst, ops=OPS // 20, per_op=BURST))
    finally:
        loop.run_until_complete(http.aclose())


# -- the pool's own cost: a responder that parses nothing -----------------------------------


@pytest.fixture(scope="session")
def ceiling_url(loop: asyncio.AbstractEventLoop) -> Iterator[str]:
    """benchmarks/ceiling.py's responder in the benchmarks' loop: fixed bytes per request."""
    server = loop.run_until_complete(loop.create_server(Ceiling, "127.0.0.1", 0))
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    loop.run_until_complete(server.wait_closed())


POOL_CASES = [("before", 1), ("pool", 1), ("pool", 8)]


@pytest.mark.benchmark(group="pool")
@pytest.mark.parametrize(("client", "depth"), POOL_CASES)
def test_pool_call(
    run: Run, loop: asyncio.AbstractEventLoop, ceiling_url: str, client: str, depth: int
) -> None:
    """One GET at a time: render, hand-off, write, read, parse, wake the caller."""
    http = _client(client, ceiling_url, depth)
    try:
        assert run(lambda: http.request("GET", "/api/v1/available")).status == 200
    finally:
        loop.run_until_complete(http.aclose())


@pytest.mark.benchmark(group="pool")
@pytest.mark.parametrize(("client", "depth"), POOL_CASES)
def test_pool_burst(
    run: Run, loop: asyncio.AbstractEventLoop, ceiling_url: str, client: str, depth: int
) -> None:
    """``BURST`` GETs at once, per GET."""
    http = _client(client, ceiling_url, depth)

    async def burst() -> list[Any]:
        return await asyncio.gather(*(http.request("GET", "/api/v1/available") for _ in range(BURST)))

    try:
        assert {r.status for r in run(burst, ops=OPS // 10, per_op=BURST)} == {200}
    finally:
        loop.run_until_complete(http.aclose())


class _Conn:
    __slots__ = ("depth", "state_")

    def __init__(self, state: ConnState, depth: int = 0) -> None:
        self.state_, self.depth = state, depth

    def state(self, now: float) -> ConnState:
        return self.state_


@pytest.mark.benchmark(group="pool")
def test_assign_one_request(benchmark: Any) -> None:
    """The decision alone, at low load: one request, a pool of 16 idle and 4 busy."""
    idle = [_Conn(ConnState.IDLE) for _ in range(16)]
    active = {_Conn(ConnState.ACTIVE, 1) for _ in range(4)}
    plan = benchmark(assign, 1, idle, active, 0.0, max_connections=100, max_pipeline=8)
    assert plan.send == [(idle[-1], 1)]
