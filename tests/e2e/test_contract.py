"""SPEC.md's HTTP contract, row by row, against every deployment: the app in-process, the
monolith over a socket (direct and ASGI dispatch), vacancy + ticket as two processes, the
monolith under hypercorn and the monolith on Redis. The answers must be the same bodies."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest

from tests.e2e.deployments import INITIAL_STOCK, TOKEN, Answer, Deployment

ERROR_KEYS = {"success", "error", "message"}


def _assert_error(answer: Answer, status: int, code: str) -> None:
    body = answer.json()
    assert answer.status == status, body
    assert body.keys() >= ERROR_KEYS and body["success"] is False and body["error"] == code


def test_seed_walkthrough(fresh_deployment: Deployment) -> None:
    """The seed guide's curl session: 1000 on sale, buy, the answer names what is left."""
    deployment = fresh_deployment
    assert deployment.available() == INITIAL_STOCK
    answer = deployment.buy(5)
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert {k: body[k] for k in ("success", "remaining", "message")} == {
        "success": True,
        "remaining": 995,
        "message": "Purchase successful!",
    }
    assert deployment.available() == 995
    root = deployment.get("/").json()
    assert root["mode"] == root["deployment_mode"] == deployment.mode


def test_root_names_the_service_and_mode(deployment: Deployment) -> None:
    body = deployment.get("/").json()
    assert body["service"] == ("ticket" if deployment.mode == "microservices" else "monolith")
    assert body["mode"] == body["deployment_mode"] == deployment.mode
    assert isinstance(body["version"], str)
    if deployment.mode == "microservices":
        vacancy = deployment.get("/", deployment.stock).json()
        assert (vacancy["service"], vacancy["mode"]) == ("vacancy", "microservices")


def test_available_agrees_between_front_and_stock(deployment: Deployment) -> None:
    front = deployment.get("/api/v1/available")
    assert front.status == 200 and set(front.json()) == {"available"}
    assert front.json()["available"] == deployment.available()


def test_purchase_takes_exactly_qty_and_records_an_order(deployment: Deployment) -> None:
    before = deployment.available()
    answer = deployment.buy(3)
    body = answer.json()
    assert answer.status == 200, body
    assert body["success"] is True and body["qty"] == 3 and body["remaining"] == before - 3
    assert deployment.available() == before - 3
    order = deployment.get(f"/api/v1/orders/{body['order_id']}")
    assert order.status == 200
    assert order.json()["order_id"] == body["order_id"] and order.json()["qty"] == 3


def test_unknown_order_is_404(deployment: Deployment) -> None:
    answer = deployment.get("/api/v1/orders/no-such-order")
    _assert_error(answer, 404, "order_not_found")


def test_selling_out_to_zero(fresh_deployment: Deployment) -> None:
    deployment = fresh_deployment
    assert deployment.buy(600).json()["remaining"] == 400
    refused = deployment.buy(401)
    _assert_error(refused, 409, "sold_out")
    assert refused.json()["remaining"] == 400
    assert deployment.buy(400).json()["remaining"] == 0
    assert deployment.buy(1).status == 409
    assert deployment.available() == 0


def test_idempotent_retry_returns_the_first_answer(deployment: Deployment) -> None:
    key = f"e2e-{uuid.uuid4()}"
    first = deployment.buy(2, key)
    after_first = deployment.available()
    again = deployment.buy(2, key)
    assert first.status == again.status == 200
    assert again.json() == first.json()
    assert deployment.available() == after_first
    conflict = deployment.buy(3, key)
    _assert_error(conflict, 422, "idempotency_conflict")


BAD_BODIES = [
    pytest.param(b'{"qty": "5"}', 422, "invalid_field", id="string"),
    pytest.param(b'{"qty": true}', 422, "invalid_field", id="bool"),
    pytest.param(b'{"qty": 1.5}', 422, "invalid_field", id="fraction"),
    pytest.param(b'{"qty": null}', 422, "invalid_field", id="null"),
    pytest.param(b'{"qty": 0}', 422, "invalid_field", id="zero"),
    pytest.param(b'{"qty": -3}', 422, "invalid_field", id="negative"),
    pytest.param(b'{"qty": 1001}', 422, "invalid_field", id="above-max-qty"),
    pytest.param(b'{"qty": 123456789012345678901234567890}', 422, "invalid_field", id="huge-int"),
    pytest.param(b"{}", 422, "invalid_field", id="missing"),
    pytest.param(b"[1]", 422, "invalid_body", id="array"),
    pytest.param(b'{"qty": NaN}', 400, "malformed_json", id="nan"),
    pytest.param(b'{"qty": 1e400}', 400, "malformed_json", id="infinity"),
    pytest.param(b'{"qty": ', 400, "malformed_json", id="truncated"),
    pytest.param(b"", 400, "malformed_json", id="empty"),
    pytest.param(b"\xff\xfe", 400, "malformed_json", id="not-utf8"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_BODIES)
def test_bad_purchase_bodies(deployment: Deployment, body: bytes, status: int, code: str) -> None:
    before = deployment.available()
    answer = deployment.post("/api/v1/purchase", body)
    _assert_error(answer, status, code)
    assert deployment.available() == before


def test_not_json_is_415(deployment: Deployment) -> None:
    answer = deployment.post("/api/v1/purchase", b"qty=1", {"Content-Type": "text/plain"})
    _assert_error(answer, 415, "unsupported_media_type")


def test_too_large_body_is_413(deployment: Deployment) -> None:
    padding = "x" * (64 * 1024)
    answer = deployment.post("/api/v1/purchase", orjson.dumps({"qty": 1, "padding": padding}))
    _assert_error(answer, 413, "payload_too_large")


def test_unknown_path_is_404(deployment: Deployment) -> None:
    answer = deployment.get("/api/v1/nothing-here")
    _assert_error(answer, 404, "not_found")


def test_wrong_method_is_405_with_allow(deployment: Deployment) -> None:
    answer = deployment.get("/api/v1/purchase")
    _assert_error(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "POST"
    deleted = deployment.front.request("DELETE", "/api/v1/available")
    assert deleted.status == 405 and deleted.headers["allow"] == "GET, HEAD"


def test_head_answers_like_get_without_a_body(deployment: Deployment) -> None:
    answer = deployment.front.request("HEAD", "/api/v1/available")
    assert answer.status == 200 and answer.body == b""


def test_health_and_readiness(deployment: Deployment) -> None:
    assert deployment.get("/healthz").status == 200
    assert deployment.get("/readyz").status == 200


def test_docs_work_offline_and_openapi_is_3_1(deployment: Deployment) -> None:
    page = deployment.get("/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert b"cdn" not in page.body.lower() and b"https://" not in page.body
    document = deployment.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert {"/api/v1/available", "/api/v1/purchase"} <= document["paths"].keys()


def test_internal_endpoints(deployment: Deployment) -> None:
    """reserve/release exist on Vacancy only, behind the service token."""
    if deployment.mode == "monolith":
        assert deployment.post("/api/v1/reserve", {"qty": 1}).status == 404
        assert deployment.post("/api/v1/release", {"qty": 1}).status == 404
        return
    stock = deployment.stock
    anonymous = deployment.post("/api/v1/reserve", {"qty": 1}, target=stock)
    assert anonymous.status == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    before = deployment.available()
    reserved = deployment.post("/api/v1/reserve", {"qty": 2}, bearer, target=stock)
    assert reserved.json() == {"success": True, "remaining": before - 2}
    released = deployment.post("/api/v1/release", {"qty": 2}, bearer, target=stock)
    assert released.json() == {"success": True, "remaining": before}
    bad = deployment.post("/api/v1/reserve", {"qty": "2"}, bearer, target=stock)
    _assert_error(bad, 422, "invalid_field")


# -- the stock's parts and holds (issue 10) ---------------------------------------------------


def test_stock_has_three_parts(deployment: Deployment) -> None:
    before = deployment.stock_parts()
    assert set(before) == {"available", "held", "sold", "capacity"}
    assert before["available"] == deployment.available()
    deployment.buy(2)
    after = deployment.stock_parts()
    assert (after["sold"], after["available"]) == (before["sold"] + 2, before["available"] - 2)


def test_a_hold_is_held_then_confirmed_into_an_order(deployment: Deployment) -> None:
    before = deployment.stock_parts()
    created = deployment.hold({"qty": 3, "ttl": 120})
    body = created.json()
    assert created.status == 201, body
    assert set(body) == {"hold_id", "qty", "expires_at", "remaining"} and body["qty"] == 3
    assert body["expires_at"].endswith("Z") and body["remaining"] == before["available"] - 3
    assert deployment.stock_parts()["held"] == before["held"] + 3
    hold = deployment.get(f"/api/v1/holds/{body['hold_id']}").json()
    assert (hold["state"], hold["qty"], hold["expires_at"]) == ("held", 3, body["expires_at"])
    confirmed = deployment.post(f"/api/v1/holds/{body['hold_id']}/confirm", b"")
    sale = confirmed.json()
    assert confirmed.status == 200, sale
    assert sale["success"] is True and sale["qty"] == 3 and sale["message"] == "Purchase successful!"
    again = deployment.post(f"/api/v1/holds/{body['hold_id']}/confirm", b"")
    assert again.status == 200 and again.json()["order_id"] == sale["order_id"]
    assert deployment.get(f"/api/v1/orders/{sale['order_id']}").json()["qty"] == 3
    after = deployment.stock_parts()
    assert (after["held"], after["sold"]) == (before["held"], before["sold"] + 3)
    assert deployment.get(f"/api/v1/holds/{body['hold_id']}").json()["state"] == "confirmed"
    _assert_error(deployment.delete(f"/api/v1/holds/{body['hold_id']}"), 409, "hold_confirmed")


def test_a_released_hold_puts_its_tickets_back_once(deployment: Deployment) -> None:
    before = deployment.stock_parts()
    hold_id = deployment.hold({"qty": 4}).json()["hold_id"]
    for _ in range(2):
        released = deployment.delete(f"/api/v1/holds/{hold_id}")
        assert released.status == 200 and released.json() == {
            "success": True,
            "remaining": before["available"],
        }
    assert deployment.stock_parts() == before
    assert deployment.get(f"/api/v1/holds/{hold_id}").json()["state"] == "released"
    _assert_error(deployment.post(f"/api/v1/holds/{hold_id}/confirm", b""), 409, "hold_released")


def test_an_expired_hold_cannot_be_confirmed(deployment: Deployment) -> None:
    before = deployment.stock_parts()
    hold_id = deployment.hold({"qty": 2, "ttl": 0.2}).json()["hold_id"]
    for _ in range(200):  # polling the hold's state, not sleeping on its expiry
        if deployment.get(f"/api/v1/holds/{hold_id}").json()["state"] == "expired":
            break
        time.sleep(0.01)
    assert deployment.get(f"/api/v1/holds/{hold_id}").json()["state"] == "expired"
    _assert_error(deployment.post(f"/api/v1/holds/{hold_id}/confirm", b""), 409, "hold_expired")
    assert deployment.stock_parts() == before


def test_holding_more_than_is_left_holds_nothing(deployment: Deployment) -> None:
    before = deployment.stock_parts()
    refused = deployment.hold({"qty": before["available"] + 1 if before["available"] < 1000 else 1000})
    if before["available"] < 1000:
        _assert_error(refused, 409, "sold_out")
    assert deployment.stock_parts()["held"] == before["held"] + (0 if before["available"] < 1000 else 1000)
    if before["available"] >= 1000:
        deployment.delete(f"/api/v1/holds/{refused.json()['hold_id']}")


@pytest.mark.parametrize(
    "payload",
    [
        {"qty": 1, "ttl": 0},
        {"qty": 1, "ttl": -1},
        {"qty": 1, "ttl": 3601},
        {"qty": 1, "ttl": "5"},
        {"qty": 1, "ttl": True},
        {"qty": 0},
        {"ttl": 5},
    ],
    ids=["ttl-zero", "ttl-negative", "ttl-above-max", "ttl-string", "ttl-bool", "qty-zero", "qty-missing"],
)
def test_bad_hold_requests_are_422(deployment: Deployment, payload: dict[str, object]) -> None:
    before = deployment.stock_parts()
    _assert_error(deployment.hold(payload), 422, "invalid_field")
    assert deployment.stock_parts() == before


def test_unknown_holds_are_404(deployment: Deployment) -> None:
    for hold_id in ("0" * 32, "no-such-hold"):
        _assert_error(deployment.get(f"/api/v1/holds/{hold_id}"), 404, "hold_not_found")
        _assert_error(deployment.post(f"/api/v1/holds/{hold_id}/confirm", b""), 404, "hold_not_found")
        _assert_error(deployment.delete(f"/api/v1/holds/{hold_id}"), 404, "hold_not_found")


def test_a_keyed_hold_is_made_once(deployment: Deployment) -> None:
    key = f"hold-{uuid.uuid4()}"
    first = deployment.hold({"qty": 2, "ttl": 60}, key)
    assert first.status == 201
    again = deployment.hold({"qty": 2, "ttl": 60}, key)
    assert again.status == 201 and again.json() == first.json()
    _assert_error(deployment.hold({"qty": 3, "ttl": 60}, key), 422, "idempotency_conflict")
    confirm_key = f"confirm-{uuid.uuid4()}"
    path = f"/api/v1/holds/{first.json()['hold_id']}/confirm"
    sold = deployment.post(path, b"", {"Idempotency-Key": confirm_key})
    assert deployment.post(path, b"", {"Idempotency-Key": confirm_key}).json() == sold.json()
