"""Vacancy's HTTP endpoints: thin translations between JSON and VacancyService."""

from __future__ import annotations

from ticketsys.domain import schemas
from ticketsys.domain.models import MAX_STOCK, Reservation
from ticketsys.http.auth import require_bearer
from ticketsys.http.errors import HTTPError
from ticketsys.http.models import Request, Response
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.vacancy.service import VacancyService

_QTY_ERRORS = {status: schemas.ERROR for status in (400, 401, 413, 415, 422)}


def _reservation(reservation: Reservation) -> Response:
    return json_response({"success": reservation.success, "remaining": reservation.remaining})


def vacancy_routes(
    service: VacancyService, *, internal: bool = True, token: str | None = None
) -> list[Route]:
    """``internal`` adds reserve, release, cancel and restock, which only Ticket and operators call
    (never on the monolith's public surface). With ``token``, they require it as a bearer
    token; restock always requires one."""
    secret = token.encode() if token else None

    def authorise(request: Request) -> None:
        if secret is not None:
            require_bearer(request, secret)

    async def available(request: Request) -> Response:
        return json_response({"available": await service.available()})

    async def reserve(request: Request) -> Response:
        authorise(request)
        qty = schemas.read_qty(request, service.max_qty)
        return _reservation(await service.reserve(qty, schemas.idempotency_key(request)))

    async def release(request: Request) -> Response:
        authorise(request)
        qty = schemas.read_qty(request, MAX_STOCK)
        return _reservation(await service.release(qty, schemas.idempotency_key(request)))

    async def cancel(request: Request) -> Response:
        authorise(request)
        qty = schemas.read_qty(request, service.max_qty)
        key = schemas.idempotency_key(request)
        if key is None:
            raise HTTPError(422, "missing_idempotency_key", "name the reserve to undo by its Idempotency-Key")
        return _reservation(await service.cancel(qty, key))

    async def restock(request: Request) -> Response:
        if secret is None:
            raise HTTPError(403, "restock_disabled", "restocking over HTTP needs SERVICE_TOKEN to be set")
        require_bearer(request, secret)
        return _reservation(await service.restock(schemas.read_qty(request, MAX_STOCK)))

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
    internal_call = {"parameters": (schemas.IDEMPOTENCY_KEY,), "tags": ("vacancy",)}
    return [
        *routes,
        Route(
            "/api/v1/reserve",
            frozenset({"POST"}),
            reserve,
            name="reserve",
            summary="Take qty tickets, all or nothing (internal: called by Ticket)",
            request_schema=schemas.qty_body(service.max_qty),
            responses={200: schemas.RESERVATION, **_QTY_ERRORS},
            **internal_call,  # type: ignore[arg-type]
        ),
        Route(
            "/api/v1/release",
            frozenset({"POST"}),
            release,
            name="release",
            summary="Put qty reserved tickets back on sale (internal)",
            request_schema=schemas.qty_body(MAX_STOCK),
            responses={200: schemas.RESERVATION, 409: schemas.ERROR, **_QTY_ERRORS},
            **internal_call,  # type: ignore[arg-type]
        ),
        Route(
            "/api/v1/cancel",
            frozenset({"POST"}),
            cancel,
            name="cancel",
            summary="Undo the reserve made with this Idempotency-Key and forget the key "
            "(internal: Ticket, when it cannot record the order); repeating it is harmless",
            request_schema=schemas.qty_body(service.max_qty),
            responses={200: schemas.RESERVATION, **_QTY_ERRORS},
            parameters=(schemas.RESERVATION_KEY,),
            tags=("vacancy",),
        ),
        Route(
            "/api/v1/restock",
            frozenset({"POST"}),
            restock,
            name="restock",
            summary="Put qty more tickets on sale (operators; needs SERVICE_TOKEN)",
            request_schema=schemas.qty_body(MAX_STOCK),
            responses={200: schemas.RESERVATION, 403: schemas.ERROR, **_QTY_ERRORS},
            tags=("vacancy",),
        ),
    ]
