"""The JSON bodies of the API: their schemas (for /openapi.json) and the strict reader of the
one request body both services accept, ``{"qty": n}``."""

from __future__ import annotations

from typing import Any

from ticketsys.http.errors import HTTPError
from ticketsys.http.requests import Request, int_field, json_object


def qty_body(maximum: int) -> dict[str, Any]:
    """The schema of ``{"qty": n}`` with 1 <= n <= ``maximum``."""
    return {
        "type": "object",
        "required": ["qty"],
        "properties": {
            "qty": {
                "type": "integer",
                "minimum": 1,
                "maximum": maximum,
                "description": f"how many tickets, 1 to {maximum}",
            }
        },
    }


# Titled schemas are published once under components/schemas and referenced (openapi.py).
ERROR: dict[str, Any] = {
    "title": "Error",
    "description": "Every error answer: a machine-readable code and a message for people.",
    "type": "object",
    "required": ["success", "error", "message"],
    "properties": {
        "success": {"const": False},
        "error": {"type": "string", "description": "machine-readable code, e.g. sold_out"},
        "message": {"type": "string", "description": "what went wrong, for people"},
        "remaining": {"type": "integer", "minimum": 0, "description": "tickets left (sold_out)"},
        "field": {"type": "string", "description": "the field that was refused (invalid_field)"},
    },
}

AVAILABLE: dict[str, Any] = {
    "title": "Available",
    "type": "object",
    "required": ["available"],
    "properties": {"available": {"type": "integer", "minimum": 0, "description": "tickets left on sale"}},
}

RESERVATION: dict[str, Any] = {
    "title": "Reservation",
    "type": "object",
    "required": ["success", "remaining"],
    "properties": {
        "success": {"type": "boolean", "description": "whether the stock changed as asked"},
        "remaining": {"type": "integer", "minimum": 0, "description": "tickets left on sale after it"},
    },
}

PURCHASE: dict[str, Any] = {
    "title": "Purchase",
    "type": "object",
    "required": ["success", "remaining", "message", "qty", "order_id"],
    "properties": {
        "success": {"const": True},
        "remaining": {"type": "integer", "minimum": 0, "description": "tickets left right after this sale"},
        "message": {"type": "string", "description": '"Purchase successful!"'},
        "qty": {"type": "integer", "minimum": 1, "description": "tickets bought"},
        "order_id": {"type": "string", "description": "the order's id: GET /api/v1/orders/{order_id}"},
    },
}

ORDER: dict[str, Any] = {
    "title": "Order",
    "type": "object",
    "required": ["order_id", "qty", "created_at", "remaining"],
    "properties": {
        "order_id": {"type": "string", "description": "as the purchase answered"},
        "qty": {"type": "integer", "minimum": 1, "description": "tickets bought"},
        "created_at": {"type": "string", "format": "date-time", "description": "when it sold (UTC)"},
        "remaining": {"type": "integer", "minimum": 0, "description": "stock left right after"},
    },
}

ORDER_ID: dict[str, Any] = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "description": "The order_id a purchase answered.",
    "schema": {"type": "string"},
}

# Keys are opaque to us; the limits keep them cheap to store and safe to log.
MAX_KEY_LENGTH = 255

IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Repeat a request with the same key to get its first answer; nothing is taken twice.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[!-~]+$"},
}

RESERVATION_KEY: dict[str, Any] = {
    **IDEMPOTENCY_KEY,
    "required": True,
    "description": "The Idempotency-Key of the reserve to undo.",
}

# The security scheme of Vacancy's internal and operator endpoints (Route.security names it).
SERVICE_TOKEN = "serviceToken"
SECURITY_SCHEMES: dict[str, Any] = {
    SERVICE_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "SERVICE_TOKEN, sent as `Authorization: Bearer <token>`.",
    }
}


def read_qty(request: Request, max_qty: int) -> int:
    return int_field(json_object(request), "qty", minimum=1, maximum=max_qty)


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
