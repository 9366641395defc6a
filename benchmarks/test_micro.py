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
``json`` (orjson vs the standard library), ``remote`` (our pool vs httpx).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import h11
import httptools
import orjson
import pytest
from ticketsys.ticket.orders import OrderBook
from ticketsys.vacancy.stock import StockManager

from ticketsys.api.readers import read_qty
from ticketsys.apps.monolith import build_monolith
from ticketsys.apps.vacancy import build_vacancy
from ticketsys.config import MEMORY, Settings
from ticketsys.http.application import App
from ticketsys.http.client import CLIENTS, ClientOptions
from ticketsys.http.models import Request
from ticketsys.http.responses import json_response
from ticketsys.http.server import Server, ServerLimits
from ticketsys.http.server.protocol import HttpConnection
from ticketsys.http.server.state import ServerState
from ticketsys.ticket.clients import LocalVacancyClient, RemoteVacancyClient
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.service import VacancyService

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
    """``run(make_coro, ops=OPS)``: one ``run_until_complete`` per round, of a coroutine that
    awaits ``make_coro()`` ``ops`` times; returns the last result."""

    def bench(make: Callable[[], Coroutine[Any, Any, Any]], ops: int = OPS) -> Any:
        async def many() -> Any:
            result = None
            for _ in range(ops):
                result = await make()
            return result

        benchmark.extra_info["ops_per_round"] = ops
        return benchmark(lambda: loop.run_until_complete(many()))

    return bench


def _settings() -> Settings:
    return Settings(initial_stock=HUGE, max_qty=1000, stock_store=MEMORY)


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
        conn.write(response, parser.should_keep_alive())

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
        out += conn.send(h11.Data(data=body))
        out += conn.send(h11.EndOfMessage())
        conn.start_next_cycle()
        return out

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
    """orjson dumps plus the head block ``HttpConnection.write`` renders."""
    conn, transport = loop.run_until_complete(_connection(_NoApp()))

    def render() -> None:
        conn.write(json_response(PURCHASE_PAYLOAD), True)

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
        state.direct = app.direct_handler()
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


@pytest.mark.benchmark(group="remote")
@pytest.mark.parametrize("client", ["pool", "httpx"])
def test_remote_reserve(run: Run, loop: asyncio.AbstractEventLoop, vacancy_url: str, client: str) -> None:
    """RemoteVacancyClient.reserve to a Vacancy server in the same loop (both sides' work is in
    the figure). ``pool`` is ticketsys.http.client.HttpPool, ``httpx`` its httpx twin."""
    options = ClientOptions(base_url=vacancy_url, read_timeout=5.0, connect_timeout=5.0)
    remote = RemoteVacancyClient(lambda: CLIENTS[client](options), vacancy_url)
    loop.run_until_complete(remote.open())
    try:
        assert run(lambda: remote.reserve(1), ops=OPS // 4).success
    finally:
        loop.run_until_complete(remote.close())
