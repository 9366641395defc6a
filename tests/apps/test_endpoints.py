"""The apps' own endpoints in-process: orders, idempotency headers, service auth, restock."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.asgi import AsgiResponse, call, run_app
from ticketsys.apps.monolith import build_monolith
from ticketsys.apps.vacancy import build_vacancy
from ticketsys.config import MEMORY, Settings
from ticketsys.http.application import App

JSON = (b"content-type", b"application/json")
TOKEN = "s3cret-token-0123456789"


def _settings(**changes: Any) -> Settings:
    return Settings(stock_store=MEMORY, **changes)


async def _post(app: App, path: str, body: Any, *headers: tuple[bytes, bytes]) -> AsgiResponse:
    return await call(app, "POST", path, orjson.dumps(body), [JSON, *headers])


def test_purchase_answers_an_order_id_that_can_be_fetched() -> None:
    async def test(app: App) -> None:
        bought = (await _post(app, "/api/v1/purchase", {"qty": 5})).json()
        assert bought["success"] is True and bought["remaining"] == 995
        order = await call(app, "GET", f"/api/v1/orders/{bought['order_id']}")
        assert order.status == 200
        assert order.json()["qty"] == 5 and order.json()["remaining"] == 995
        assert order.json()["created_at"].endswith("Z")  # RFC 3339, UTC

    run_app(build_monolith(_settings(initial_stock=1000)), test)


def test_unknown_order_is_404_json() -> None:
    async def test(app: App) -> None:
        response = await call(app, "GET", "/api/v1/orders/nope")
        assert (response.status, response.json()["error"]) == (404, "order_not_found")

    run_app(build_monolith(_settings()), test)


def test_idempotency_key_header() -> None:
    async def test(app: App) -> None:
        key = (b"idempotency-key", b"order-1")
        first = await _post(app, "/api/v1/purchase", {"qty": 2}, key)
        again = await _post(app, "/api/v1/purchase", {"qty": 2}, key)
        other = await _post(app, "/api/v1/purchase", {"qty": 3}, key)
        assert again.body == first.body
        assert (other.status, other.json()["error"]) == (422, "idempotency_conflict")
        available = await call(app, "GET", "/api/v1/available")
        assert available.json() == {"available": 98}

    run_app(build_monolith(_settings(initial_stock=100)), test)


@pytest.mark.parametrize("key", [b"", b"has space", b"x" * 256, "é".encode()])
def test_malformed_idempotency_keys_are_422(key: bytes) -> None:
    async def test(app: App) -> None:
        response = await _post(app, "/api/v1/purchase", {"qty": 1}, (b"idempotency-key", key))
        assert (response.status, response.json()["error"]) == (422, "invalid_idempotency_key")

    run_app(build_monolith(_settings()), test)


def test_monolith_has_no_internal_endpoints() -> None:
    async def test(app: App) -> None:
        for path in ("/api/v1/reserve", "/api/v1/release", "/api/v1/restock"):
            assert (await _post(app, path, {"qty": 1})).status == 404

    run_app(build_monolith(_settings()), test)


def test_vacancy_requires_the_service_token_when_set() -> None:
    async def test(app: App) -> None:
        anonymous = await _post(app, "/api/v1/reserve", {"qty": 1})
        wrong = await _post(app, "/api/v1/reserve", {"qty": 1}, (b"authorization", b"Bearer nope"))
        right = await _post(
            app, "/api/v1/reserve", {"qty": 1}, (b"authorization", f"Bearer {TOKEN}".encode())
        )
        assert anonymous.status == wrong.status == 401
        assert anonymous.headers[b"www-authenticate"].startswith(b"Bearer")
        assert right.json() == {"success": True, "remaining": 9}
        assert (await call(app, "GET", "/api/v1/available")).json() == {"available": 9}

    run_app(build_vacancy(_settings(initial_stock=10, service_token=TOKEN)), test)


def test_restock_needs_a_token() -> None:
    async def without(app: App) -> None:
        response = await _post(app, "/api/v1/restock", {"qty": 5})
        assert (response.status, response.json()["error"]) == (403, "restock_disabled")

    async def with_token(app: App) -> None:
        bearer = (b"authorization", f"Bearer {TOKEN}".encode())
        response = await _post(app, "/api/v1/restock", {"qty": 5}, bearer)
        assert response.json() == {"success": True, "remaining": 15}

    run_app(build_vacancy(_settings(initial_stock=10)), without)
    run_app(build_vacancy(_settings(initial_stock=10, service_token=TOKEN)), with_token)


def test_openapi_documents_orders_and_the_idempotency_header() -> None:
    async def test(app: App) -> None:
        document = (await call(app, "GET", "/openapi.json")).json()
        assert "/api/v1/orders/{order_id}" in document["paths"]
        parameters = document["paths"]["/api/v1/purchase"]["post"]["parameters"]
        assert parameters[0]["name"] == "Idempotency-Key"

    run_app(build_monolith(_settings()), test)


def test_a_batch_of_sales_is_checked_whole_and_answered_sale_by_sale() -> None:
    soon = "2099-01-01T00:00:00.000Z"
    sale = {"qty": 1, "expires_at": soon, "order_id": "a" * 32}

    async def test(app: App) -> None:
        bearer = (b"authorization", f"Bearer {TOKEN}".encode())
        assert (await _post(app, "/api/v1/sales", {"sales": [sale]})).status == 401
        bodies: list[dict[str, Any]] = [
            {"sales": []},
            {"sales": "all"},
            {"sales": [sale] * 65},
            {"sales": [sale, 1]},
            {"sales": [{"qty": 1, "expires_at": soon}]},
            {"sales": [{**sale, "qty": 0}]},
            {"sales": [{**sale, "expires_at": "soon"}]},
        ]
        for body in bodies:
            refused = await _post(app, "/api/v1/sales", body, bearer)
            assert (refused.status, refused.json()["error"]) in (
                (422, "invalid_field"),
                (422, "invalid_body"),
            )
        assert (await call(app, "GET", "/api/v1/available")).json() == {"available": 10}

        sales = [
            {**sale, "request_id": "buyer-1"},
            {"qty": 11, "expires_at": soon, "order_id": "b" * 32},  # above MAX_QTY: this one only
            {"qty": 2, "expires_at": "2000-01-01T00:00:00Z", "order_id": "c" * 32},  # too late
            {"qty": 9, "expires_at": soon, "order_id": "d" * 32},  # 9 left
            {**sale, "qty": 2},  # the first sale's order, another quantity
            sale,  # the first sale again
        ]
        answer = await _post(app, "/api/v1/sales", {"sales": sales}, bearer)
        assert answer.status == 200
        body = answer.json()
        results = body["results"]
        assert len(body["store_id"]) >= 16
        assert [result["status"] for result in results] == [201, 422, 409, 201, 422, 201]
        assert (results[0]["state"], results[0]["order_id"], results[0]["remaining"]) == (
            "confirmed",
            "a" * 32,
            9,
        )
        assert results[1]["field"] == "qty"
        assert results[2]["error"] == "hold_expired"
        assert results[3]["remaining"] == 0
        assert results[4]["error"] == "idempotency_conflict"
        assert results[5]["hold_id"] == results[0]["hold_id"]
        stock = (await call(app, "GET", "/api/v1/stock", headers=[bearer])).json()
        assert (stock["available"], stock["sold"]) == (0, 10)

    run_app(build_vacancy(_settings(initial_stock=10, max_qty=10, service_token=TOKEN)), test)
