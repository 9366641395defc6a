"""Vacancy's HTTP endpoints: thin translations between JSON and VacancyService."""

from __future__ import annotations

import logging
from typing import Any

from ticketsys.api import readers, schemas
from ticketsys.domain.errors import SoldOut
from ticketsys.domain.models import MAX_STOCK, Hold
from ticketsys.domain.wire import hold_json, stock_json
from ticketsys.http.application import ErrorTable, translate
from ticketsys.http.auth import require_bearer
from ticketsys.http.errors import INTERNAL, HTTPError, error_payload
from ticketsys.http.models import Request, Response
from ticketsys.http.requests import json_object
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.vacancy.service import VacancyService

log = logging.getLogger("ticketsys.vacancy")

_BODY_ERRORS = {status: schemas.ERROR for status in (400, 401, 413, 415, 422)}
_HOLD_ERRORS = {401: schemas.ERROR, 404: schemas.ERROR, 409: schemas.ERROR}


def _change(remaining: int, success: bool = True) -> Response:
    return json_response({"success": success, "remaining": remaining})


def vacancy_routes(
    service: VacancyService,
    *,
    internal: bool = True,
    token: str | None = None,
    errors: ErrorTable | None = None,
) -> list[Route]:
    """``internal`` adds the stock, holds, sales, reserve, release and restock endpoints that
    only Ticket and operators call (never on the monolith's public surface). With ``token``,
    they require it as a bearer token; restock always requires one. ``errors``: the app's
    table, for the answers of each sale in a batch."""
    secret = token.encode() if token else None
    table: ErrorTable = errors or {}

    def authorise(request: Request) -> None:
        if secret is not None:
            require_bearer(request, secret)

    async def available(request: Request) -> Response:
        return json_response({"available": await service.available()})

    async def stock(request: Request) -> Response:
        return json_response({**stock_json(await service.stock()), "store_id": service.store_id})

    async def create_hold(request: Request) -> Response:
        authorise(request)
        key = readers.idempotency_key(request)  # checked either way; a sale's key is its order
        data = json_object(request)  # read once, for either kind of body
        sale = readers.sale_fields(data, service.max_qty)
        if sale is None:
            qty, ttl = readers.hold_fields(data, service.max_qty)
            hold = await service.hold(qty, ttl, key)
        else:
            hold = await service.sell_hold(*sale)
        return json_response({**hold_json(hold), "store_id": service.store_id}, 201)

    async def sell(request: Request) -> Response:
        """A batch of sales (Ticket's purchases of one tick): one request, one commit, each
        sale answered in its place as ``create_hold`` would have answered it alone."""
        authorise(request)
        sales, ids = readers.read_sales(request)
        if ids:  # whose purchases these are, on the batch's access-log line
            request.log_fields = {"request_ids": ids}
        answers = await service.sell_holds(sales)
        return json_response({"store_id": service.store_id, "results": [sale_result(a) for a in answers]})

    def sale_result(answer: Hold | Exception) -> dict[str, Any]:
        if isinstance(answer, Hold):
            return {"status": 201, **hold_json(answer)}
        error = translate(table, answer)
        if error is None:
            log.error("a sale failed", exc_info=answer)
            error = INTERNAL
        return {"status": error.status, **error_payload(error)}

    async def get_hold(request: Request) -> Response:
        authorise(request)
        return json_response(hold_json(await service.get_hold(readers.read_hold_id(request))))

    async def confirm(request: Request) -> Response:
        authorise(request)
        held = readers.read_hold_id(request)
        return json_response(hold_json(await service.confirm(held, readers.read_order_id(request))))

    async def release_hold(request: Request) -> Response:
        authorise(request)
        return _change(await service.release(readers.read_hold_id(request)))

    async def reserve(request: Request) -> Response:
        authorise(request)
        try:
            return _change(await service.reserve(readers.read_qty(request, service.max_qty)))
        except SoldOut as exc:  # the seed's contract: 200 with success false, nothing taken
            return _change(exc.remaining, success=False)

    async def release(request: Request) -> Response:
        authorise(request)
        return _change(await service.unreserve(readers.read_qty(request, MAX_STOCK)))

    async def restock(request: Request) -> Response:
        if secret is None:
            raise HTTPError(403, "restock_disabled", "restocking over HTTP needs SERVICE_TOKEN to be set")
        require_bearer(request, secret)
        return _change(await service.restock(readers.read_qty(request, MAX_STOCK)))

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
    if not internal:
        return routes
    guarded = (schemas.SERVICE_TOKEN,) if secret is not None else ()
    internal_call: dict[str, Any] = {"tags": ("vacancy",), "security": guarded}
    hold_path: dict[str, Any] = {"parameters": (schemas.HOLD_ID,), **internal_call}
    return [
        *routes,
        Route(
            "/api/v1/stock",
            frozenset({"GET"}),
            stock,
            name="stock",
            summary="The stock's parts: available + held + sold == capacity, and the store's id",
            responses={200: schemas.STOCK},
            tags=("vacancy",),
        ),
        Route(
            "/api/v1/holds",
            frozenset({"POST"}),
            create_hold,
            name="create_hold",
            summary="Hold qty tickets for ttl seconds, or sell them at once to an order (internal: "
            "Ticket's holds and purchases)",
            request_schema=schemas.sale_body(service.max_qty, service.holds.max_ttl),
            responses={201: schemas.VACANCY_HOLD, 409: schemas.ERROR, **_BODY_ERRORS},
            parameters=(schemas.IDEMPOTENCY_KEY,),
            **internal_call,
        ),
        Route(
            "/api/v1/sales",
            frozenset({"POST"}),
            sell,
            name="sell",
            summary="Sell holds at once to orders, up to 64 in one request, committed together, each "
            "answered on its own (internal: Ticket's purchases of one event-loop tick)",
            request_schema=schemas.sales_body(),
            responses={200: schemas.SALES, **_BODY_ERRORS},
            **internal_call,
        ),
        Route(
            "/api/v1/holds/{hold_id}",
            frozenset({"GET"}),
            get_hold,
            name="get_hold",
            summary="One hold (internal)",
            responses={200: schemas.VACANCY_HOLD, **_HOLD_ERRORS},
            **hold_path,
        ),
        Route(
            "/api/v1/holds/{hold_id}/confirm",
            frozenset({"POST"}),
            confirm,
            name="confirm_hold",
            summary="Sell a held hold to an order (internal: Ticket, once the order is recorded)",
            request_schema=schemas.CONFIRM_BODY,
            responses={200: schemas.VACANCY_HOLD, **_HOLD_ERRORS, **_BODY_ERRORS},
            **hold_path,
        ),
        Route(
            "/api/v1/holds/{hold_id}",
            frozenset({"DELETE"}),
            release_hold,
            name="release_hold",
            summary="Put a held hold back on sale (internal)",
            responses={200: schemas.RELEASED, **_HOLD_ERRORS},
            **hold_path,
        ),
        Route(
            "/api/v1/reserve",
            frozenset({"POST"}),
            reserve,
            name="reserve",
            summary="Sell qty tickets outside any order, all or nothing (internal: operators)",
            request_schema=schemas.qty_body(service.max_qty),
            responses={200: schemas.RESERVATION, **_BODY_ERRORS},
            **internal_call,
        ),
        Route(
            "/api/v1/release",
            frozenset({"POST"}),
            release,
            name="release",
            summary="Put qty tickets sold outside holds back on sale (internal: operators)",
            request_schema=schemas.qty_body(MAX_STOCK),
            responses={200: schemas.RESERVATION, 409: schemas.ERROR, **_BODY_ERRORS},
            **internal_call,
        ),
        Route(
            "/api/v1/restock",
            frozenset({"POST"}),
            restock,
            name="restock",
            summary="Put qty more tickets on sale (operators; needs SERVICE_TOKEN)",
            request_schema=schemas.qty_body(MAX_STOCK),
            responses={200: schemas.RESERVATION, 403: schemas.ERROR, **_BODY_ERRORS},
            tags=("vacancy",),
            security=(schemas.SERVICE_TOKEN,),
        ),
    ]
