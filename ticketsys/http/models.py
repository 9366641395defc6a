"""What the framework and the server both speak: the request a handler is given, the response it
returns, the handler between them, and ASGI's callables for apps that are not ours.

The server (``http/server/``) and the framework (application, routing, requests, responses)
import this module and ``errors``; neither imports the other, so either can be replaced (our
apps run under hypercorn and uvicorn; the server runs any ASGI app).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

RawHeaders = list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]
Headers = tuple[tuple[bytes, bytes], ...]
JSON = b"application/json"

# The default limit of a request body, on the server and in the ASGI adapter alike: a purchase
# body is ~12 bytes; anything near 64 KiB is abuse, not a ticket order.
MAX_BODY_BYTES = 64 * 1024


class Request:
    __slots__ = (
        "body",
        "client",
        "headers",
        "id_header",
        "log_fields",
        "method",
        "path",
        "path_params",
        "query_string",
        "route",
    )

    def __init__(
        self,
        method: str,
        path: str,
        headers: RawHeaders = (),
        body: bytes = b"",
        query_string: bytes = b"",
        path_params: Mapping[str, str] | None = None,
        client: tuple[str, int] | None = None,
        id_header: bytes = b"",
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers  # names lower-cased, as ASGI requires
        self.body = body
        self.query_string = query_string
        self.path_params: Mapping[str, str] = path_params or {}
        self.client = client  # the peer's (host, port), when the server knows it (access log)
        # The request id's header line (http/request_id.py), which the answer carries whichever
        # handler made it: given where the request is built, written by the server.
        self.id_header = id_header
        # The template of the route that matched ("/api/v1/holds/{hold_id}"), set by the app
        # when one did: what a metric is labelled by, without matching the path again.
        self.route: str | None = None
        # What the handler adds to the request's access-log line (a batch: its sales' ids).
        self.log_fields: dict[str, Any] | None = None

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header; ``name`` must be lower-case."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path} body={len(self.body)}B>"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: Headers = ()


Handler = Callable[[Request], Awaitable[Response]]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@runtime_checkable
class DirectDispatch(Protocol):
    """An ASGI app that can also take ``Request`` objects directly, skipping the ASGI layer
    (same answers, less work per request). The server asks once, after the app's start-up."""

    def direct_handler(self) -> Handler | None:
        """The handler, or None if the app cannot take requests that way (yet)."""
        ...
