"""Observability of real processes, in every deployment mode: /metrics parsed by
prometheus-client counts exactly the purchases made and the hop they took (``local`` in the
monolith, ``http`` between the services, ``redis`` for a monolith whose stock is in Redis);
a request id sent to Ticket is on Vacancy's log line for the same purchase; JSON log lines
parse and carry their fields; a Vacancy replica going down and coming back is logged once each."""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Any

import orjson

from tests.support import services
from tests.support.scrape import Samples, parse, value

N = 12
JSON_LOGS = {"ACCESS_LOG": "1", "LOG_FORMAT": "json", "LOG_LEVEL": "info"}


def _scrape(service: services.Service) -> Samples:
    status, body = services.get(service.url, "/metrics")
    assert status == 200
    return parse(body.decode())


def _buy(service: services.Service, rid: str, qty: int = 1) -> Any:
    status, body = services.post(service.url, "/api/v1/purchase", {"qty": qty}, {"X-Request-ID": rid})
    assert status == 200, body
    return body


def _answer_id(service: services.Service, rid: str | None) -> str | None:
    """The X-Request-ID the embedded server's answer carries, for a request sending ``rid``."""
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    try:
        conn.request("GET", "/healthz", headers={"X-Request-ID": rid} if rid is not None else {})
        response = conn.getresponse()
        response.read()
        return response.getheader("x-request-id")
    finally:
        conn.close()


def _json_lines(service: services.Service) -> list[dict[str, Any]]:
    lines = [line for line in service.log().splitlines() if line.startswith("{")]
    assert lines, service.log()
    return [orjson.loads(line) for line in lines]  # every line that looks like JSON is JSON


def _rose(before: Samples, after: Samples, name: str, labels: dict[str, str] | None = None) -> float:
    return value(after, name, labels) - value(before, name, labels)


def _assert_sales_counted(before: Samples, after: Samples, transport: str) -> None:
    assert _rose(before, after, "ticketsys_purchases_total", {"outcome": "sold"}) == N
    assert _rose(before, after, "ticketsys_tickets_sold_total") == N
    hop = {"operation": "sell", "transport": transport}
    assert _rose(before, after, "ticketsys_vacancy_call_duration_seconds_count", hop) == N
    route = {"route": "/api/v1/purchase", "method": "POST", "status": "200"}
    assert _rose(before, after, "ticketsys_http_requests_total", route) == N


def test_monolith_counts_every_purchase_as_a_local_hop(tmp_path: Path) -> None:
    monolith = services.start("monolith", tmp_path, env=JSON_LOGS)
    with services.running(monolith):
        before = _scrape(monolith)
        for i in range(N):
            _buy(monolith, f"mono-{i}")
        after = _scrape(monolith)
        _assert_sales_counted(before, after, "local")
        assert value(after, "ticketsys_stock_tickets", {"part": "sold"}) == N
        assert (
            _rose(
                before,
                after,
                "ticketsys_store_operation_seconds_count",
                {"store": "sale", "operation": "commit"},
            )
            >= 1
        )
        assert value(after, "ticketsys_http_connections") >= 1
        status = orjson.loads(services.get(monolith.url, "/status")[1])
        assert status["store"]["sold"] == N and status["store"]["orders"] == N
        assert status["store"]["kind"] == "sqlite" and status["store"]["bytes_on_disk"] > 0
        assert status["pid"] == monolith.pid
        assert _answer_id(monolith, "given-1") == "given-1"
        made = _answer_id(monolith, None)
        assert made and made != _answer_id(monolith, None)
        assert _answer_id(monolith, "not ok") not in (None, "not ok")
        assert monolith.stop() == 0
    entries = _json_lines(monolith)
    assert all(entry["pid"] == monolith.pid for entry in entries)
    access = [e for e in entries if e["logger"] == "ticketsys.access" and e["path"] == "/api/v1/purchase"]
    assert [e["request_id"] for e in access] == [f"mono-{i}" for i in range(N)]
    for entry in access:
        assert entry["method"] == "POST" and entry["status"] == 200 and entry["level"] == "info"
        assert (
            entry["duration_ms"] > 0
            and entry["peer"].startswith("127.0.0.1:")
            and entry["time"].endswith("Z")
        )


def test_microservices_count_the_http_hop_and_vacancy_logs_tickets_request_id(tmp_path: Path) -> None:
    vacancy = services.start("vacancy", tmp_path / "vacancy", env=JSON_LOGS)
    ticket = services.start("ticket", tmp_path / "ticket", env={**JSON_LOGS, "VACANCY_URL": vacancy.url})
    with services.running(ticket, vacancy):
        before, vacancy_before = _scrape(ticket), _scrape(vacancy)
        for i in range(N):
            _buy(ticket, f"micro-{i}")
        after, vacancy_after = _scrape(ticket), _scrape(vacancy)
        _assert_sales_counted(before, after, "http")
        sales = {"route": "/api/v1/sales", "method": "POST", "status": "200"}
        # One purchase at a time: each is a batch of one.
        assert _rose(vacancy_before, vacancy_after, "ticketsys_http_requests_total", sales) == N
        assert value(vacancy_after, "ticketsys_stock_tickets", {"part": "sold"}) == N
        pooled = {"replica": vacancy.url}
        states = ("active", "idle")
        connections = sum(value(after, "ticketsys_vacancy_pool", {**pooled, "state": s}) for s in states)
        assert connections >= 1  # the keep-alive connection the purchases went over
        assert value(after, "ticketsys_vacancy_pool", {**pooled, "state": "waiting"}) == 0
        assert value(after, "ticketsys_vacancy_replica_up", pooled) == 1
        status = orjson.loads(services.get(ticket.url, "/status")[1])
        assert status["vacancy"]["replicas"][0]["up"] is True
        assert ticket.stop() == 0 and vacancy.stop() == 0
    seen = {
        rid
        for e in _json_lines(vacancy)
        if e["logger"] == "ticketsys.access" and e["path"] == "/api/v1/sales"
        for rid in e.get("request_ids", ())
    }
    assert {f"micro-{i}" for i in range(N)} <= seen  # Ticket sent each buyer's id on to Vacancy


def test_monolith_on_redis_counts_the_redis_hop(tmp_path: Path, redis_url: str) -> None:
    monolith = services.start("monolith", tmp_path, env={"STOCK_STORE": redis_url})
    with services.running(monolith):
        before = _scrape(monolith)
        for i in range(N):
            _buy(monolith, f"redis-{i}")
        after = _scrape(monolith)
        _assert_sales_counted(before, after, "redis")
        assert (
            _rose(
                before,
                after,
                "ticketsys_store_operation_seconds_count",
                {"store": "redis", "operation": "EVALSHA"},
            )
            >= N
        )
        assert monolith.stop() == 0


def test_a_vacancy_replica_down_and_back_is_logged_once_each(tmp_path: Path) -> None:
    vacancy = services.start("vacancy", tmp_path / "vacancy")
    ticket = services.start(
        "ticket", tmp_path / "ticket", env={"VACANCY_URL": vacancy.url, "LOG_LEVEL": "info"}
    )
    with services.running(ticket, vacancy):
        _buy(ticket, "before")
        assert vacancy.stop() == 0
        for _ in range(4):
            status, _ = services.post(ticket.url, "/api/v1/purchase", {"qty": 1})
            assert status == 503
        down = orjson.loads(services.get(ticket.url, "/status")[1])["vacancy"]["replicas"]
        assert down == [{"url": vacancy.url, "up": False}]
        revived = services.start("vacancy", tmp_path / "vacancy", port=vacancy.port)
        with services.running(revived):
            _buy(ticket, "after")
            _buy(ticket, "again")
            assert ticket.stop() == 0
            assert revived.stop() == 0
    log = ticket.log()
    assert log.count(" is down: ") == 1, log
    assert log.count(" is back") == 1, log


def test_under_hypercorn_the_apps_lines_appear_and_metrics_are_served(tmp_path: Path) -> None:
    monolith = services.start("monolith", tmp_path, env={"LOG_LEVEL": "info"}, hypercorn=True)
    with services.running(monolith):
        _buy(monolith, "hyper-1")
        samples = _scrape(monolith)
        assert value(samples, "ticketsys_purchases_total", {"outcome": "sold"}) == 1
        assert monolith.stop() == 0
    assert "ticketsys [pid " in monolith.log() and "monolith starting (mode monolith" in monolith.log()
