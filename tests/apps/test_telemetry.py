"""The apps' telemetry in-process: request ids, /metrics counting what happened, /status."""

from __future__ import annotations

import io
import logging
from typing import Any

import orjson
import pytest

from tests.asgi import call, run_app
from tests.support.scrape import parse, value
from ticketsys.apps.monolith import build_monolith
from ticketsys.apps.vacancy import build_vacancy
from ticketsys.config import MEMORY, Settings
from ticketsys.http.application import App
from ticketsys.observe import logs

JSON = (b"content-type", b"application/json")


async def _buy(app: App, qty: int, *headers: tuple[bytes, bytes]) -> Any:
    return await call(app, "POST", "/api/v1/purchase", orjson.dumps({"qty": qty}), [JSON, *headers])


async def _scrape(app: App) -> Any:
    answer = await call(app, "GET", "/metrics", headers=[])
    assert answer.status == 200
    assert answer.headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
    return parse(answer.body.decode())


def test_a_well_formed_request_id_is_returned_and_a_bad_one_replaced() -> None:
    async def test(app: App) -> None:
        given = await _buy(app, 1, (b"x-request-id", b"buyer-42"))
        assert given.headers[b"x-request-id"] == b"buyer-42"
        for bad in (b"with space", b"x" * 129, b""):
            replaced = (await _buy(app, 1, (b"x-request-id", bad))).headers[b"x-request-id"]
            assert replaced != bad and 1 <= len(replaced) <= 128
        made = {(await call(app, "GET", "/healthz")).headers[b"x-request-id"] for _ in range(5)}
        assert len(made) == 5  # every answer, errors and infrastructure too, has its own
        assert b"x-request-id" in (await call(app, "GET", "/nowhere")).headers

    run_app(build_monolith(Settings(stock_store=MEMORY)), test)


def test_purchases_are_counted_exactly_and_the_hop_is_local() -> None:
    n = 7

    async def test(app: App) -> None:
        before = await _scrape(app)
        for _ in range(n):
            assert (await _buy(app, 2)).status == 200
        assert (await _buy(app, 1000)).status == 409  # sold out: counted as such, sells nothing
        after = await _scrape(app)

        def rose(name: str, labels: dict[str, str] | None = None) -> float:
            return value(after, name, labels) - value(before, name, labels)

        assert rose("ticketsys_purchases_total", {"outcome": "sold"}) == n
        assert rose("ticketsys_purchases_total", {"outcome": "sold_out"}) == 1
        assert rose("ticketsys_tickets_sold_total") == 2 * n
        hop = {"operation": "sell", "transport": "local"}
        assert rose("ticketsys_vacancy_call_duration_seconds_count", hop) == n + 1
        route = {"route": "/api/v1/purchase", "method": "POST"}
        assert rose("ticketsys_http_requests_total", {**route, "status": "200"}) == n
        assert rose("ticketsys_http_requests_total", {**route, "status": "409"}) == 1
        latency = "ticketsys_http_request_duration_seconds_count"  # by status too, as OpenTelemetry's
        assert rose(latency, {**route, "status": "200"}) == n
        assert rose(latency, {**route, "status": "409"}) == 1
        assert value(after, "ticketsys_stock_tickets", {"part": "sold"}) == 2 * n
        info = {"version": app.version, "service": "monolith", "mode": "monolith", "store": "memory"}
        assert value(after, "ticketsys_build_info", info) == 1
        assert value(after, "process_resident_memory_bytes") > 0

    run_app(build_monolith(Settings(stock_store=MEMORY, initial_stock=100)), test)


def test_an_idempotent_replay_is_counted_as_one_and_sells_nothing() -> None:
    async def test(app: App) -> None:
        key = (b"idempotency-key", b"replay-me")
        first, again = await _buy(app, 3, key), await _buy(app, 3, key)
        assert first.json()["order_id"] == again.json()["order_id"]
        after = await _scrape(app)
        assert value(after, "ticketsys_idempotent_replays_total") == 1
        assert value(after, "ticketsys_purchases_total", {"outcome": "sold"}) == 1
        assert value(after, "ticketsys_tickets_sold_total") == 3

    run_app(build_monolith(Settings(stock_store=MEMORY)), test)


def test_hostile_paths_make_no_series_of_their_own() -> None:
    async def test(app: App) -> None:
        for i in range(50):
            await call(app, "GET", f"/probe/{i}")
        samples = await _scrape(app)
        routes = {
            dict(labels).get("route") for name, labels in samples if name == "ticketsys_http_requests_total"
        }
        assert not any(route and route.startswith("/probe") for route in routes)
        assert (
            value(
                samples,
                "ticketsys_http_requests_total",
                {"route": "unmatched", "method": "GET", "status": "404"},
            )
            == 50
        )

    run_app(build_vacancy(Settings(stock_store=MEMORY)), test)


def test_status_names_the_process_and_the_stock() -> None:
    async def test(app: App) -> None:
        await _buy(app, 4, (b"idempotency-key", b"k-1"))
        status = (await call(app, "GET", "/status")).json()
        assert status["service"] == "monolith" and status["mode"] == "monolith"
        figures = {"available": 96, "held": 0, "sold": 4, "capacity": 100, "holds": 0, "orders": 1, "keys": 1}
        assert status["store"] == {"kind": "memory", **figures}
        assert status["uptime_seconds"] >= 0 and status["pid"] > 0
        assert status["connections"] is None  # not behind the embedded server here

    run_app(build_monolith(Settings(stock_store=MEMORY, initial_stock=100)), test)


@pytest.mark.parametrize("form", ["text", "json"])
def test_log_lines_carry_the_pid_and_the_request_id(form: str) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("info", form, stream)
    try:

        async def test(app: App) -> None:
            await _buy(app, 1, (b"x-request-id", b"trace-me-1"))

        settings = Settings(stock_store=MEMORY, access_log=True)
        run_app(build_monolith(settings), test)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [line for line in stream.getvalue().splitlines() if "trace-me-1" in line]
    assert len(lines) == 1, stream.getvalue()
    if form == "json":
        entry = orjson.loads(lines[0])
        assert entry["request_id"] == "trace-me-1" and entry["logger"] == "ticketsys.access"
        assert entry["method"] == "POST" and entry["path"] == "/api/v1/purchase" and entry["status"] == 200
        assert entry["duration_ms"] >= 0 and entry["peer"] == "test:1" and isinstance(entry["pid"], int)
        assert entry["time"].endswith("Z")
    else:
        assert "[req trace-me-1]" in lines[0] and "[pid " in lines[0]
        assert '"POST /api/v1/purchase" 200' in lines[0]


def test_a_parametrized_path_is_counted_by_its_route_template() -> None:
    async def test(app: App) -> None:
        for i in range(3):
            await call(app, "GET", f"/api/v1/orders/{i:024x}")  # well-formed ids no order has
        samples = await _scrape(app)
        labels = {"route": "/api/v1/orders/{order_id}", "method": "GET", "status": "404"}
        assert value(samples, "ticketsys_http_requests_total", labels) == 3

    run_app(build_monolith(Settings(stock_store=MEMORY)), test)
