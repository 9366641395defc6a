"""No ticket is lost to a crash: a purchase across processes is a hold that expires by itself
unless its order was recorded and confirmed (ticket/checkout.py).

Microservices with ``PURCHASE_HOLD_TTL=2``, 50 buyers without keys. Ticket is killed
(``kill -9``) mid-sale, or Vacancy is frozen (``SIGSTOP``) for 3 s. Once every hold has had
time to end: ``available + sold == capacity`` exactly with nothing held, the tickets sold are
exactly those of the confirmed orders in Ticket's store (read with ``ticketsys orders
export``, once Ticket has settled what was pending), and every acknowledged order is one of
them.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.support.buyers import Ledger, run_buyers
from tests.support.figures import RecordProperty, report
from tests.support.services import BIN, Service, request, running, start

pytestmark = pytest.mark.slow

INITIAL = 2000
HOLD_TTL = 2.0
ENV = {"INITIAL_STOCK": str(INITIAL), "PURCHASE_HOLD_TTL": str(HOLD_TTL)}


def stock(vacancy: Service) -> dict[str, int]:
    status, parts = request(vacancy.url, "GET", "/api/v1/stock")
    assert status == 200 and isinstance(parts, dict), parts
    assert parts["available"] + parts["held"] + parts["sold"] == parts["capacity"] == INITIAL, parts
    return {name: int(parts[name]) for name in ("available", "held", "sold", "capacity")}


def exported(data_dir: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [str(BIN), "orders", "export", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def settled_orders(data_dir: Path, timeout: float = 15.0) -> list[dict[str, object]]:
    """Ticket's orders once none is pending (a running Ticket settles them each second)."""
    deadline = time.monotonic() + timeout
    while True:
        orders = exported(data_dir)
        if not any(order["state"] == "pending" for order in orders):
            return orders
        assert time.monotonic() < deadline, [o for o in orders if o["state"] == "pending"]
        time.sleep(0.2)  # polling the store, not waiting on a guess


def wait_holds_ended(vacancy: Service) -> dict[str, int]:
    deadline = time.monotonic() + HOLD_TTL + 5
    while (parts := stock(vacancy))["held"] and time.monotonic() < deadline:
        time.sleep(0.1)  # polling Vacancy: its holds expire on their own clock
    return parts


def assert_books_balance(vacancy: Service, orders: list[dict[str, object]], ledger: Ledger) -> dict[str, int]:
    parts = wait_holds_ended(vacancy)
    assert parts["held"] == 0, parts
    confirmed = {str(o["order_id"]): int(o["qty"]) for o in orders if o["state"] == "confirmed"}  # type: ignore[call-overload]
    assert parts["sold"] == sum(confirmed.values()), (parts, len(confirmed))
    acknowledged = ledger.sales()
    missing = [order_id for order_id in acknowledged if order_id not in confirmed]
    assert not missing, f"acknowledged orders not confirmed: {missing[:5]}"
    return parts


def test_ticket_killed_mid_sale_strands_no_ticket(tmp_path: Path, record_property: RecordProperty) -> None:
    vacancy = start("vacancy", tmp_path / "v", env=ENV)
    ticket = start("ticket", tmp_path / "t", env={**ENV, "VACANCY_URL": vacancy.url})
    ledger, rng = Ledger(), random.Random(10)
    killed_at = 0

    def strike(answer: object) -> None:
        nonlocal killed_at
        if not killed_at and ledger.sold() >= INITIAL // 4:
            os.kill(ticket.pid, signal.SIGKILL)
            killed_at = ledger.sold()

    with running(vacancy, ticket):
        asyncio.run(
            run_buyers(ticket.url, ledger, rng, keyed=False, stop=lambda: bool(killed_at), on_answer=strike)
        )
        ticket.kill()
        at_kill = stock(vacancy)
        time.sleep(HOLD_TTL + 1)  # the check: 3 s after the kill, with holds of 2 s
        after = stock(vacancy)
        assert after["held"] == 0, after
        restarted = start(
            "ticket", tmp_path / "t", env={**ENV, "VACANCY_URL": vacancy.url, "LOG_LEVEL": "debug"}
        )
        with running(restarted):
            parts = assert_books_balance(vacancy, settled_orders(tmp_path / "t" / "data"), ledger)
            assert restarted.stop() == 0
        assert vacancy.stop() == 0
    report(
        record_property,
        "ticket kill -9 with holds",
        acknowledged_at_kill=killed_at,
        held_at_kill=at_kill["held"],
        sold=parts["sold"],
        acknowledged=ledger.sold(),
        held_after=after["held"],
    )


def test_vacancy_frozen_strands_no_ticket(tmp_path: Path, record_property: RecordProperty) -> None:
    vacancy = start("vacancy", tmp_path / "v", env=ENV)
    ticket = start("ticket", tmp_path / "t", env={**ENV, "VACANCY_URL": vacancy.url})
    ledger, rng = Ledger(), random.Random(11)
    frozen_at: float | None = None

    def freeze(answer: object) -> None:
        nonlocal frozen_at
        if frozen_at is None and ledger.sold() >= INITIAL // 4:
            vacancy.pause()
            frozen_at = time.monotonic()

    def thawed() -> bool:
        if frozen_at is not None and time.monotonic() - frozen_at >= 3.0:
            vacancy.resume()
            return True
        return False

    with running(vacancy, ticket):
        asyncio.run(run_buyers(ticket.url, ledger, rng, keyed=False, stop=thawed, on_answer=freeze))
        refused = ledger.statuses()[503]
        parts = assert_books_balance(vacancy, settled_orders(tmp_path / "t" / "data"), ledger)
        assert ticket.stop() == 0
        assert vacancy.stop() == 0
    assert refused > 0, "no purchase met the frozen Vacancy"
    report(
        record_property,
        "vacancy frozen with holds",
        refused_503=refused,
        sold=parts["sold"],
        acknowledged=ledger.sold(),
    )
