"""Strict readers for a request's JSON body.

Everything here is sans-IO: the body has already been read (within the size limit) by the
ASGI adapter or the embedded server, so parsing and validation are plain functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ticketsys.http.errors import HTTPError
from ticketsys.http.models import Request


def _is_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 415 if declared as something else, 400 if not JSON at all,
    422 if JSON but not an object. A missing Content-Type is tolerated (curl without -H)."""
    content_type = request.header(b"content-type")
    if content_type is not None and not _is_json(content_type):
        raise HTTPError(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        # orjson < 3.10 refuses integers beyond 64 bits (newer ones decode them as floats,
        # which int_field then refuses): valid JSON either way, so 422 rather than 400.
        if "exceeds 64-bit range" in str(exc):
            raise HTTPError(422, "invalid_field", "a number in the body is out of range") from None
        raise HTTPError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HTTPError(422, "invalid_body", "request body must be a JSON object")
    return data


def int_field(data: Mapping[str, Any], name: str, *, minimum: int, maximum: int) -> int:
    """A required integer field within ``[minimum, maximum]``.

    "Integer" as JSON Schema means it (and as /openapi.json publishes it): a number with no
    fractional part, so ``5.0`` is 5 while ``1.5`` is refused. JSON has no booleans-as-numbers
    and no numeric strings: ``true`` and ``"5"`` are refused, never coerced.
    """
    if name not in data:
        raise _invalid(name, f"'{name}' is required")
    value = data[name]
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise _invalid(name, f"'{name}' must be an integer, got {_json_type(value)}")
    if value < minimum:
        raise _invalid(name, f"'{name}' must be at least {minimum}, got {value}")
    if value > maximum:
        raise _invalid(name, f"'{name}' must be at most {maximum}, got {value}")
    return value


def _invalid(name: str, message: str) -> HTTPError:
    return HTTPError(422, "invalid_field", message, extra={"field": name})


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a non-integer number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
