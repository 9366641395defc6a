"""The JSON bodies of the API: their schemas (for /openapi.json) and the strict reader of the
one request body both services accept, ``{"qty": n}``."""

from __future__ import annotations

from typing import Any

from ticketsys.domain.wire import is_id
from ticketsys.http.errors import HTTPError
from ticketsys.http.requests import Request, int_field, json_object


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

_TIME = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC"}
_ID = {"type": "string", "pattern": "^[0-9a-f]{16,64}$"}
_STATES = ["held", "confirmed", "released", "expired"]

STOCK: dict[str, Any] = {
    "type": "object",
    "required": ["available", "held", "sold", "capacity"],
    "description": "available + held + sold == capacity",
    "properties": {
        name: {"type": "integer", "minimum": 0} for name in ("available", "held", "sold", "capacity")
    },
}


def hold_body(maximum: int, max_ttl: float) -> dict[str, Any]:
    """The schema of ``{"qty": n, "ttl": seconds}``."""
    body = qty_body(maximum)
    body["properties"]["ttl"] = {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": max_ttl,
        "description": "seconds the tickets are held (default HOLD_TTL)",
    }
    return body


HOLD_CREATED: dict[str, Any] = {
    "type": "object",
    "required": ["hold_id", "qty", "expires_at", "remaining"],
    "properties": {
        "hold_id": _ID,
        "qty": {"type": "integer", "minimum": 1},
        "expires_at": _TIME,
        "remaining": {"type": "integer", "minimum": 0, "description": "available right after"},
    },
}

HOLD: dict[str, Any] = {
    "type": "object",
    "required": ["hold_id", "qty", "expires_at", "state"],
    "properties": {
        "hold_id": _ID,
        "qty": {"type": "integer", "minimum": 1},
        "expires_at": _TIME,
        "state": {"enum": _STATES},
        "order_id": {**_ID, "description": "the order a confirmed hold was sold to"},
    },
}

VACANCY_HOLD: dict[str, Any] = {
    "type": "object",
    "required": ["hold_id", "qty", "expires_at", "state", "remaining"],
    "properties": {
        **HOLD["properties"],
        "remaining": {"type": "integer", "minimum": 0},
        "store_id": {"type": "string"},
    },
}

CONFIRM_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["order_id"],
    "properties": {"order_id": {**_ID, "description": "the order the tickets are sold to"}},
}

RELEASED: dict[str, Any] = {
    "type": "object",
    "required": ["success", "remaining"],
    "properties": {"success": {"const": True}, "remaining": {"type": "integer", "minimum": 0}},
}

HOLD_ID: dict[str, Any] = {
    "name": "hold_id",
    "in": "path",
    "required": True,
    "description": "The hold's id, as its creation answered it",
    "schema": _ID,
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


def read_qty(request: Request, max_qty: int) -> int:
    return int_field(json_object(request), "qty", minimum=1, maximum=max_qty)


def read_hold(request: Request, max_qty: int) -> tuple[int, float | None]:
    """``{"qty": n, "ttl": seconds?}``: the seconds' range is the domain's (HoldRules)."""
    data = json_object(request)
    qty = int_field(data, "qty", minimum=1, maximum=max_qty)
    ttl = data.get("ttl")
    if "ttl" in data and type(ttl) not in (int, float):  # null is not a number either
        raise HTTPError(422, "invalid_field", "'ttl' must be a number of seconds", extra={"field": "ttl"})
    return qty, ttl


def read_order_id(request: Request) -> str:
    order_id = json_object(request).get("order_id")
    if not isinstance(order_id, str) or not is_id(order_id):
        raise HTTPError(422, "invalid_field", "'order_id' must be an order id", extra={"field": "order_id"})
    return order_id


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
