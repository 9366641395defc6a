"""RemoteVacancyClient against a real Vacancy server on loopback, with both HTTP clients, and
against a server that answers what Vacancy never would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest

from ticketsys.apps.vacancy import build_vacancy
from ticketsys.config import MEMORY, Settings
from ticketsys.domain.errors import (
    HoldNotFound,
    HoldUnavailable,
    InvalidQuantity,
    InvalidTtl,
    SoldOut,
    VacancyUnavailable,
)
from ticketsys.domain.models import Hold, HoldState
from ticketsys.http.client import CLIENTS, ClientOptions
from ticketsys.http.server import Server, ServerLimits
from ticketsys.ticket.clients import RemoteVacancyClient

KINDS = [pytest.param(kind, id=kind) for kind in CLIENTS]
ORDER = "ab" * 16


@asynccontextmanager
async def vacancy(kind: str, **settings: object) -> AsyncIterator[RemoteVacancyClient]:
    options = {"initial_stock": 100, "max_qty": 10, "stock_store": MEMORY, **settings}
    server = Server(build_vacancy(Settings(**options)), "127.0.0.1", 0, ServerLimits())  # type: ignore[arg-type]
    await server.start()
    url = f"http://127.0.0.1:{server.port}"
    client = RemoteVacancyClient(lambda: CLIENTS[kind](ClientOptions(url)), url)
    await client.open()
    try:
        yield client
    finally:
        await client.close()
        await server.shutdown()


@pytest.mark.parametrize("kind", KINDS)
async def test_holds_over_http(kind: str) -> None:
    async with vacancy(kind) as client:
        assert await client.available() == 100
        hold = await client.hold(7, 30.0)
        assert (hold.qty, hold.state, hold.remaining) == (7, HoldState.HELD, 93)
        assert await client.get_hold(hold.hold_id) == hold
        confirmed = await client.confirm(hold.hold_id, ORDER)
        assert (confirmed.state, confirmed.order_id) == (HoldState.CONFIRMED, ORDER)
        assert await client.confirm(hold.hold_id, ORDER) == confirmed  # idempotent
        with pytest.raises(HoldUnavailable) as caught:
            await client.release(hold.hold_id)
        assert (caught.value.state, caught.value.order_id) == ("confirmed", ORDER)
        other = await client.hold(3, 30.0)
        assert await client.release(other.hold_id) == 93
        assert await client.release(other.hold_id) == 93
        stock = await client.stock()
        assert (stock.available, stock.held, stock.sold, stock.capacity) == (93, 0, 7, 100)
        assert len(await client.store_id()) >= 16
        assert await client.ready()


@pytest.mark.parametrize("kind", KINDS)
async def test_refusals_arrive_as_the_business_errors(kind: str) -> None:
    async with vacancy(kind, hold_ttl_max=60.0) as client:
        with pytest.raises(SoldOut) as sold_out:
            for _ in range(11):
                await client.hold(10, 30.0)
        assert (sold_out.value.requested, sold_out.value.remaining) == (10, 0)
        with pytest.raises(InvalidQuantity, match="at most 10"):
            await client.hold(11, 30.0)
        with pytest.raises(InvalidTtl):
            await client.hold(1, 61.0)
        with pytest.raises(HoldNotFound):
            await client.get_hold("0" * 32)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_key_makes_one_hold(kind: str) -> None:
    async with vacancy(kind) as client:
        first = await client.hold(2, 30.0, key="store:purchase:k")
        assert await client.hold(2, 30.0, key="store:purchase:k") == first
        assert (await client.stock()).held == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_dead_vacancy_is_unavailable(kind: str) -> None:
    url = "http://127.0.0.1:9"  # discard port: nothing listens
    client = RemoteVacancyClient(lambda: CLIENTS[kind](ClientOptions(url)), url)
    await client.open()
    try:
        with pytest.raises(VacancyUnavailable, match="unreachable"):
            await client.hold(1, 30.0)
        assert not await client.ready()
    finally:
        await client.close()


async def test_closed_client_is_unavailable() -> None:
    client = RemoteVacancyClient(lambda: CLIENTS["pool"](ClientOptions("http://127.0.0.1:9")), "x")
    with pytest.raises(VacancyUnavailable, match="not open"):
        await client.hold(1, 30.0)


HOLD = {
    "hold_id": "c" * 32,
    "qty": 2,
    "expires_at": "2026-12-03T09:00:00.000Z",
    "state": "held",
    "remaining": 5,
}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(201, {**HOLD, "remaining": -5}, id="negative remaining"),
        pytest.param(201, {**HOLD, "qty": "2"}, id="qty as a string"),
        pytest.param(201, {**HOLD, "state": "sold"}, id="unknown state"),
        pytest.param(201, {**HOLD, "hold_id": "../../etc"}, id="id not hex"),
        pytest.param(201, {**HOLD, "expires_at": "tomorrow"}, id="time not RFC 3339"),
        pytest.param(201, {**HOLD, "store_id": None}, id="no store id"),
        pytest.param(201, [HOLD], id="an array"),
        pytest.param(200, {**HOLD, "store_id": "d" * 24}, id="200 instead of 201"),
        pytest.param(
            409, {"error": "sold_out", "remaining": -1, "requested": 1}, id="sold out, remaining -1"
        ),
        pytest.param(500, {"error": "internal_error"}, id="a 500"),
    ],
)
async def test_an_answer_vacancy_would_never_give_is_unavailability(status: int, body: object) -> None:
    if isinstance(body, dict) and "store_id" not in body:
        body = {**body, "store_id": "d" * 24}
    async with answering(status, body) as client:
        with pytest.raises(VacancyUnavailable):
            await client.hold(1, 30.0)


SOLD = {**HOLD, "state": "confirmed", "order_id": ORDER}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(200, {"store_id": "d" * 24, "results": []}, id="fewer results"),
        pytest.param(
            200, {"store_id": "d" * 24, "results": [{"status": 201, **SOLD}] * 2}, id="more results"
        ),
        pytest.param(200, {"results": [{"status": 201, **SOLD}]}, id="no store id"),
        pytest.param(200, {"store_id": "d" * 24, "results": {"status": 201}}, id="results not a list"),
        pytest.param(200, {"store_id": "d" * 24, "results": [SOLD]}, id="a result without status"),
        pytest.param(
            200, {"store_id": "d" * 24, "results": [{**SOLD, "status": "201"}]}, id="status a string"
        ),
        pytest.param(
            200, {"store_id": "d" * 24, "results": [{**SOLD, "status": 201, "qty": -1}]}, id="bad hold"
        ),
        pytest.param(200, {"store_id": "d" * 24, "results": [None]}, id="a result not an object"),
        pytest.param(
            200,
            {"store_id": "d" * 24, "results": [{"status": 500, "error": "internal_error"}]},
            id="a sale's 500",
        ),
        pytest.param(422, {"error": "invalid_field", "field": "sales"}, id="the batch refused"),
        pytest.param(201, {**SOLD, "store_id": "d" * 24}, id="a hold, not a batch"),
    ],
)
async def test_a_batch_answer_vacancy_would_never_give_is_unavailability(status: int, body: object) -> None:
    async with answering(status, body) as client:
        with pytest.raises(VacancyUnavailable):
            await client.sell_hold(2, time.time() + 30, ORDER)


@asynccontextmanager
async def answering(status: int, body: object) -> AsyncIterator[RemoteVacancyClient]:
    """A client of a server that answers every request with ``status`` and ``body``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        payload = orjson.dumps(body)
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
            % (status, len(payload))
            + payload
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    client = RemoteVacancyClient(lambda: CLIENTS["pool"](ClientOptions(url)), url)
    await client.open()
    try:
        yield client
    finally:
        await client.close()
        server.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_the_sales_of_one_tick_leave_together_and_are_answered_each(kind: str) -> None:
    async with vacancy(kind) as client:
        assert client._http is not None
        sent: list[str] = []
        request = client._http.request

        async def counted(method: str, path: str, *args: object, **kwargs: object) -> object:
            sent.append(path)
            return await request(method, path, *args, **kwargs)  # type: ignore[arg-type]

        client._http.request = counted  # type: ignore[method-assign,assignment]
        soon, past = time.time() + 30, time.time() - 1
        orders = [f"{i:032x}" for i in range(100)]
        sales = [(1, soon, orders[i]) for i in range(90)]  # 90 of the 100 tickets
        sales += [(11, soon, orders[90]), (1, past, orders[91]), (1, soon, orders[0])]
        sales += [(5, soon, orders[i]) for i in range(93, 100)]  # 10 left: two of these sell
        answers = await asyncio.gather(*(client.sell_hold(*sale) for sale in sales), return_exceptions=True)

        assert sent == ["/api/v1/sales", "/api/v1/sales"]  # 100 sales: 64 a request
        holds = [answer for answer in answers if isinstance(answer, Hold)]
        assert len(holds) == 93  # 90 + the repeat + two of five
        assert isinstance(answers[90], InvalidQuantity)
        assert isinstance(answers[91], HoldUnavailable) and answers[91].state == HoldState.EXPIRED
        assert answers[92] == answers[0]  # the same order id: the same sale, whichever came first
        assert sum(isinstance(answer, SoldOut) for answer in answers) == 5
        for (qty, _, order_id), answer in zip(sales, answers, strict=True):
            if isinstance(answer, Hold):
                assert (answer.qty, answer.order_id, answer.state) == (qty, order_id, HoldState.CONFIRMED)
        stock = await client.stock()
        assert (stock.available, stock.held, stock.sold) == (0, 0, 100)


async def test_closing_fails_the_sales_not_sent() -> None:
    async with vacancy("pool") as client:
        pending = asyncio.ensure_future(client.sell_hold(1, time.time() + 30, ORDER))
        await asyncio.sleep(0)  # asked, not sent: the tick has not ended
        await client.close()
        with pytest.raises(VacancyUnavailable, match="not open"):
            await pending


async def test_a_cancelled_batch_fails_the_sales_that_joined_it() -> None:
    async with vacancy("pool") as client:
        leader = asyncio.ensure_future(client.sell_hold(1, time.time() + 30, ORDER))
        joined = asyncio.ensure_future(client.sell_hold(1, time.time() + 30, "cd" * 16))
        await asyncio.sleep(0)  # both asked: the first leads, the second joined its batch
        leader.cancel()
        with pytest.raises(VacancyUnavailable, match="abandoned"):
            await joined
        with pytest.raises(asyncio.CancelledError):
            await leader
        assert (await client.stock()).sold == 0  # never sent
