"""Readers of the requests both services accept: each returns a plain value or raises the
``HTTPError`` that answers the request (422 with the refused field)."""

from __future__ import annotations

from typing import Any

from ticketsys.api.schemas import MAX_KEY_LENGTH, MAX_SALES
from ticketsys.domain.errors import HoldNotFound
from ticketsys.domain.models import MAX_STOCK
from ticketsys.domain.wire import WireError, is_id, parse_rfc3339
from ticketsys.http import request_id
from ticketsys.http.errors import HTTPError
from ticketsys.http.models import Request
from ticketsys.http.requests import int_field, json_object


def read_qty(request: Request, max_qty: int) -> int:
    return int_field(json_object(request), "qty", minimum=1, maximum=max_qty)


def read_hold(request: Request, max_qty: int) -> tuple[int, float | None]:
    """``{"qty": n, "ttl": seconds?}``: the seconds' range is the domain's (HoldRules)."""
    return hold_fields(json_object(request), max_qty)


def hold_fields(data: dict[str, Any], max_qty: int) -> tuple[int, float | None]:
    """``read_hold`` on a body already read."""
    qty = int_field(data, "qty", minimum=1, maximum=max_qty)
    ttl = data.get("ttl")
    if "ttl" in data and type(ttl) not in (int, float):  # null is not a number either
        raise HTTPError(422, "invalid_field", "'ttl' must be a number of seconds", extra={"field": "ttl"})
    return qty, ttl


def sale_fields(data: dict[str, Any], max_qty: int) -> tuple[int, float, str] | None:
    """``{"qty": n, "expires_at": time, "order_id": id}``, a hold made sold at once (Ticket's
    purchases), or None for a plain hold's body (no ``order_id``)."""
    if "order_id" not in data:
        return None
    qty = int_field(data, "qty", minimum=1, maximum=max_qty)
    order_id = _order_id(data)
    try:
        expires_at = parse_rfc3339(data.get("expires_at"))
    except WireError:
        raise HTTPError(
            422, "invalid_field", "'expires_at' must be an RFC 3339 time", extra={"field": "expires_at"}
        ) from None
    return qty, expires_at, order_id


def read_sales(request: Request) -> tuple[list[tuple[int, float, str]], list[str]]:
    """``{"sales": [sale, ...]}``, 1 to ``MAX_SALES`` of ``sale_fields``' bodies, checked whole
    (422), and the request ids they name (a buyer's, which a sale may carry as
    ``request_id``: kept when it is one, left out otherwise, as ``X-Request-ID`` is). A
    quantity is bounded here only by the stock's limit: above Vacancy's MAX_QTY, a sale is
    refused on its own (``VacancyService.sell_holds``), not with the whole batch."""
    sales = json_object(request).get("sales")
    if not isinstance(sales, list) or not 1 <= len(sales) <= MAX_SALES:
        message = f"'sales' must be a list of 1 to {MAX_SALES} sales"
        raise HTTPError(422, "invalid_field", message, extra={"field": "sales"})
    read: list[tuple[int, float, str]] = []
    ids: list[str] = []
    for item in sales:
        if not isinstance(item, dict):
            raise HTTPError(422, "invalid_body", "each sale must be a JSON object")
        sale = sale_fields(item, MAX_STOCK)
        if sale is None:
            raise _order_id_error()
        read.append(sale)
        named = item.get("request_id")
        if isinstance(named, str) and request_id.accept(named.encode()) is not None:
            ids.append(named)
    return read, ids


def read_order_id(request: Request) -> str:
    return _order_id(json_object(request))


def _order_id(data: dict[str, Any]) -> str:
    order_id = data.get("order_id")
    if not isinstance(order_id, str) or not is_id(order_id):
        raise _order_id_error()
    return order_id


def _order_id_error() -> HTTPError:
    return HTTPError(422, "invalid_field", "'order_id' must be an order id", extra={"field": "order_id"})


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header: 1 to 255 visible ASCII characters, or absent."""
    raw = request.header(b"idempotency-key")
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not all(0x21 <= byte <= 0x7E for byte in raw):
        raise HTTPError(
            422,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters",
        )
    return raw.decode("ascii")


def read_hold_id(request: Request) -> str:
    """The path's hold id; one that cannot be an id is simply not found."""
    value = request.path_params["hold_id"]
    if not is_id(value):
        raise HoldNotFound(value)
    return value
