"""CORS in the App: preflights answered, actual answers marked, for listed origins only;
through App.handle (the embedded server's direct dispatch) and through ASGI alike."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.asgi import call
from ticketsys.http.application import App
from ticketsys.http.cors import ALLOW_HEADERS, EXPOSE_HEADERS, MAX_AGE, CorsPolicy
from ticketsys.http.errors import HTTPError
from ticketsys.http.models import Request, Response
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route

SHOP = b"https://shop.example"


async def buy(request: Request) -> Response:
    return json_response({"success": True})


async def busy(request: Request) -> Response:
    raise HTTPError(503, "busy", "try later", headers=((b"retry-after", b"1"),))


async def order(request: Request) -> Response:
    return json_response({"order_id": request.path_params["order_id"]})


ROUTES = [
    Route("/buy", frozenset({"POST"}), buy, name="buy"),
    Route("/busy", frozenset({"GET"}), busy, name="busy"),
    Route("/orders/{order_id}", frozenset({"GET", "DELETE"}), order, name="order"),
]


def _app(*origins: str) -> App:
    return App(ROUTES, cors=CorsPolicy(origins) if origins else None)


def _handle(app: App, method: str, path: str, *headers: tuple[bytes, bytes]) -> Response:
    return asyncio.run(app.handle(Request(method, path, list(headers))))


def _headers(response: Response) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in response.headers:
        assert name not in found, f"{name!r} twice"
        found[name] = value
    return found


def _preflight(app: App, path: str, origin: bytes = SHOP, method: bytes = b"POST") -> Response:
    return _handle(
        app,
        "OPTIONS",
        path,
        (b"origin", origin),
        (b"access-control-request-method", method),
        (b"access-control-request-headers", b"content-type,idempotency-key"),
    )


def test_a_listed_origins_preflight_is_answered_204_with_the_routes_methods() -> None:
    app = _app("https://shop.example", "http://localhost:5173")
    answer = _preflight(app, "/buy")
    assert (answer.status, answer.body) == (204, b"")
    assert _headers(answer) == {
        b"access-control-allow-origin": SHOP,
        b"access-control-allow-methods": b"POST",
        b"access-control-allow-headers": ", ".join(ALLOW_HEADERS).encode(),
        b"access-control-max-age": str(MAX_AGE).encode(),
        b"vary": b"Origin",
    }
    templated = _headers(_preflight(app, "/orders/42", method=b"DELETE"))
    assert templated[b"access-control-allow-methods"] == b"DELETE, GET, HEAD"
    assert {b"Content-Type", b"Idempotency-Key", b"Authorization"} <= set(
        templated[b"access-control-allow-headers"].split(b", ")
    )


def test_an_actual_answer_to_a_listed_origin_may_be_read_and_exposes_retry_after() -> None:
    app = _app("https://shop.example")
    bought = _handle(app, "POST", "/buy", (b"origin", SHOP))
    assert bought.status == 200 and bought.body == b'{"success":true}'
    headers = _headers(bought)
    assert headers[b"access-control-allow-origin"] == SHOP and headers[b"vary"] == b"Origin"
    assert b"Retry-After" in headers[b"access-control-expose-headers"].split(b", ")
    refused = _handle(app, "GET", "/busy", (b"origin", SHOP))
    assert refused.status == 503 and _headers(refused)[b"retry-after"] == b"1"
    assert _headers(refused)[b"access-control-expose-headers"] == ", ".join(EXPOSE_HEADERS).encode()


@pytest.mark.parametrize(
    "origin", [b"https://evil.example", b"http://shop.example", b"https://shop.example:8443", b"null"]
)
def test_an_unlisted_origin_gets_no_cors_headers(origin: bytes) -> None:
    app = _app("https://shop.example")
    preflight = _preflight(app, "/buy", origin=origin)
    assert preflight.status == 405  # not answered as a preflight: the route takes POST only
    answer = _handle(app, "POST", "/buy", (b"origin", origin))
    assert answer.status == 200
    for response in (preflight, answer):
        names = set(_headers(response))
        assert not any(name.startswith(b"access-control-") for name in names)
        assert _headers(response)[b"vary"] == b"Origin"  # a shared cache must still tell them apart


def test_origins_compare_without_case() -> None:
    answer = _handle(_app("https://Shop.Example"), "POST", "/buy", (b"origin", b"https://SHOP.example"))
    assert _headers(answer)[b"access-control-allow-origin"] == b"https://shop.example"


def test_a_star_allows_every_origin() -> None:
    app = _app("*")
    assert (
        _headers(_preflight(app, "/buy", origin=b"https://any.example"))[b"access-control-allow-origin"]
        == b"*"
    )
    answer = _handle(app, "POST", "/buy", (b"origin", b"null"))
    assert _headers(answer)[b"access-control-allow-origin"] == b"*"


def test_without_origin_or_without_the_preflight_header_routing_is_as_usual() -> None:
    app = _app("https://shop.example")
    plain = _handle(app, "POST", "/buy")
    assert plain.status == 200 and b"access-control-allow-origin" not in _headers(plain)
    options = _handle(app, "OPTIONS", "/buy", (b"origin", SHOP))  # no Access-Control-Request-Method
    assert options.status == 405 and _headers(options)[b"allow"] == b"POST"
    unknown = _preflight(app, "/nowhere")
    assert unknown.status == 404 and _headers(unknown)[b"access-control-allow-origin"] == SHOP


def test_without_origins_the_app_is_untouched() -> None:
    app = _app()
    assert app.handle.__func__ is App.handle  # type: ignore[attr-defined]  # no wrapper, no cost
    answer = _handle(app, "POST", "/buy", (b"origin", SHOP))
    assert answer.headers == ()
    assert _preflight(app, "/buy").status == 405


def _asgi(app: App, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Any:
    return asyncio.run(call(app, method, path, b"", headers))


def test_the_asgi_path_carries_the_same_headers() -> None:
    app = _app("https://shop.example")
    preflight = _asgi(
        app, "OPTIONS", "/orders/7", [(b"origin", SHOP), (b"access-control-request-method", b"GET")]
    )
    assert preflight.status == 204
    assert preflight.headers[b"access-control-allow-methods"] == b"DELETE, GET, HEAD"
    answer = _asgi(app, "GET", "/orders/7", [(b"origin", SHOP)])
    assert answer.status == 200 and answer.headers[b"access-control-allow-origin"] == SHOP
    other = _asgi(app, "GET", "/orders/7", [(b"origin", b"https://evil.example")])
    assert b"access-control-allow-origin" not in other.headers
