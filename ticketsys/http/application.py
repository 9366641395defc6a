"""The ASGI 3 application: lifespan, the request cycle, and the one place errors become answers.

``App.handle(request)`` is the sans-ASGI core (route, call, translate errors); ``App.__call__``
is the ASGI adapter around it that hypercorn, uvicorn and the embedded server all drive. An
error a handler raises is translated here, in ``handle``, and nowhere else: by the error table,
or else logged and answered ``errors.INTERNAL_ERROR``, never with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from time import perf_counter
from typing import Any

from ticketsys.http import request_id
from ticketsys.http.cors import CorsPolicy, with_cors
from ticketsys.http.errors import INTERNAL_ERROR, HTTPError, error_response, payload_too_large
from ticketsys.http.models import MAX_BODY_BYTES, Handler, Receive, Request, Response, Scope, Send
from ticketsys.http.routing import Match, Route, Router

log = logging.getLogger("ticketsys.http")

Hook = Callable[[], Awaitable[None]]
AnswerHook = Callable[[Request, Response, float], None]
Record = Callable[[float], None]
# Given an answer's route template (None: no route matched), method and status, where its
# seconds go.
Recorder = Callable[[str | None, str, int], Record]
ErrorTable = Mapping[type[BaseException], Callable[[Any], HTTPError]]

NOT_FOUND = error_response(HTTPError(404, "not_found", "no such endpoint"))


class App:
    def __init__(
        self,
        routes: Iterable[Route],
        *,
        errors: ErrorTable | None = None,
        on_startup: Iterable[Hook] = (),
        on_shutdown: Iterable[Hook] = (),
        max_body_bytes: int = MAX_BODY_BYTES,
        title: str = "ticketsys",
        version: str = "0",
        cors: CorsPolicy | None = None,
        recorder: Recorder | None = None,
        on_answer: AnswerHook | None = None,
    ) -> None:
        self.router = Router(routes)
        self.errors = dict(errors or {})
        self.on_startup = list(on_startup)
        self.on_shutdown = list(on_shutdown)
        self.max_body_bytes = max_body_bytes
        self.title = title
        self.version = version
        self.started = False
        self.startup_error: BaseException | None = None
        self.shutdown_error: BaseException | None = None
        # What the wiring hangs on the app for others to find (the telemetry, for the runner).
        self.state: dict[str, Any] = {}
        # Where the seconds of each answer ``handle`` gives go (the telemetry's histogram),
        # and who else is told of it (the access log).
        self.recorder = recorder
        self._recorders: dict[str, dict[str, dict[int, Record]]] = {}
        self.on_answer = on_answer
        if cors is not None:  # both dispatch paths go through handle; without CORS it stays as is
            self.handle = with_cors(self.handle, self.router, cors)  # type: ignore[method-assign,assignment]

    # -- the request cycle, without ASGI ---------------------------------------------------

    async def handle(self, request: Request) -> Response:
        # Written flat, the hot path of every request: the answer is timed here, not in a
        # wrapper around ``handle`` (a coroutine more per request: 1,200 instructions, a
        # purchase's 1 %), its seconds handed to the recorder of its route, method and status,
        # found by three lookups of keys whose hashes Python keeps.
        started = perf_counter()
        found = self.router.match(request.method, request.path)
        if found.outcome is Match.FULL:
            route = found.route
            assert route is not None
            request.route = route.path
            if found.params:
                request.path_params = found.params
            try:
                response = await route.endpoint(request)
            except HTTPError as exc:
                response = error_response(exc)
            except Exception as exc:  # the single catch-all: translate, or log and 500
                response = self.error_response(exc, request)
            try:
                record = self._recorders[route.path][request.method][response.status]
            except KeyError:
                record = self._recorder(route.path, request.method, response.status)
        else:
            response = NOT_FOUND if found.outcome is Match.NONE else _not_allowed(request.method, found.allow)
            record = self._recorder(None, request.method, response.status)
        elapsed = perf_counter() - started
        record(elapsed)
        if self.on_answer is not None:
            self.on_answer(request, response, elapsed)
        return response

    def _recorder(self, route: str | None, method: str, status: int) -> Record:
        """The recorder for these answers, kept for a route's (whose methods are its own, and
        whose statuses are the app's): a path or method no route serves is the client's to
        choose, and would grow the table without end."""
        if self.recorder is None:
            return _ignore
        record = self.recorder(route, method, status)
        if route is not None:
            self._recorders.setdefault(route, {}).setdefault(method, {})[status] = record
        return record

    def error_response(self, exc: Exception, request: Request) -> Response:
        error = translate(self.errors, exc)
        if error is not None:
            return error_response(error)
        log.exception("unhandled error in %s %s", request.method, request.path)
        return INTERNAL_ERROR

    def direct_handler(self) -> Handler | None:
        """``handle`` once started (``models.DirectDispatch``): a server may then skip the
        ASGI layer and hand it ``Request`` objects directly."""
        return self.handle if self.started else None

    async def startup(self) -> None:
        try:
            for hook in self.on_startup:
                await hook()
        except BaseException as exc:
            self.startup_error = exc  # for a runner that exits by the kind of failure
            raise
        self.started = True

    async def shutdown(self) -> None:
        """Run every shutdown hook, even after one fails (each closes something of its own);
        the first failure is raised at the end and kept for the runner's exit status."""
        self.started = False
        for hook in reversed(self.on_shutdown):
            try:
                await hook()
            except Exception as exc:
                log.error("shutdown: %s", exc)
                self.shutdown_error = self.shutdown_error or exc
        if self.shutdown_error is not None:
            raise self.shutdown_error

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await serve_lifespan(self, receive, send)
        else:  # websocket: not ours; closing is the polite refusal
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                too_large = error_response(payload_too_large(self.max_body_bytes))
                await send_response(send, too_large, scope, request_id.from_headers(scope["headers"]))
                return
            if not message.get("more_body", False):
                break
        request = Request(
            scope["method"],
            scope["path"],
            scope["headers"],
            body,
            scope.get("query_string", b""),
            client=_client(scope.get("client")),
            id_header=request_id.from_headers(scope["headers"]),
        )
        request_id.enter(request.id_header)  # each ASGI request has a task of its own
        response = await self.handle(request)
        await send_response(send, response, scope, request.id_header)

    def __repr__(self) -> str:
        return f"<App {self.title!r} routes={len(self.router.routes)} started={self.started}>"


def translate(errors: ErrorTable, exc: BaseException) -> HTTPError | None:
    """The answer ``errors`` gives ``exc`` (by its class or the nearest base), None for a bug."""
    for kind in type(exc).__mro__:
        translated = errors.get(kind)
        if translated is not None:
            return translated(exc)
    return None


def _ignore(seconds: float) -> None:
    pass


def _not_allowed(method: str, allow: Iterable[str]) -> Response:
    allowed = ", ".join(allow)
    return error_response(
        HTTPError(
            405,
            "method_not_allowed",
            f"{method} is not allowed here; use {allowed}",
            headers=((b"allow", allowed.encode("ascii")),),
        )
    )


def _client(peer: Any) -> tuple[str, int] | None:
    """ASGI's ``client`` ([host, port], or None; some servers send a list)."""
    if peer is None:
        return None
    host, port = peer
    return str(host), int(port)


async def send_response(send: Send, response: Response, scope: Scope, id_header: bytes = b"") -> None:
    headers = [
        (b"content-type", response.content_type),
        (b"content-length", b"%d" % len(response.body)),
        *response.headers,
    ]
    if id_header:
        headers.append((request_id.HEADER, request_id.id_of(id_header)))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    body = b"" if scope["method"] == "HEAD" else response.body
    await send({"type": "http.response.body", "body": body})


async def serve_lifespan(app: App | DeferredApp, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await app.startup()
            except BaseException as exc:
                # The server reports the message (one line: ours, hypercorn's and uvicorn's).
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await app.shutdown()
            except BaseException as exc:
                await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return


class DeferredApp:
    """An ASGI app whose real ``App`` is built at lifespan start-up, not at import.

    Module-level ``app`` objects (for ``hypercorn ticketsys.apps.monolith:app``) must read no
    configuration and open nothing when imported; this defers ``build()`` to start-up, or to
    the first request under a server that skips lifespan.
    """

    def __init__(self, build: Callable[[], App]) -> None:
        self._build = build
        self._starting = asyncio.Lock()
        self.app: App | None = None

    def resolve(self) -> App:
        if self.app is None:
            self.app = self._build()
        return self.app

    async def startup(self) -> None:
        await self.resolve().startup()

    async def shutdown(self) -> None:
        if self.app is not None:
            await self.app.shutdown()

    def direct_handler(self) -> Handler | None:
        return self.app.direct_handler() if self.app is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(self, receive, send)
            return
        app = self.resolve()
        if not app.started:
            async with self._starting:
                if not app.started:
                    await app.startup()
        await app(scope, receive, send)
