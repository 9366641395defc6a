"""Each store knows what it is, and Ticket sells only from the Vacancy store its orders came
from: a Vacancy restarted on an empty DATA_DIR is a new sale, and Ticket refuses it (at
start-up: exit 2 and one line; while running: 503 and not ready)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import services
from tests.support.services import post, running, start

pytestmark = pytest.mark.slow

EXIT_REFUSED = 2


def one_line_refusal(service: services.Service) -> str:
    assert service.process.wait(timeout=30) == EXIT_REFUSED, service.log()
    lines = [line for line in service.log().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_ticket_refuses_a_vacancy_that_serves_another_sale(tmp_path: Path) -> None:
    vacancy = start("vacancy", tmp_path / "v")
    ticket = start("ticket", tmp_path / "t", env={"VACANCY_URL": vacancy.url})
    with running(vacancy, ticket):
        assert post(ticket.url, "/api/v1/purchase", {"qty": 2})[0] == 200
        assert vacancy.stop() == 0
        fresh = start("vacancy", tmp_path / "empty", port=vacancy.port)  # a new DATA_DIR: a new sale
        with running(fresh):
            status, body = post(ticket.url, "/api/v1/purchase", {"qty": 1})
            assert status == 503, body
            assert services.get(ticket.url, "/readyz")[0] == 503
            assert ticket.stop() == 0
            again = start("ticket", tmp_path / "t", env={"VACANCY_URL": fresh.url}, wait=False)
            line = one_line_refusal(again)
            assert "serves stock store" in line and "sold from stock store" in line
            assert fresh.stop() == 0


@pytest.mark.parametrize(
    "damage",
    ["truncate", "foreign", "other-kind"],
)
def test_a_damaged_store_stops_start_up_with_one_line(tmp_path: Path, damage: str) -> None:
    monolith = start("monolith", tmp_path)
    with running(monolith):
        for _ in range(20):
            post(monolith.url, "/api/v1/purchase", {"qty": 1})
        assert monolith.stop() == 0
    store = tmp_path / "data" / "sale.db"
    if damage == "truncate":
        with open(store, "r+b") as file:
            file.truncate(store.stat().st_size // 2)
    elif damage == "foreign":
        store.write_bytes(b"\x00" * 8192)
    else:  # a Vacancy's store put where the monolith's goes
        other = tmp_path / "other"
        vacancy = start("vacancy", other)
        with running(vacancy):
            assert vacancy.stop() == 0
        store.write_bytes((other / "data" / "stock.db").read_bytes())
    again = start("monolith", tmp_path, env={"INITIAL_STOCK": "5000"}, wait=False)
    line = one_line_refusal(again)
    assert str(store) in line
    check = subprocess.run(
        [str(services.BIN), "check", "--data-dir", str(tmp_path / "data")], capture_output=True, text=True
    )
    assert check.returncode == 1 and str(store) in check.stdout
