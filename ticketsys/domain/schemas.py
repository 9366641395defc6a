"""The JSON bodies of the API: their schemas (for /openapi.json) and the strict reader of the
one request body both services accept, ``{"qty": n}``."""

from __future__ import annotations

from typing import Any

from ticketsys.http.errors import HTTPError
from ticketsys.http.models import Request
from ticketsys.http.requests import int_field, json_object


def qty_body(maximum: int) -> dict[str, Any]:
    """The schema of ``{"qty": n}`` with 1 <= n <= ``maximum``."""
    return {
        "type": "object",
        "required": ["qty"],
        "properties": {
            "qty": {"type": "integer", "minimum": 1, "maximum": maximum, "description": "tickets"}
        },
    }


ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error", "message"],
    "properties": {
        "success": {"const": False},
        "error": {"type": "string", "description": "machine-readable code"},
        "message": {"type": "string"},
        "remaining": {"type": "integer", "minimum": 0},
        "field": {"type": "string"},
    },
}

AVAILABLE: dict[str, Any] = {
    "type": "object",
    "required": ["available"],
    "properties": {"available": {"type": "integer", "minimum": 0}},
}

RESERVATION: dict[str, Any] = {
    "type": "object",
    "required": ["success", "remaining"],
    "properties": {"success": {"type": "boolean"}, "remaining": {"type": "integer", "minimum": 0}},
}

PURCHASE: dict[str, Any] = {
    "type": "object",
    "required": ["success", "remaining", "message", "qty", "order_id"],
    "properties": {
        "success": {"const": True},
        "remaining": {"type": "integer", "minimum": 0},
        "message": {"type": "string"},
        "qty": {"type": "integer", "minimum": 1},
        "order_id": {"type": "string"},
    },
}

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["order_id", "qty", "created_at", "remaining"],
    "properties": {
        "order_id": {"type": "string"},
        "qty": {"type": "integer", "minimum": 1},
        "created_at": {"type": "string", "format": "date-time"},
        "remaining": {"type": "integer", "minimum": 0, "description": "stock left right after"},
    },
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
