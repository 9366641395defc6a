"""The seed guide's walkthrough, and the purchase contract around it, on the Redis store.

tests/apps/test_endpoints.py runs the apps in-process on the memory store only, so this runs
the walkthrough against real processes on a real redis-server: the monolith, and the scaled
topology (two Vacancy and two Ticket replicas), where each step's follow-up goes to the
*other* Ticket replica: any replica must answer what another one sold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.replicas.load import Redis, start_all, start_replicas, stop_all
from tests.support.buyers import PURCHASE, Client, connected
from tests.support.services import running

pytestmark = pytest.mark.slow

STOCK = 1000
JSON_ERROR_KEYS = {"success", "error", "message"}

BAD_BODIES = [
    (b'{"qty": 0}', 422, "invalid_field"),
    (b'{"qty": -3}', 422, "invalid_field"),
    (b'{"qty": "5"}', 422, "invalid_field"),
    (b'{"qty": true}', 422, "invalid_field"),
    (b'{"qty": 1.5}', 422, "invalid_field"),
    (b'{"qty": null}', 422, "invalid_field"),
    (b'{"qty": 1001}', 422, "invalid_field"),  # above MAX_QTY
    (b"{}", 422, "invalid_field"),
    (b"[1]", 422, "invalid_body"),
    (b'{"qty": NaN}', 400, "malformed_json"),
    (b'{"qty": ', 400, "malformed_json"),
    (b"", 400, "malformed_json"),
]


@contextmanager
def _deployment(kind: str, tmp_path: Path, redis: Redis) -> Iterator[tuple[str, str]]:
    """Yields the URL that sells first and the one that follows up (the same for the monolith)."""
    env = {"STOCK_STORE": redis.url, "INITIAL_STOCK": str(STOCK)}
    if kind == "monolith":
        services = start_all(["monolith"], tmp_path, env)
        fronts = [services[0].url] * 2
    else:
        vacancies, tickets = start_replicas(tmp_path, env)
        services = [*tickets, *vacancies]
        fronts = [ticket.url for ticket in tickets]
    with running(*services):
        yield fronts[0], fronts[1]
        stop_all(services)


async def _post(
    http: Client, url: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    status, content = await http.request(url, "POST", PURCHASE, body, headers)
    return status, orjson.loads(content)


async def _available(http: Client, url: str) -> int:
    status, body = await http.get_json(url, "/api/v1/available")
    assert status == 200 and set(body) == {"available"}, (status, body)
    return int(body["available"])


def _is_error(answer: tuple[int, dict[str, Any]], status: int, code: str) -> bool:
    """A JSON error answer of ``status`` and ``code``, in the shape every error has."""
    got, body = answer
    shaped = body.keys() >= JSON_ERROR_KEYS and body["success"] is False
    return got == status and shaped and body["error"] == code


@pytest.mark.parametrize("kind", ["monolith", "microservices"])
def test_seed_walkthrough_on_redis(kind: str, tmp_path: Path, redis: Redis) -> None:
    with _deployment(kind, tmp_path, redis) as (seller, other):

        async def main() -> None:
            async with connected() as http:
                # 1000 on sale; buy 5; the answer and every replica say 995 are left.
                assert await _available(http, seller) == 1000
                status, bought = await _post(http, seller, b'{"qty": 5}')
                assert status == 200, bought
                assert http.last_headers["content-type"] == "application/json"
                assert set(bought) == {"success", "remaining", "message", "qty", "order_id"}
                assert {k: bought[k] for k in ("success", "remaining", "message", "qty")} == {
                    "success": True,
                    "remaining": 995,
                    "message": "Purchase successful!",
                    "qty": 5,
                }
                assert await _available(http, seller) == await _available(http, other) == 995

                # More than is left: 409 sold_out naming what is left, and nothing taken.
                answer = await _post(http, other, b'{"qty": 996}')
                assert _is_error(answer, 409, "sold_out") and answer[1]["remaining"] == 995, answer
                assert await _available(http, seller) == 995

                # A retry with the same Idempotency-Key, on the other replica, answers the first
                # answer and takes nothing; the same key with another body is a conflict.
                key = {"Idempotency-Key": "walkthrough-7f3a"}
                first = await _post(http, seller, b'{"qty": 2}', key)
                again = await _post(http, other, b'{"qty": 2}', key)
                assert first[0] == again[0] == 200 and first[1]["remaining"] == 993, (first, again)
                assert again[1] == first[1]  # same order_id, same remaining
                assert await _available(http, seller) == 993
                answer = await _post(http, other, b'{"qty": 3}', key)
                assert _is_error(answer, 422, "idempotency_conflict"), answer
                bad_key = await _post(http, seller, b'{"qty": 1}', {"Idempotency-Key": "has space"})
                assert _is_error(bad_key, 422, "invalid_idempotency_key"), bad_key

                # Orders: readable from either replica as sold; an unknown id is 404 JSON.
                for order_id, qty, remaining in (
                    (bought["order_id"], 5, 995),
                    (first[1]["order_id"], 2, 993),
                ):
                    for url in (seller, other):
                        status, order = await http.get_json(url, f"/api/v1/orders/{order_id}")
                        assert status == 200, order
                        assert set(order) == {"order_id", "qty", "created_at", "remaining"}
                        assert (order["order_id"], order["qty"], order["remaining"]) == (
                            order_id,
                            qty,
                            remaining,
                        )
                        assert order["created_at"].endswith("Z")
                unknown = await http.get_json(other, "/api/v1/orders/0123456789abcdef01234567")
                assert _is_error(unknown, 404, "order_not_found"), unknown

                # Bad bodies: 422 / 400 as JSON errors, 415 for a body that is not JSON; none
                # of them takes a ticket.
                for body, status, code in BAD_BODIES:
                    answer = await _post(http, seller, body)
                    assert _is_error(answer, status, code), (body, answer)
                answer = await _post(http, seller, b"qty=1", {"Content-Type": "text/plain"})
                assert _is_error(answer, 415, "unsupported_media_type"), answer
                assert await _available(http, seller) == await _available(http, other) == 993

        asyncio.run(main())
