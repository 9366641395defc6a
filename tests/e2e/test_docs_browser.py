"""/docs in a real headless Chromium against a real monolith: buy through the page's form with an
Idempotency-Key, buy again with the same key, read the order back, and check what the page
shows; then the same API called from a page on another origin, allowed or not by CORS_ORIGINS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.support import services
from tests.support.browser import Page, chromium_or_skip, chromium_page

pytestmark = pytest.mark.slow

PURCHASE = "#op-purchase_post"
ORDER = "#op-order_get"


@pytest.fixture(scope="module")
def monolith(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Service]:
    chromium_or_skip()
    port = services.free_port()
    # The page is opened at http://localhost:PORT in the CORS test and calls 127.0.0.1:PORT:
    # two origins for the browser, one server.
    service = services.start(
        "monolith",
        tmp_path_factory.mktemp("docs-browser"),
        port=port,
        env={"CORS_ORIGINS": f"http://localhost:{port}"},
    )
    with services.running(service):
        yield service
        assert service.stop() == 0


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_page() as opened:
        yield opened


def _open_docs(page: Page, url: str) -> None:
    page.open(f"{url}/docs")
    page.evaluate(
        "document.body.dataset.ready || new Promise((ok) => document.addEventListener('docs-ready', ok))"
    )


def _unfold(page: Page, operation: str) -> None:
    """Click the operation's summary line open (a closed one's fields cannot be typed into)."""
    if not page.evaluate(f"document.querySelector({json.dumps(operation)}).open"):
        page.click(f"{operation} > summary")


def _send(page: Page, operation: str) -> dict[str, Any]:
    """Press the operation's Send button and wait for the page to show the answer."""
    answer: dict[str, Any] = page.evaluate(
        f"""new Promise((ok) => {{
          const op = document.querySelector({json.dumps(operation)});
          op.addEventListener("answered", (e) => ok(e.detail), {{ once: true }});
          op.querySelector("button.send").click();
        }})"""
    )
    return answer


def _shown(page: Page, operation: str) -> str:
    text: str = page.evaluate(f"document.querySelector({json.dumps(operation + ' pre.out')}).textContent")
    return text


def test_buy_with_an_idempotency_key_and_read_the_order_back(page: Page, monolith: services.Service) -> None:
    before = orjson.loads(services.get(monolith.url, "/api/v1/available")[1])["available"]
    _open_docs(page, monolith.url)
    assert page.evaluate("document.querySelector('h1').textContent") == "ticketsys monolith"

    _unfold(page, PURCHASE)
    page.type_into(f"{PURCHASE} input[data-name='Idempotency-Key']", "docs-browser-key-1")
    page.type_into(f"{PURCHASE} textarea", '{"qty": 3}')
    first = _send(page, PURCHASE)
    bought = orjson.loads(first["body"])
    assert first["status"] == 200
    assert bought["success"] is True and bought["qty"] == 3 and bought["remaining"] == before - 3
    shown = _shown(page, PURCHASE)
    assert shown.startswith("POST /api/v1/purchase  ->  200 OK")
    assert f'"order_id": "{bought["order_id"]}"' in shown and f'"remaining": {before - 3}' in shown

    again = _send(page, PURCHASE)  # the same key and body: the first answer, nothing more taken
    assert again["status"] == 200 and orjson.loads(again["body"]) == bought

    _unfold(page, ORDER)
    page.type_into(f"{ORDER} input[data-name='order_id']", bought["order_id"])
    read = _send(page, ORDER)
    order = orjson.loads(read["body"])
    assert read["status"] == 200
    assert (order["order_id"], order["qty"], order["remaining"]) == (bought["order_id"], 3, before - 3)
    shown = _shown(page, ORDER)
    assert shown.startswith(f"GET /api/v1/orders/{bought['order_id']}  ->  200 OK")
    assert '"qty": 3' in shown

    assert orjson.loads(services.get(monolith.url, "/api/v1/available")[1])["available"] == before - 3
    # Offline: the page asked its own server for everything (itself and openapi.json) and for
    # nothing else, the API calls included.
    urls = page.requested_urls()
    assert f"{monolith.url}/openapi.json" in urls
    assert all(url.startswith(monolith.url + "/") for url in urls), urls


def test_the_page_shows_errors_and_readable_schemas(page: Page, monolith: services.Service) -> None:
    _open_docs(page, monolith.url)
    _unfold(page, PURCHASE)
    _unfold(page, ORDER)
    page.type_into(f"{PURCHASE} textarea", '{"qty": 0}')
    refused = _send(page, PURCHASE)
    assert refused["status"] == 422, refused
    assert orjson.loads(refused["body"])["error"] == "invalid_field"
    page.type_into(f"{ORDER} input[data-name='order_id']", "no-such-order")
    assert _send(page, ORDER)["status"] == 404
    assert "order_not_found" in _shown(page, ORDER)
    # Schemas are tables of fields, not JSON Schema; the shared Error schema is shown once.
    fields = page.evaluate(
        "[...document.querySelectorAll('#schema-Error + p + table td.field')].map(t => t.textContent)"
    )
    assert fields[:3] == ["success *", "error *", "message *"]
    assert page.evaluate("document.querySelectorAll('[id=schema-Error]').length") == 1
    body_rows = page.evaluate(
        f"[...document.querySelectorAll('{PURCHASE} .form table tr')].map(r => r.textContent)"
    )
    assert any(row.startswith("qty *integer, 1 to 1000") for row in body_rows), body_rows
    # The request (inputs, body, Send) comes before the responses.
    order = page.evaluate(
        f"[...document.querySelector('{PURCHASE} .body').children].map(c => c.tagName + '.' + c.className)"
    )
    assert order.index("BUTTON.send") < order.index("H4.")


def _fetch_from_page(page: Page, url: str, key: str) -> Any:
    return page.evaluate(
        f"""fetch({json.dumps(url)}, {{method: "POST", body: '{{"qty": 1}}',
              headers: {{"Content-Type": "application/json", "Idempotency-Key": {json.dumps(key)}}}}})
            .then(async (r) => ({{status: r.status, body: await r.json()}}),
                  (e) => ({{failed: String(e)}}))"""
    )


def test_a_page_on_a_listed_origin_may_call_the_api(page: Page, monolith: services.Service) -> None:
    listed = f"http://localhost:{monolith.port}"
    _open_docs(page, listed)
    answer = _fetch_from_page(page, f"{monolith.url}/api/v1/purchase", "cors-listed-1")
    assert answer["status"] == 200 and answer["body"]["success"] is True
    # The browser asked first (the preflight) because of the JSON body and the key.
    preflights = [
        e["params"]
        for e in page.events
        if e.get("method") == "Network.responseReceived" and e["params"]["type"] == "Preflight"
    ]
    assert preflights and preflights[0]["response"]["status"] == 204


def test_a_page_on_an_unlisted_origin_cannot_read_the_api(page: Page, monolith: services.Service) -> None:
    # The page comes from 127.0.0.1, which CORS_ORIGINS does not list, and calls the same
    # server named localhost: another origin.
    _open_docs(page, monolith.url)
    other = f"http://localhost:{monolith.port}/api/v1/purchase"
    before = orjson.loads(services.get(monolith.url, "/api/v1/available")[1])["available"]
    answer = _fetch_from_page(page, other, "cors-unlisted-1")
    assert "failed" in answer and "Failed to fetch" in answer["failed"]
    # Refused at the preflight: the purchase itself was never sent.
    assert orjson.loads(services.get(monolith.url, "/api/v1/available")[1])["available"] == before
