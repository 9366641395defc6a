from __future__ import annotations

import asyncio

import pytest

from tests.asgi import call, lifespan
from ticketsys.http.application import App, DeferredApp
from ticketsys.http.errors import HTTPError
from ticketsys.http.models import Request, Response
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route


class Refused(Exception):
    pass


def _app(**kwargs: object) -> App:
    async def hello(request: Request) -> Response:
        return json_response({"hello": "world"})

    async def echo(request: Request) -> Response:
        return json_response({"bytes": len(request.body)})

    async def refuse(request: Request) -> Response:
        raise Refused("no")

    async def crash(request: Request) -> Response:
        raise RuntimeError("secret internal detail")

    async def teapot(request: Request) -> Response:
        raise HTTPError(418, "teapot", "short and stout")

    routes = [
        Route("/hello", frozenset({"GET"}), hello),
        Route("/echo", frozenset({"POST"}), echo),
        Route("/refuse", frozenset({"GET"}), refuse),
        Route("/crash", frozenset({"GET"}), crash),
        Route("/teapot", frozenset({"GET"}), teapot),
    ]
    errors = {Refused: lambda exc: HTTPError(409, "refused", str(exc))}
    return App(routes, errors=errors, max_body_bytes=100, **kwargs)  # type: ignore[arg-type]


async def test_get() -> None:
    response = await call(_app(), "GET", "/hello")
    assert response.status == 200
    assert response.json() == {"hello": "world"}
    assert response.headers[b"content-type"] == b"application/json"
    assert response.headers[b"content-length"] == b"17"


async def test_head_has_length_but_no_body() -> None:
    response = await call(_app(), "HEAD", "/hello")
    assert (response.status, response.body, response.headers[b"content-length"]) == (200, b"", b"17")


async def test_unknown_path_is_404_json() -> None:
    response = await call(_app(), "GET", "/nope")
    assert response.status == 404
    assert response.json()["error"] == "not_found"
    assert response.json()["success"] is False


async def test_wrong_method_is_405_with_allow() -> None:
    response = await call(_app(), "DELETE", "/hello")
    assert response.status == 405
    assert response.headers[b"allow"] == b"GET, HEAD"
    assert response.json()["error"] == "method_not_allowed"


async def test_body_is_assembled_from_chunks() -> None:
    response = await call(_app(), "POST", "/echo", chunks=[b"ab", b"cd", b"e"])
    assert response.json() == {"bytes": 5}


async def test_body_over_the_limit_is_413() -> None:
    response = await call(_app(), "POST", "/echo", chunks=[b"x" * 60, b"x" * 60])
    assert response.status == 413
    assert response.json()["error"] == "payload_too_large"


async def test_domain_errors_are_translated_by_the_table() -> None:
    response = await call(_app(), "GET", "/refuse")
    assert (response.status, response.json()["error"]) == (409, "refused")


async def test_http_errors_pass_through() -> None:
    response = await call(_app(), "GET", "/teapot")
    assert response.status == 418
    assert response.json() == {"success": False, "error": "teapot", "message": "short and stout"}


async def test_a_bug_is_500_json_without_details(caplog: pytest.LogCaptureFixture) -> None:
    response = await call(_app(), "GET", "/crash")
    assert response.status == 500
    assert response.json()["error"] == "internal_error"
    assert b"secret" not in response.body and b"Traceback" not in response.body
    assert "secret internal detail" in caplog.text  # but it is logged


def test_lifespan_runs_hooks_in_order() -> None:
    calls: list[str] = []

    async def first() -> None:
        calls.append("start-1")

    async def stop() -> None:
        calls.append("stop")

    app = _app(on_startup=[first], on_shutdown=[stop])
    assert asyncio.run(lifespan(app, "startup", "shutdown")) == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert calls == ["start-1", "stop"]


def test_lifespan_reports_startup_failure() -> None:
    async def broken() -> None:
        raise OSError("store unavailable")

    assert asyncio.run(lifespan(_app(on_startup=[broken]), "startup")) == ["lifespan.startup.failed"]


def test_deferred_app_builds_at_startup_not_import() -> None:
    built: list[App] = []

    def build() -> App:
        built.append(_app())
        return built[-1]

    deferred = DeferredApp(build)
    assert built == []
    assert asyncio.run(lifespan(deferred, "startup", "shutdown"))[0] == "lifespan.startup.complete"
    assert len(built) == 1


async def test_deferred_app_starts_on_first_request_without_lifespan() -> None:
    deferred = DeferredApp(_app)
    response = await call(deferred, "GET", "/hello")
    assert response.status == 200
    assert deferred.app is not None and deferred.app.started


def test_deferred_app_reports_a_failing_build() -> None:
    def build() -> App:
        raise ValueError("INITIAL_STOCK='x': must be a whole number")

    assert asyncio.run(lifespan(DeferredApp(build), "startup")) == ["lifespan.startup.failed"]


def test_repr_shows_state() -> None:
    assert repr(_app()) == "<App 'ticketsys' routes=5 started=False>"
