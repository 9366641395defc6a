"""``GET /status``: what an operator asks of a running process, as JSON.

Each app adds its parts (``Telemetry.status_parts``): the store's figures, the Vacancy replicas
Ticket uses. A part that fails (the store down) is reported in the answer, not as a 503: the
status page is most wanted exactly then.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from ticketsys import __version__
from ticketsys.api import schemas
from ticketsys.apps.telemetry import Telemetry
from ticketsys.config import Settings, StoreKind
from ticketsys.domain.errors import TicketsysError
from ticketsys.domain.models import Stock
from ticketsys.http.models import Request, Response
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.storage.sqlite.files import disk_bytes

StatusPart = Callable[[], Awaitable[dict[str, Any]]]


def status_route(telemetry: Telemetry, parts: list[StatusPart]) -> Route:
    async def status(request: Request) -> Response:
        body: dict[str, Any] = {
            "service": telemetry.service,
            "version": __version__,
            "mode": telemetry.mode,
            "pid": os.getpid(),
            "uptime_seconds": round(telemetry.uptime(), 3),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(telemetry.started_at)),
            "store": {"kind": telemetry.store},
            "connections": None if telemetry.connections is None else telemetry.connections(),
        }
        for part in parts:
            try:
                found = await part()
            except TicketsysError as exc:  # a store or Vacancy down: say so, answer the rest
                found = {"store": {"error": str(exc)}}
            for name, value in found.items():
                if isinstance(value, dict) and isinstance(body.get(name), dict):
                    body[name].update(value)
                else:
                    body[name] = value
        return json_response(body)

    return Route(
        "/status",
        frozenset({"GET"}),
        status,
        name="status",
        summary="Version, mode, uptime, the store's figures, Vacancy's replicas, connections",
        responses={200: schemas.STATUS},
        tags=("operations",),
    )


def store_status(
    settings: Settings,
    stock: Callable[[], Awaitable[Stock]] | None,
    counts: Iterable[Callable[[], dict[str, int]]] = (),
    files: Iterable[str] = (),
) -> StatusPart:
    """The store's figures: the stock's parts (where this process reads them), what its stores
    count cheaply (holds, orders, keys), the bytes its SQLite files take."""
    names, counters = tuple(files), tuple(counts)

    async def part() -> dict[str, Any]:
        figures: dict[str, Any] = {}
        for count in counters:
            for name, value in count().items():
                figures[name] = figures.get(name, 0) + value
        if settings.stock_store.kind is StoreKind.SQLITE and names:
            figures["bytes_on_disk"] = sum(disk_bytes(Path(settings.data_dir) / name) for name in names)
        if stock is not None:
            parts = await stock()
            figures.update(
                available=parts.available, held=parts.held, sold=parts.sold, capacity=parts.capacity
            )
        return {"store": figures}

    return part
