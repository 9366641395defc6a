"""CORS_ORIGINS over a real socket, in both dispatch paths: the embedded server calling App.handle
directly, the embedded server through ASGI, and hypercorn; and no CORS at all by default."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import services

pytestmark = pytest.mark.slow

SHOP = "https://shop.example"
ORIGINS = f"{SHOP}, http://localhost:5173"

SERVERS = {
    "direct": ({"SERVER_DISPATCH": "direct"}, False),
    "asgi": ({"SERVER_DISPATCH": "asgi"}, False),
    "hypercorn": ({}, True),
}


@pytest.fixture(scope="module", params=SERVERS)
def monolith(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env, hypercorn = SERVERS[request.param]
    directory = tmp_path_factory.mktemp(f"cors-{request.param}")
    service = services.start("monolith", directory, env={**env, "CORS_ORIGINS": ORIGINS}, hypercorn=hypercorn)
    with services.running(service):
        yield service.url
        assert service.stop() == 0


def _request(
    url: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> http.client.HTTPResponse:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _preflight(url: str, origin: str, path: str = "/api/v1/purchase") -> http.client.HTTPResponse:
    return _request(
        url,
        "OPTIONS",
        path,
        {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key",
        },
    )


def _cors_headers(response: http.client.HTTPResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in response.getheaders() if k.lower().startswith("access-control-")}


def test_a_listed_origin_is_answered(monolith: str) -> None:
    preflight = _preflight(monolith, SHOP)
    assert preflight.status == 204
    headers = _cors_headers(preflight)
    assert headers["access-control-allow-origin"] == SHOP
    assert headers["access-control-allow-methods"] == "POST"
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "idempotency-key", "authorization"} <= allowed
    assert int(headers["access-control-max-age"]) > 0
    assert preflight.getheader("vary") == "Origin"

    bought = _request(
        monolith,
        "POST",
        "/api/v1/purchase",
        {"Origin": SHOP, "Content-Type": "application/json", "Idempotency-Key": "cors-e2e-1"},
        b'{"qty": 1}',
    )
    assert bought.status == 200
    assert bought.getheader("access-control-allow-origin") == SHOP
    assert "Retry-After" in (bought.getheader("access-control-expose-headers") or "")
    assert bought.getheader("vary") == "Origin"


def test_an_unlisted_origin_gets_no_cors_headers(monolith: str) -> None:
    preflight = _preflight(monolith, "https://evil.example")
    assert preflight.status == 405 and _cors_headers(preflight) == {}
    answer = _request(monolith, "GET", "/api/v1/available", {"Origin": "https://evil.example"})
    assert answer.status == 200 and _cors_headers(answer) == {}


def test_errors_are_readable_by_a_listed_origin(monolith: str) -> None:
    missing = _request(monolith, "GET", "/api/v1/orders/nope", {"Origin": "http://localhost:5173"})
    assert missing.status == 404
    assert missing.getheader("access-control-allow-origin") == "http://localhost:5173"


def test_no_cors_by_default(tmp_path: Path) -> None:
    service = services.start("monolith", tmp_path, env={"CORS_ORIGINS": None})
    with services.running(service):
        preflight = _preflight(service.url, SHOP)
        assert preflight.status == 405 and preflight.getheader("allow") == "POST"
        answer = _request(service.url, "GET", "/api/v1/available", {"Origin": SHOP})
        assert answer.status == 200
        assert _cors_headers(answer) == {} and answer.getheader("vary") is None
        assert service.stop() == 0
