"""A prototype of the alternative issue 13 names for Ticket -> Vacancy: a batch endpoint.

Not part of ticketsys. It exists so that ``test_micro.py`` can measure it beside pipelining in
the same run (benchmarks/README.md, "The pool", says which measures better and why). Ticket's
side gathers the reserves of one event-loop tick into one ``POST /api/v1/reserve-batch``
whose body lists them (``[{"qty": 1, "key": "call:…"}, …]``); Vacancy reserves each in
order and answers the list of results. What a fair measurement needs: each item checked
as the reserve endpoint checks its request (``int_field`` for qty, the Idempotency-Key's
character rule for the key), one reserve per item through ``VacancyService``. Not what a
real endpoint would need as well (per-item errors, a size limit, OpenAPI, auth).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson

from ticketsys.apps.common import assemble
from ticketsys.apps.stores import stock_store
from ticketsys.config import Settings
from ticketsys.domain.models import CALL_KEY_PREFIX, Reservation
from ticketsys.http.application import App
from ticketsys.http.client import HttpClient
from ticketsys.http.requests import Request, int_field
from ticketsys.http.responses import Response, json_response
from ticketsys.http.routing import Route
from ticketsys.vacancy.routes import vacancy_routes
from ticketsys.vacancy.service import VacancyService

PATH = "/api/v1/reserve-batch"


def build_batch_vacancy(settings: Settings) -> App:
    """Vacancy as ``build_vacancy`` makes it, plus the batch route."""
    stock = stock_store(settings)
    service = VacancyService(stock, settings.max_qty)

    async def reserve_batch(request: Request) -> Response:
        items = orjson.loads(request.body)
        results = []
        for item in items:
            qty = int_field(item, "qty", minimum=1, maximum=service.max_qty)
            key = item["key"].encode()
            assert 1 <= len(key) <= 255 and all(0x21 <= byte <= 0x7E for byte in key)
            reservation = await service.reserve(qty, key.decode())
            results.append({"success": reservation.success, "remaining": reservation.remaining})
        return json_response(results)

    batch = Route(PATH, frozenset({"POST"}), reserve_batch, name="reserve_batch")
    return assemble(
        "vacancy",
        "microservices",
        [*vacancy_routes(service), batch],
        settings,
        on_startup=[stock.open],
        on_shutdown=[stock.close],
    )


class BatchReserver:
    """Ticket's side: the reserves asked for in one tick leave as one batch request."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self._pending: list[tuple[int, str, asyncio.Future[Reservation]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def reserve(self, qty: int, key: str | None = None) -> Reservation:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reservation] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((qty, key or CALL_KEY_PREFIX + os.urandom(12).hex(), future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[int, str, asyncio.Future[Reservation]]]) -> None:
        body = orjson.dumps([{"qty": qty, "key": key} for qty, key, _ in batch])
        try:
            response = await self.http.request("POST", PATH, body, idempotent=True)
            results: list[dict[str, Any]] = orjson.loads(response.body)
        except Exception as exc:
            for _, _, future in batch:
                future.set_exception(exc)
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            future.set_result(Reservation(bool(result["success"]), int(result["remaining"])))
