"""Ticket's HTTP endpoints: purchases, holds, orders and the stock (public)."""

from __future__ import annotations

from ticketsys.api import readers, schemas
from ticketsys.domain.models import PURCHASE_MESSAGE, Order
from ticketsys.domain.wire import order_json, rfc3339, stock_json
from ticketsys.http.errors import HTTPError
from ticketsys.http.models import Request, Response
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.ticket.service import TicketService

_BODY_ERRORS = {status: schemas.ERROR for status in (400, 409, 413, 415, 422, 503)}
_HOLD_ERRORS = {status: schemas.ERROR for status in (404, 409, 422, 503)}


def _sold(order: Order) -> Response:
    return json_response(
        {
            "success": True,
            "remaining": order.remaining,
            "message": PURCHASE_MESSAGE,
            "qty": order.qty,
            "order_id": order.order_id,
        }
    )


def ticket_routes(service: TicketService, *, proxy_available: bool) -> list[Route]:
    """``proxy_available`` serves ``GET /api/v1/available`` by asking Vacancy (the ticket
    service alone); the monolith already has Vacancy's own route for it."""

    async def purchase(request: Request) -> Response:
        qty = readers.read_qty(request, service.max_qty)
        return _sold(await service.purchase(qty, readers.idempotency_key(request)))

    async def order(request: Request) -> Response:
        found = await service.order(request.path_params["order_id"])
        if found is None:
            raise HTTPError(404, "order_not_found", "no order with this id")
        return json_response(order_json(found))

    async def available(request: Request) -> Response:
        return json_response({"available": await service.available()})

    async def stock(request: Request) -> Response:
        return json_response(stock_json(await service.stock()))

    async def create_hold(request: Request) -> Response:
        qty, ttl = readers.read_hold(request, service.max_qty)
        hold = await service.create_hold(qty, ttl, readers.idempotency_key(request))
        body = {"hold_id": hold.hold_id, "qty": hold.qty, "expires_at": rfc3339(hold.expires_at)}
        return json_response({**body, "remaining": hold.remaining}, 201)

    async def get_hold(request: Request) -> Response:
        hold = await service.get_hold(readers.read_hold_id(request))
        body = {
            "hold_id": hold.hold_id,
            "qty": hold.qty,
            "expires_at": rfc3339(hold.expires_at),
            "state": hold.state.value,
        }
        return json_response(body if hold.order_id is None else {**body, "order_id": hold.order_id})

    async def confirm(request: Request) -> Response:
        return _sold(await service.confirm(readers.read_hold_id(request), readers.idempotency_key(request)))

    async def release(request: Request) -> Response:
        remaining = await service.release(readers.read_hold_id(request))
        return json_response({"success": True, "remaining": remaining})

    hold_path = {"parameters": (schemas.HOLD_ID,), "tags": ("holds",)}
    routes = [
        Route(
            "/api/v1/purchase",
            frozenset({"POST"}),
            purchase,
            name="purchase",
            summary="Buy qty tickets",
            description="All or nothing: 409 sold_out takes nothing. With an Idempotency-Key, a retry "
            "(same key, same body) answers the first answer and buys nothing more.",
            request_schema=schemas.qty_body(service.max_qty),
            responses={200: schemas.PURCHASE, **_BODY_ERRORS},
            parameters=(schemas.IDEMPOTENCY_KEY,),
            tags=("ticket",),
        ),
        Route(
            "/api/v1/orders/{order_id}",
            frozenset({"GET"}),
            order,
            name="order",
            summary="One order",
            responses={200: schemas.ORDER, 404: schemas.ERROR, 503: schemas.ERROR},
            parameters=(schemas.ORDER_ID,),
            tags=("ticket",),
        ),
        Route(
            "/api/v1/stock",
            frozenset({"GET"}),
            stock,
            name="stock",
            summary="The stock's parts: available + held + sold == capacity",
            responses={200: schemas.STOCK, 503: schemas.ERROR},
            tags=("ticket",),
        ),
        Route(
            "/api/v1/holds",
            frozenset({"POST"}),
            create_hold,
            name="create_hold",
            summary="Hold qty tickets for ttl seconds (default HOLD_TTL), to confirm or release",
            request_schema=schemas.hold_body(service.max_qty, service.holds.max_ttl),
            responses={201: schemas.HOLD_CREATED, **_BODY_ERRORS},
            parameters=(schemas.IDEMPOTENCY_KEY,),
            tags=("holds",),
        ),
        Route(
            "/api/v1/holds/{hold_id}",
            frozenset({"GET"}),
            get_hold,
            name="get_hold",
            summary="One hold: held, confirmed, released or expired",
            responses={200: schemas.HOLD, **_HOLD_ERRORS},
            **hold_path,  # type: ignore[arg-type]
        ),
        Route(
            "/api/v1/holds/{hold_id}/confirm",
            frozenset({"POST"}),
            confirm,
            name="confirm_hold",
            summary="Buy the held tickets: answers as a purchase; confirming again answers the same order",
            responses={200: schemas.PURCHASE, **_HOLD_ERRORS},
            parameters=(schemas.HOLD_ID, schemas.IDEMPOTENCY_KEY),
            tags=("holds",),
        ),
        Route(
            "/api/v1/holds/{hold_id}",
            frozenset({"DELETE"}),
            release,
            name="release_hold",
            summary="Put the held tickets back on sale; repeating it changes nothing",
            responses={200: schemas.RELEASED, **_HOLD_ERRORS},
            **hold_path,  # type: ignore[arg-type]
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
