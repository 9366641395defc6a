"""Vacancy's HTTP endpoints: thin translations between JSON and VacancyService."""

from __future__ import annotations

from ticketsys.domain import schemas
from ticketsys.http.requests import Request
from ticketsys.http.responses import Response, json_response
from ticketsys.http.routing import Route
from ticketsys.vacancy.service import VacancyService

_QTY_ERRORS = {400: schemas.ERROR, 413: schemas.ERROR, 415: schemas.ERROR, 422: schemas.ERROR}


def vacancy_routes(service: VacancyService, *, internal: bool = True) -> list[Route]:
    """``internal`` adds reserve/release, which only Ticket should call (never the monolith's
    public surface: there the in-process client calls the service directly)."""

    async def available(request: Request) -> Response:
        return json_response({"available": await service.available()})

    async def reserve(request: Request) -> Response:
        reservation = await service.reserve(schemas.read_qty(request, service.max_qty))
        return json_response({"success": reservation.success, "remaining": reservation.remaining})

    async def release(request: Request) -> Response:
        reservation = await service.release(schemas.read_qty(request, service.stock.capacity or 1))
        return json_response({"success": reservation.success, "remaining": reservation.remaining})

    routes = [
        Route(
            "/api/v1/available",
            frozenset({"GET"}),
            available,
            name="available",
            summary="Tickets left",
            responses={200: schemas.AVAILABLE},
            tags=("vacancy",),
        )
    ]
    if internal:
        routes += [
            Route(
                "/api/v1/reserve",
                frozenset({"POST"}),
                reserve,
                name="reserve",
                summary="Take qty tickets, all or nothing (internal: called by Ticket)",
                request_schema=schemas.QTY_BODY,
                responses={200: schemas.RESERVATION, **_QTY_ERRORS},
                tags=("vacancy",),
            ),
            Route(
                "/api/v1/release",
                frozenset({"POST"}),
                release,
                name="release",
                summary="Put qty reserved tickets back on sale (internal)",
                request_schema=schemas.QTY_BODY,
                responses={200: schemas.RESERVATION, 409: schemas.ERROR, **_QTY_ERRORS},
                tags=("vacancy",),
            ),
        ]
    return routes
