"""The JSON Schemas of the API's bodies, parameters and security scheme (for /openapi.json)."""

from __future__ import annotations

from typing import Any

from ticketsys.domain.models import MAX_STOCK


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

_ID = {"type": "string", "pattern": "^[0-9a-f]{16,64}$"}
_HOLD_ID = {**_ID, "description": "unguessable: whoever holds it may confirm or release the hold"}
_EXPIRES = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339, UTC: the hold ends by itself then, unless confirmed or released",
}
_QTY = {"type": "integer", "minimum": 1, "description": "tickets"}
_STATE = {
    "enum": ["held", "confirmed", "released", "expired"],
    "description": "held until confirmed (sold), released, or past expires_at (expired)",
}

STOCK: dict[str, Any] = {
    "title": "Stock",
    "type": "object",
    "required": ["available", "held", "sold", "capacity"],
    "description": "The stock's parts: available + held + sold == capacity, always",
    "properties": {
        "available": {"type": "integer", "minimum": 0, "description": "on sale now"},
        "held": {"type": "integer", "minimum": 0, "description": "in holds that have not ended"},
        "sold": {"type": "integer", "minimum": 0, "description": "sold (orders, confirmed holds)"},
        "capacity": {"type": "integer", "minimum": 0, "description": "every ticket of the sale"},
    },
}


def sale_body(maximum: int, max_ttl: float) -> dict[str, Any]:
    """Vacancy's hold body: a plain hold, or one made sold at once to ``order_id`` while
    ``expires_at`` has not passed (Ticket's purchases; the order id is the sale's key)."""
    sale = _sale(maximum)
    plain = hold_body(maximum, max_ttl)
    plain["not"] = {"required": ["order_id"]}
    return {"oneOf": [plain, sale], "description": "a hold, or a hold sold at once to an order"}


# Sales in one ``POST /api/v1/sales``: a tick's purchases at Ticket under a heavy load (19 on
# average under wrk at 64 connections), well inside the body limit (~110 bytes each).
MAX_SALES = 64


def _sale(maximum: int) -> dict[str, Any]:
    sale = qty_body(maximum)
    sale["required"] = ["qty", "order_id", "expires_at"]
    sale["properties"]["order_id"] = {**_ID, "description": "sell the hold at once to this order"}
    sale["properties"]["expires_at"] = {**_EXPIRES, "description": "sell only until then"}
    return sale


def sales_body() -> dict[str, Any]:
    """Vacancy's batch of sales: each item as ``POST /api/v1/holds`` sells at once. A quantity
    above MAX_QTY is refused in that sale's result (422), not with the batch."""
    sale = _sale(MAX_STOCK)
    sale["properties"]["qty"]["description"] = "how many tickets: above MAX_QTY, this sale alone is refused"
    sale["properties"]["request_id"] = {
        "type": "string",
        "description": "the buyer's X-Request-ID (access log)",
    }
    return {
        "type": "object",
        "required": ["sales"],
        "properties": {
            "sales": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_SALES,
                "items": sale,
                "description": f"1 to {MAX_SALES} sales, each answered in its place",
            },
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


SALES: dict[str, Any] = {
    "title": "Sales",
    "type": "object",
    "required": ["store_id", "results"],
    "description": "Each sale's own answer, in the order asked: what POST /api/v1/holds would have "
    "answered it, its status in the object",
    "properties": {
        "store_id": {"type": "string", "description": "the stock store's identity"},
        "results": {
            "type": "array",
            "description": "one for each sale asked, in the same order",
            "items": {
                "type": "object",
                "required": ["status"],
                "description": "201: the hold sold to the order (VacancyHold's fields); any other "
                "status: that answer's error (Error's fields)",
                "properties": {"status": {"type": "integer", "description": "the sale's own HTTP status"}},
            },
        },
    },
}

HOLD_CREATED: dict[str, Any] = {
    "title": "HoldCreated",
    "type": "object",
    "required": ["hold_id", "qty", "expires_at", "remaining"],
    "properties": {
        "hold_id": _HOLD_ID,
        "qty": _QTY,
        "expires_at": _EXPIRES,
        "remaining": {"type": "integer", "minimum": 0, "description": "available right after the hold"},
    },
}

HOLD: dict[str, Any] = {
    "title": "Hold",
    "type": "object",
    "required": ["hold_id", "qty", "expires_at", "state"],
    "properties": {
        "hold_id": _HOLD_ID,
        "qty": _QTY,
        "expires_at": _EXPIRES,
        "state": _STATE,
        "order_id": {**_ID, "description": "the order a confirmed hold was sold to"},
    },
}

VACANCY_HOLD: dict[str, Any] = {
    "title": "VacancyHold",
    "type": "object",
    "required": ["hold_id", "qty", "expires_at", "state", "remaining"],
    "properties": {
        **HOLD["properties"],
        "remaining": {"type": "integer", "minimum": 0, "description": "available right after the hold"},
        "store_id": {
            "type": "string",
            "description": "the stock store's identity (made when it was created)",
        },
    },
}

CONFIRM_BODY: dict[str, Any] = {
    "title": "Confirm",
    "type": "object",
    "required": ["order_id"],
    "properties": {"order_id": {**_ID, "description": "the order the tickets are sold to"}},
}

RELEASED: dict[str, Any] = {
    "title": "Released",
    "type": "object",
    "required": ["success", "remaining"],
    "properties": {
        "success": {"const": True, "description": "the hold is not held (any more)"},
        "remaining": {"type": "integer", "minimum": 0, "description": "tickets on sale after it"},
    },
}

HOLD_ID: dict[str, Any] = {
    "name": "hold_id",
    "in": "path",
    "required": True,
    "description": "The hold's id, as its creation answered it",
    "schema": _ID,
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

# The security scheme of Vacancy's internal and operator endpoints (Route.security names it).
SERVICE_TOKEN = "serviceToken"
SECURITY_SCHEMES: dict[str, Any] = {
    SERVICE_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "SERVICE_TOKEN, sent as `Authorization: Bearer <token>`.",
    }
}


def _count(what: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "description": what}


STATUS: dict[str, Any] = {
    "title": "Status",
    "description": "What an operator asks of a running process; figures the store does not know are "
    "left out, and connections is null under a server other than the embedded one.",
    "type": "object",
    "required": ["service", "version", "mode", "pid", "uptime_seconds", "started_at", "store"],
    "properties": {
        "service": {"enum": ["monolith", "vacancy", "ticket"], "description": "which app this is"},
        "version": {"type": "string", "description": "ticketsys's version"},
        "mode": {"enum": ["monolith", "microservices"], "description": "the deployment mode"},
        "pid": {"type": "integer", "description": "the process answering (one of several workers?)"},
        "uptime_seconds": {"type": "number", "minimum": 0, "description": "seconds since start-up"},
        "started_at": {"type": "string", "format": "date-time", "description": "RFC 3339, UTC"},
        "store": {
            "type": "object",
            "description": "the store's kind and the figures this process can read of it",
            "required": ["kind"],
            "properties": {
                "kind": {"enum": ["memory", "sqlite", "redis"], "description": "STOCK_STORE's engine"},
                "available": _count("tickets on sale"),
                "held": _count("tickets in holds"),
                "sold": _count("tickets sold"),
                "capacity": _count("available + held + sold"),
                "holds": _count("holds ever made (SQLite) or kept (memory)"),
                "orders": _count("orders recorded"),
                "keys": _count("idempotency keys remembered (memory only: SQLite would scan)"),
                "bytes_on_disk": _count("the SQLite files' size, write-ahead log included"),
                "error": {"type": "string", "description": "why the figures could not be read"},
            },
        },
        "vacancy": {
            "type": "object",
            "description": "ticket only: the Vacancy replicas it sells through",
            "properties": {
                "transport": {"enum": ["http"], "description": "how Ticket reaches them"},
                "replicas": {
                    "type": "array",
                    "description": "each VACANCY_URL, up unless its last connect failed",
                    "items": {
                        "type": "object",
                        "required": ["url", "up"],
                        "properties": {"url": {"type": "string"}, "up": {"type": "boolean"}},
                    },
                },
            },
        },
        "connections": {
            "type": ["integer", "null"],
            "minimum": 0,
            "description": "client connections open (null: not known under this server)",
        },
    },
}
