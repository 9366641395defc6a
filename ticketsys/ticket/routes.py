"""Ticket's HTTP endpoints."""

from __future__ import annotations

from ticketsys.domain import schemas
from ticketsys.http.requests import Request
from ticketsys.http.responses import Response, json_response
from ticketsys.http.routing import Route
from ticketsys.ticket.service import TicketService


def ticket_routes(service: TicketService, *, proxy_available: bool) -> list[Route]:
    """``proxy_available`` serves ``GET /api/v1/available`` by asking Vacancy (the ticket
    service alone); the monolith already has Vacancy's own route for it."""

    async def purchase(request: Request) -> Response:
        bought = await service.purchase(schemas.read_qty(request, service.max_qty))
        return json_response(
            {"success": True, "remaining": bought.remaining, "message": bought.message, "qty": bought.qty}
        )

    async def available(request: Request) -> Response:
        return json_response({"available": await service.available()})

    routes = [
        Route(
            "/api/v1/purchase",
            frozenset({"POST"}),
            purchase,
            name="purchase",
            summary="Buy qty tickets",
            request_schema=schemas.QTY_BODY,
            responses={
                200: schemas.PURCHASE,
                **{status: schemas.ERROR for status in (400, 409, 413, 415, 422, 503)},
            },
            tags=("ticket",),
        )
    ]
    if proxy_available:
        routes.append(
            Route(
                "/api/v1/available",
                frozenset({"GET"}),
                available,
                name="available",
                summary="Tickets left (asked of Vacancy)",
                responses={200: schemas.AVAILABLE, 503: schemas.ERROR},
                tags=("ticket",),
            )
        )
    return routes
