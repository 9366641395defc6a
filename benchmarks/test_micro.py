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
``benchmarks/pool_before.py``, against today's at several pipeline depths), ``store`` (the
SQLite store's inner operations, each with its commit, against the memory store's purchase).

The SQLite stores are files under pytest's temporary directory (on this machine a disk, not a
tmpfs) with ``FSYNC=everysec``, as served: a commit writes the transaction's log frames to the
kernel and no fsync is waited for. Their tables stay small here (thousands of rows, all in the
page cache): these are the CPU costs of an operation, not of a cold read from a 10 M-row file.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Coroutine, Iterator
from importlib.util import find_spec
from typing import Any

import h11
import httptools
import orjson
import pytest

from benchmarks.ceiling import Ceiling
from benchmarks.pool_before import BeforePool
from ticketsys.api.readers import read_qty
from ticketsys.apps.local_vacancy import LocalVacancyClient
from ticketsys.apps.monolith import build_monolith
from ticketsys.apps.vacancy import build_vacancy
from ticketsys.config import MEMORY, Settings
from ticketsys.domain.models import HoldState
from ticketsys.http.application import App
from ticketsys.http.client import ClientOptions, HttpClient, HttpPool, HttpxClient
from ticketsys.http.client.assign import ConnState, assign
from ticketsys.http.models import Request
from ticketsys.http.responses import json_response
from ticketsys.http.server import Server, ServerLimits
from ticketsys.http.server.protocol import HttpConnection
from ticketsys.http.server.state import ServerState
from ticketsys.storage.fsync import FsyncPolicy
from ticketsys.storage.memory import MemorySale, MemoryStock
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.sale import SqliteSale
from ticketsys.storage.sqlite.stock import SqliteStock
from ticketsys.ticket.checkout import StoreCheckout
from ticketsys.ticket.clients import RemoteVacancyClient
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
BATCH = 64  # purchases made in one event-loop tick, so sharing one commit
ORDER_ID = "0f8fad5bd9cb469fa16570867728950e"

Run = Callable[..., Any]


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop, benchmark: Any) -> Run:
    """``run(make_coro, ops=OPS, per_call=1)``: one ``run_until_complete`` per round, of a
    coroutine that awaits ``make_coro()`` ``ops`` times (each doing ``per_call`` operations);
    returns the last result."""

    def bench(make: Callable[[], Coroutine[Any, Any, Any]], ops: int = OPS, per_call: int = 1) -> Any:
        async def many() -> Any:
            result = None
            for _ in range(ops):
                result = await make()
            return result

        benchmark.extra_info["ops_per_round"] = ops * per_call
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


# -- the stores -----------------------------------------------------------------------------


def _sqlite(
    loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory, kind: str
) -> Iterator[Any]:
    """A SQLite store of ``kind`` opened on the session's loop (its commits run there)."""
    path = tmp_path_factory.mktemp(kind) / f"{kind}.db"
    store = (SqliteSale if kind == "sale" else SqliteStock)(Database(path, kind, FsyncPolicy.EVERYSEC), HUGE)
    loop.run_until_complete(store.open())
    yield store
    loop.run_until_complete(store.close())


@pytest.fixture(scope="session")
def sqlite_sale(
    loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqliteSale]:
    """The monolith's store: stock, holds and orders."""
    yield from _sqlite(loop, tmp_path_factory, "sale")


@pytest.fixture(scope="session")
def sqlite_stock(
    loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqliteStock]:
    """Vacancy's store: stock and holds."""
    yield from _sqlite(loop, tmp_path_factory, "stock")


async def _batch(sale: SqliteSale | MemorySale) -> list[Any]:
    """``BATCH`` purchases started in one tick: their writes join one transaction."""
    return await asyncio.gather(*(sale.purchase(1, None, "") for _ in range(BATCH)))


@pytest.mark.benchmark(group="store")
def test_sqlite_purchase(run: Run, sqlite_sale: SqliteSale) -> None:
    """One purchase in SqliteSale (stock row, order row) awaited until its transaction has
    committed: one commit per purchase, the cost at a low request rate."""
    order = run(lambda: sqlite_sale.purchase(1, None, ""))
    assert order.qty == 1


@pytest.mark.benchmark(group="store")
def test_sqlite_purchase_batch(run: Run, loop: asyncio.AbstractEventLoop, sqlite_sale: SqliteSale) -> None:
    """``BATCH`` purchases sharing one commit (group commit under load), per purchase."""
    orders = run(lambda: _batch(sqlite_sale), ops=OPS // 10, per_call=BATCH)
    assert len({order.order_id for order in orders}) == BATCH
    commits = sqlite_sale._db._commits  # the premise of the figure: one commit for the batch
    loop.run_until_complete(_batch(sqlite_sale))
    assert sqlite_sale._db._commits == commits + 1


@pytest.mark.benchmark(group="store")
def test_sqlite_order_lookup(run: Run, loop: asyncio.AbstractEventLoop, sqlite_sale: SqliteSale) -> None:
    """GET /api/v1/orders/{id}'s store read: an id decoded to its row, the row read and its
    secret compared, cycling over 1,024 orders (not one hot row)."""
    made = [order for _ in range(16) for order in loop.run_until_complete(_batch(sqlite_sale))]
    ids = itertools.cycle(order.order_id for order in made)
    found = run(lambda: sqlite_sale.get_order(next(ids)))
    assert found is not None and found.qty == 1


@pytest.mark.benchmark(group="store")
def test_sqlite_hold_confirm(run: Run, sqlite_stock: SqliteStock) -> None:
    """A hold then its confirm in SqliteStock: two operations, two commits (Vacancy's part of
    a microservices purchase)."""

    async def hold_confirm() -> Any:
        hold = await sqlite_stock.hold(1, 60.0)
        return await sqlite_stock.confirm(hold.hold_id, ORDER_ID)

    assert run(hold_confirm).order_id == ORDER_ID


@pytest.mark.benchmark(group="store")
def test_memory_purchase(run: Run) -> None:
    """The memory store's purchase, the reference for the two above."""
    sale = MemorySale(HUGE)
    assert run(lambda: sale.purchase(1, None, "")).qty == 1


ORDER_TABLES = {
    # as the store keys orders: an increasing integer, the random secret a plain column
    "integer": "CREATE TABLE orders (seq INTEGER PRIMARY KEY, secret BLOB NOT NULL, qty INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, remaining INTEGER NOT NULL) STRICT",
    # the alternative: the random id as the key (a rowid table with its unique index)
    "random": "CREATE TABLE orders (id BLOB PRIMARY KEY, qty INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    " remaining INTEGER NOT NULL) STRICT",
}
PREFILL = 100_000  # rows already sold: the random key's index (~3 MB) no longer fits the 2 MB cache


@pytest.mark.benchmark(group="store-keys")
@pytest.mark.parametrize("key", list(ORDER_TABLES))
def test_sqlite_order_insert(benchmark: Any, tmp_path: Any, key: str) -> None:
    """Why orders are keyed by an increasing integer (storage/sqlite/ids.py): ``BATCH`` order
    inserts and their commit, per insert, into a table of ``PREFILL`` orders, with an
    increasing key (an append to the B-tree's last page) or a random 16-byte key (an insert
    at a random place of its index, dirtying a page per row). Raw sqlite3, WAL, as the store
    opens it (synchronous=NORMAL, no checkpoint in between)."""
    conn = sqlite3.connect(tmp_path / "keys.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-2048")
    conn.execute(ORDER_TABLES[key])
    column, size = ("secret", 10) if key == "integer" else ("id", 16)
    insert = f"INSERT INTO orders ({column}, qty, created_ms, remaining) VALUES (?, 1, 0, 0)"
    conn.execute("BEGIN")
    conn.executemany(insert, ((os.urandom(size),) for _ in range(PREFILL)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def batch() -> None:
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(BATCH):
            conn.execute(insert, (os.urandom(size),))
        conn.execute("COMMIT")

    benchmark.extra_info["ops_per_round"] = BATCH
    try:
        benchmark(batch)
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] > PREFILL
    finally:
        conn.close()


# -- the services ---------------------------------------------------------------------------


@pytest.mark.benchmark(group="services")
def test_stock_reserve(run: Run) -> None:
    """Vacancy's reserve on the memory store (a sale outside any hold)."""
    stock = MemoryStock(HUGE)
    assert run(lambda: stock.sell(1)) < HUGE


@pytest.mark.benchmark(group="services")
@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_purchase_local_client(run: Run, request: pytest.FixtureRequest, store: str) -> None:
    """TicketService.purchase as the monolith wires it: the rules, then the sale store's
    one-step purchase (StoreCheckout)."""
    sale = MemorySale(HUGE) if store == "memory" else request.getfixturevalue("sqlite_sale")
    vacancy = VacancyService(sale, 1000)
    service = TicketService(LocalVacancyClient(vacancy), StoreCheckout(sale), 1000)
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


# -- a hold over loopback ---------------------------------------------------------------------


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
def test_remote_hold(run: Run, loop: asyncio.AbstractEventLoop, vacancy_url: str, client: str) -> None:
    """RemoteVacancyClient.hold to a Vacancy server on the memory store in the same loop (both
    sides' work is in the figure), one at a time."""
    remote = RemoteVacancyClient(lambda: _client(client, vacancy_url), vacancy_url)
    loop.run_until_complete(remote.open())
    try:
        assert run(lambda: remote.hold(1, 60.0), ops=OPS // 4).state is HoldState.HELD
    finally:
        loop.run_until_complete(remote.close())


BURST = 16  # holds leaving Ticket in one tick: what 16 purchases read in one loop iteration give


@pytest.mark.benchmark(group="remote")
@pytest.mark.parametrize(("client", "depth"), [("before", 1), ("pool", 1), ("pool", 8), ("pool", 16)])
def test_remote_hold_burst(
    run: Run, loop: asyncio.AbstractEventLoop, vacancy_url: str, client: str, depth: int
) -> None:
    """``BURST`` holds at once through RemoteVacancyClient (a purchase's one round trip),
    both sides' work per hold: how much pipelining saves the pair (on one core, as in the load
    runs)."""
    remote = RemoteVacancyClient(lambda: _client(client, vacancy_url, depth), vacancy_url)
    loop.run_until_complete(remote.open())

    async def burst() -> list[Any]:
        return await asyncio.gather(*(remote.hold(1, 60.0) for _ in range(BURST)))

    try:
        assert all(h.state is HoldState.HELD for h in run(burst, ops=OPS // 20, per_call=BURST))
    finally:
        loop.run_until_complete(remote.close())


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
        assert {r.status for r in run(burst, ops=OPS // 10, per_call=BURST)} == {200}
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
