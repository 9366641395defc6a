"""RemoteVacancyClient against a real Vacancy server on loopback, with both HTTP clients, and
against a server that answers what Vacancy never would."""

from __future__ import annotations

import asyncio
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
from ticketsys.domain.models import HoldState
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
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        payload = orjson.dumps(
            body if not isinstance(body, dict) or "store_id" in body else {**body, "store_id": "d" * 24}
        )
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
        with pytest.raises(VacancyUnavailable):
            await client.hold(1, 30.0)
    finally:
        await client.close()
        server.close()
