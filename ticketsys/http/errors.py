"""The one exception type the toolkit turns into an HTTP answer, and that answer.

Domain code raises its own errors; the application maps those to ``HTTPError`` through an
error table given to ``App`` (see ``application.py``), so there is a single translation point.
The server raises ``HTTPError`` too, for what it refuses before any app sees a request (a
malformed or oversized request, a timeout), so every error on the wire has one JSON shape.
"""

from __future__ import annotations

import orjson

from ticketsys.http.models import JSON, Response


class HTTPError(Exception):
    """An error that already knows its status, machine-readable code and human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra or {}

    def __repr__(self) -> str:
        return f"<HTTPError {self.status} {self.code}: {self.message}>"


def error_payload(error: HTTPError) -> dict[str, object]:
    """The JSON object every error answer carries."""
    return {"success": False, "error": error.code, "message": error.message, **error.extra}


def error_response(error: HTTPError) -> Response:
    return Response(error.status, orjson.dumps(error_payload(error)), JSON, error.headers)


def payload_too_large(limit: int) -> HTTPError:
    return HTTPError(413, "payload_too_large", f"request body exceeds {limit} bytes")


# The answer to a bug, wherever it is caught (the app's catch-all, or the server's last resort
# for an app that raised): no detail of it, and never a traceback, goes on the wire.
INTERNAL = HTTPError(500, "internal_error", "internal server error")
INTERNAL_ERROR = error_response(INTERNAL)
