"""RemoteVacancyClient against a real Vacancy server on loopback, with both HTTP clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from ticketsys.apps.vacancy import build_vacancy
from ticketsys.config import Settings
from ticketsys.domain.errors import InvalidQuantity, VacancyUnavailable
from ticketsys.domain.models import Reservation
from ticketsys.http.client import CLIENTS, ClientOptions
from ticketsys.http.server import Server, ServerLimits
from ticketsys.ticket.clients import RemoteVacancyClient

KINDS = [pytest.param(kind, id=kind) for kind in CLIENTS]


def _with_vacancy(kind: str, test: Callable[[RemoteVacancyClient], Awaitable[None]]) -> None:
    async def main() -> None:
        server = Server(
            build_vacancy(Settings(initial_stock=100, max_qty=10, stock_store="memory")),
            "127.0.0.1",
            0,
            ServerLimits(),
        )
        await server.start()
        url = f"http://127.0.0.1:{server.port}"
        client = RemoteVacancyClient(lambda: CLIENTS[kind](ClientOptions(url)), url)
        await client.open()
        try:
            await test(client)
        finally:
            await client.close()
            await server.shutdown()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_reserve_release_available(kind: str) -> None:
    async def test(client: RemoteVacancyClient) -> None:
        assert await client.available() == 100
        assert await client.reserve(7) == Reservation(True, 93)
        assert await client.reserve(10) == Reservation(True, 83)
        assert await client.release(7) == Reservation(True, 90)
        assert await client.ready()

    _with_vacancy(kind, test)


@pytest.mark.parametrize("kind", KINDS)
def test_not_enough_stock_is_an_unsuccessful_reservation(kind: str) -> None:
    async def test(client: RemoteVacancyClient) -> None:
        for _ in range(10):
            await client.reserve(10)
        assert await client.reserve(1) == Reservation(False, 0)

    _with_vacancy(kind, test)


@pytest.mark.parametrize("kind", KINDS)
def test_quantity_refused_by_vacancy(kind: str) -> None:
    async def test(client: RemoteVacancyClient) -> None:
        with pytest.raises(InvalidQuantity, match="at most 10"):
            await client.reserve(11)

    _with_vacancy(kind, test)


@pytest.mark.parametrize("kind", KINDS)
def test_dead_vacancy_is_unavailable(kind: str) -> None:
    async def main() -> None:
        url = "http://127.0.0.1:9"  # discard port: nothing listens
        client = RemoteVacancyClient(lambda: CLIENTS[kind](ClientOptions(url)), url)
        await client.open()
        try:
            with pytest.raises(VacancyUnavailable, match="unreachable"):
                await client.reserve(1)
            assert not await client.ready()
        finally:
            await client.close()

    asyncio.run(main())


def test_closed_client_is_unavailable() -> None:
    client = RemoteVacancyClient(lambda: CLIENTS["pool"](ClientOptions("http://127.0.0.1:9")), "x")
    with pytest.raises(VacancyUnavailable, match="not open"):
        asyncio.run(client.reserve(1))
