"""Ticket's HTTP endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

from ticketsys.domain import schemas
from ticketsys.domain.models import PURCHASE_MESSAGE, Order
from ticketsys.http.errors import HTTPError
from ticketsys.http.models import Request, Response
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.ticket.service import TicketService

_PURCHASE_ERRORS = {status: schemas.ERROR for status in (400, 409, 413, 415, 422, 503)}


def _order_json(order: Order) -> dict[str, object]:
    created = datetime.fromtimestamp(order.created_at, UTC).isoformat(timespec="milliseconds")
    return {"order_id": order.order_id, "qty": order.qty, "created_at": created, "remaining": order.remaining}


def ticket_routes(service: TicketService, *, proxy_available: bool) -> list[Route]:
    """``proxy_available`` serves ``GET /api/v1/available`` by asking Vacancy (the ticket
    service alone); the monolith already has Vacancy's own route for it."""

    async def purchase(request: Request) -> Response:
        qty = schemas.read_qty(request, service.max_qty)
        order = await service.purchase(qty, schemas.idempotency_key(request))
        return json_response(
            {
                "success": True,
                "remaining": order.remaining,
                "message": PURCHASE_MESSAGE,
                "qty": order.qty,
                "order_id": order.order_id,
            }
        )

    async def order(request: Request) -> Response:
        found = await service.order(request.path_params["order_id"])
        if found is None:
            raise HTTPError(404, "order_not_found", "no order with this id")
        return json_response(_order_json(found))

    async def available(request: Request) -> Response:
        return json_response({"available": await service.available()})

    routes = [
        Route(
            "/api/v1/purchase",
            frozenset({"POST"}),
            purchase,
            name="purchase",
            summary="Buy qty tickets",
            request_schema=schemas.qty_body(service.max_qty),
            responses={200: schemas.PURCHASE, **_PURCHASE_ERRORS},
            parameters=(schemas.IDEMPOTENCY_KEY,),
            tags=("ticket",),
        ),
        Route(
            "/api/v1/orders/{order_id}",
            frozenset({"GET"}),
            order,
            name="order",
            summary="One order",
            responses={200: schemas.ORDER, 404: schemas.ERROR},
            tags=("ticket",),
        ),
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
