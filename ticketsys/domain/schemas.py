"""The JSON bodies of the API: their schemas (for /openapi.json) and the strict reader of the
one request body both services accept, ``{"qty": n}``."""

from __future__ import annotations

from typing import Any

from ticketsys.http.requests import Request, int_field, json_object

QTY_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["qty"],
    "properties": {"qty": {"type": "integer", "minimum": 1, "description": "tickets to take"}},
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
    "required": ["success", "remaining", "message", "qty"],
    "properties": {
        "success": {"const": True},
        "remaining": {"type": "integer", "minimum": 0},
        "message": {"type": "string"},
        "qty": {"type": "integer", "minimum": 1},
    },
}


def read_qty(request: Request, max_qty: int) -> int:
    return int_field(json_object(request), "qty", minimum=1, maximum=max_qty)
