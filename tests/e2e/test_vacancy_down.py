"""Vacancy dies in microservices mode: Ticket answers 503 JSON within its timeout, naming
nothing of the inside (its log has the detail), says it is not ready, and sells again as soon
as Vacancy is back on the same port."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from tests.e2e.deployments import JSON, Socket
from tests.support import services

DEAD_ANSWER_BOUND = 1.0  # issue 2: a dead Vacancy gives the buyer a 503 within 1 s


def _buy(ticket: Socket, qty: int = 1) -> tuple[int, dict[str, object], float]:
    started = time.monotonic()
    answer = ticket.request("POST", "/api/v1/purchase", orjson.dumps({"qty": qty}), JSON)
    return answer.status, answer.json(), time.monotonic() - started


def test_dead_vacancy_is_503_and_ticket_recovers(tmp_path: Path) -> None:
    vacancy = services.start("vacancy", tmp_path / "vacancy")
    ticket = services.start("ticket", tmp_path / "ticket", env={"VACANCY_URL": vacancy.url})
    front = Socket(ticket.url)
    with services.running(ticket, vacancy):
        assert _buy(front)[0] == 200  # the pool holds a keep-alive connection to Vacancy now
        vacancy.kill()

        for _ in range(3):  # the pooled connection is dead, then nothing listens at all
            status, body, took = _buy(front)
            assert (status, body["error"]) == (503, "vacancy_unavailable")
            assert body["message"] == "the stock service is unavailable, try again shortly"
            assert took < DEAD_ANSWER_BOUND
        assert "answered 503 vacancy_unavailable: vacancy unreachable" in ticket.log()
        assert front.request("GET", "/readyz").status == 503
        assert front.request("GET", "/healthz").status == 200  # alive, only not ready

        revived = services.start("vacancy", tmp_path / "vacancy", port=vacancy.port)
        with services.running(revived):
            status, body, _ = _buy(front, 2)
            assert status == 200, body
            # the journal kept the first sale: 1000 - 1 - 2
            assert body["remaining"] == 997
            assert front.request("GET", "/readyz").status == 200
            assert revived.stop() == 0
        assert ticket.stop() == 0
