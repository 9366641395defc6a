"""One request and its answer, in one of two ways.

``DirectCycle`` (SERVER_DISPATCH=direct, the default for our own apps) hands the app's
``Handler`` a ``Request`` and writes the ``Response`` it returns: no scope, no messages, about a
fifth less work per request. ``ASGICycle`` speaks ASGI 3 to any app: its scope, ``receive`` and
``send``, and the flags of the response (started, complete). The answers are the same bytes
either way (the contract suite runs against both).

Each cycle ends with ``keep_alive`` telling the connection whether it may go on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ticketsys.http import request_id
from ticketsys.http.errors import INTERNAL_ERROR
from ticketsys.http.models import ASGIApp, Handler, Request, Response, Scope
from ticketsys.http.server.incoming import Incoming, target

if TYPE_CHECKING:
    from ticketsys.http.server.protocol import HttpConnection

log = logging.getLogger("ticketsys.server")

_ASGI = {"version": "3.0", "spec_version": "2.3"}


class DirectCycle:
    __slots__ = ("conn", "handle", "http10", "keep_alive", "request")

    def __init__(self, conn: HttpConnection, incoming: Incoming, handle: Handler) -> None:
        _, path, query = target(incoming.url)
        self.conn = conn
        self.handle = handle
        self.request = Request(
            incoming.method,
            path,
            incoming.headers,
            incoming.body,
            query,
            None,
            conn.client_addr,
            incoming.id_header or next(request_id.fresh),
        )
        self.keep_alive = incoming.keep_alive
        self.http10 = incoming.http_version == "1.0"

    async def run(self) -> None:
        request = self.request
        conn = self.conn
        conn.id_slot.line = request.id_header  # for log lines, in the connection's context
        try:
            response = await self.handle(request)
        except Exception:  # App.handle answers every error itself; this is a last resort
            log.exception("application error in %s %s", request.method, request.path)
            response = INTERNAL_ERROR
        self.keep_alive = conn.write(
            response, self.keep_alive, request.method == "HEAD", None, self.http10, request.id_header
        )
        flow = conn.flow
        if flow is not None and flow.write_paused:  # no await at all while the socket is writable
            await flow.drain()


class ASGICycle:
    __slots__ = (
        "_body_sent",
        "_response_headers",
        "_status",
        "app",
        "body",
        "complete",
        "conn",
        "headers",
        "http10",
        "http_version",
        "keep_alive",
        "method",
        "path",
        "query",
        "raw_path",
        "started",
    )

    def __init__(self, conn: HttpConnection, incoming: Incoming, app: ASGIApp) -> None:
        self.conn = conn
        self.app = app
        self.raw_path, self.path, self.query = target(incoming.url)
        self.method = incoming.method
        self.http_version = incoming.http_version
        self.headers = incoming.headers
        self.body = incoming.body
        self.keep_alive = incoming.keep_alive
        self.http10 = incoming.http_version == "1.0"
        self.started = False
        self.complete = False
        self._status = 0
        self._response_headers: list[tuple[bytes, bytes]] = []
        self._body_sent = False

    @property
    def scope(self) -> Scope:
        return {
            "type": "http",
            "asgi": _ASGI,
            "http_version": self.http_version,
            "server": self.conn.server_addr,
            "client": self.conn.client_addr,
            "scheme": "http",
            "method": self.method,
            "root_path": "",
            "path": self.path,
            "raw_path": self.raw_path,
            "query_string": self.query,
            "headers": self.headers,
        }

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception:
            log.exception("application error in %s %s", self.method, self.path)
            if not self.started:
                self.keep_alive = self.conn.write(
                    INTERNAL_ERROR, self.keep_alive, http10=self.http10, extra=next(request_id.fresh)
                )
            elif not self.complete:
                self._give_up()  # half a response is out: only closing can end it
            return
        if not self.complete:
            if not self.started:
                log.error("application returned without a response: %s", self.path)
                self.conn.write(INTERNAL_ERROR, False, extra=next(request_id.fresh))
            self._give_up()

    def _give_up(self) -> None:
        self.keep_alive = False
        self.conn.state.must_close()

    async def receive(self) -> dict[str, Any]:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.conn.disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started = True
            self._status = message["status"]
            self._response_headers = list(message.get("headers", ()))
        elif kind == "http.response.body":
            if not self.started or self.complete:
                raise RuntimeError("http.response.body out of order")
            if message.get("more_body", False):
                raise RuntimeError("streaming responses are not supported by this server")
            self.complete = True
            self._write(message.get("body", b""))
            flow = self.conn.flow
            if flow is not None and flow.write_paused:
                await flow.drain()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _write(self, body: bytes) -> None:
        content_type = b"application/json"
        extra: list[tuple[bytes, bytes]] = []
        declared = b"0"
        keep_alive = self.keep_alive
        for name, value in self._response_headers:
            lower = name.lower()
            if lower == b"content-type":
                content_type = value
            elif lower == b"content-length":
                declared = value
            elif lower == b"connection" and value.lower() == b"close":
                keep_alive = False
            elif lower not in (b"connection", b"date"):
                extra.append((lower, value))
        response = Response(self._status, body, content_type, tuple(extra))
        # For HEAD the app sent no body, but declared the length GET's body would have had.
        head = self.method == "HEAD"
        self.keep_alive = self.conn.write(
            response, keep_alive, head=head, length=int(declared) if head else None, http10=self.http10
        )
