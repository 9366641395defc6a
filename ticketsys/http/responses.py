"""Responses as plain data, and the precomputed bytes the server writes for them."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from ticketsys.http.errors import HTTPError

JSON = b"application/json"
Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: Headers = ()


def json_response(payload: Any, status: int = 200, headers: Headers = ()) -> Response:
    return Response(status, orjson.dumps(payload), JSON, headers)


def error_payload(error: HTTPError) -> dict[str, object]:
    return {"success": False, "error": error.code, "message": error.message, **error.extra}


def error_response(error: HTTPError) -> Response:
    return Response(error.status, orjson.dumps(error_payload(error)), JSON, error.headers)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


# Status lines are rendered once: the hot path only looks them up.
STATUS_LINES: dict[int, bytes] = {
    int(status): b"HTTP/1.1 %d %s\r\n" % (int(status), _reason(int(status))) for status in HTTPStatus
}


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status
