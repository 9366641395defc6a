"""``kill -9`` in the middle of a sell-out, then a restart on the same data directory.

The promise under test (README, Guarantees): an acknowledged purchase survives the process
dying, because its journal record reaches the kernel before the answer is written. What is
not promised is the fate of a purchase whose answer never came: it may or may not have sold.
So the invariant compares the stock with the *acknowledged* sales:

* without keys: ``acknowledged <= initial - available <= acknowledged + qty in flight``;
* with an ``Idempotency-Key`` on every purchase and every unanswered one repeated after the
  restart: ``initial - available == sum of qty over all 200 answers``, exactly, and no key
  ever answered with two orders.

The kill is triggered by counting 200 answers (half the stock acknowledged), never by time,
so it always lands mid-sale with ~50 requests in flight, however fast or slow the machine.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.load import (
    CLIENTS,
    Attempt,
    Connection,
    Sale,
    available,
    buy,
    check_orders,
    retry_until_answered,
    run_buyers,
)
from tests.support.services import Service, get, running, start

pytestmark = pytest.mark.slow

INITIAL = 2000
STOCK_ENV = {"INITIAL_STOCK": str(INITIAL)}
RESENT_ACKNOWLEDGED = 25  # acknowledged purchases repeated after the restart: same order, nothing taken

RecordProperty = Callable[[str, object], None]


class Striker:
    """Sends SIGKILL to ``victim`` the moment half the stock has been acknowledged."""

    def __init__(self, victim: Service, sale: Sale) -> None:
        self.victim = victim
        self.sale = sale
        self.struck = False
        self.acknowledged_at_kill = 0

    def __call__(self, attempt: Attempt) -> None:
        if not self.struck and attempt.acknowledged and self.sale.acknowledged_qty >= INITIAL // 2:
            os.kill(self.victim.pid, signal.SIGKILL)  # not Service.kill(): that blocks the loop on wait()
            self.struck = True
            self.acknowledged_at_kill = self.sale.acknowledged_qty

    def stopped(self) -> bool:
        return self.struck


def report(record_property: RecordProperty, name: str, **figures: int) -> None:
    """Figures on stdout (seen with ``-s``) and in the junit XML."""
    print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    for key, value in figures.items():
        record_property(key, value)


def assert_within_flight(sale: Sale, sold: int) -> None:
    """Stock taken may exceed acknowledged sales only by what was in flight at the kill."""
    acknowledged = sale.acknowledged_qty
    assert acknowledged <= sold, f"acknowledged sales lost: {acknowledged} acknowledged, {sold} taken"
    assert sold <= acknowledged + sale.in_flight_qty, (
        f"{sold} taken, but only {acknowledged} acknowledged + {sale.in_flight_qty} in flight"
    )


async def resend_acknowledged(url: str, sale: Sale) -> None:
    """Repeat some acknowledged purchases: after the restart each must get its first order."""
    conn = Connection(url)
    try:
        for attempt in [a for a in sale.attempts if a.acknowledged][:RESENT_ACKNOWLEDGED]:
            first = attempt.order_ids[0]
            await buy(conn, attempt)
            assert attempt.status == 200, attempt
            assert attempt.order_ids[-1] == first, attempt
    finally:
        conn.close()


def test_monolith_kill9_without_keys_keeps_every_acknowledged_sale(
    tmp_path: Path, record_property: RecordProperty
) -> None:
    monolith = start("monolith", tmp_path, env=STOCK_ENV)
    sale = Sale(keyed=False, rng=random.Random(9))
    strike = Striker(monolith, sale)
    with running(monolith):
        asyncio.run(run_buyers(monolith.url, sale, stop=strike.stopped, on_answer=strike))
    assert strike.struck, f"sold out before the kill: {sale.statuses()}"

    restarted = start("monolith", tmp_path, env=STOCK_ENV)
    with running(restarted):
        sold = INITIAL - asyncio.run(available(restarted.url))
        lost = asyncio.run(check_orders(restarted.url, sale.attempts))
        assert restarted.stop() == 0

    acknowledged = sale.acknowledged_qty
    report(
        record_property,
        "monolith kill -9, no keys",
        acknowledged_at_kill=strike.acknowledged_at_kill,
        sold=sold,
        acknowledged=acknowledged,
        in_flight=sale.in_flight_qty,
        sold_unacknowledged=sold - acknowledged,
        lost=lost,
        doubled=0,  # without keys nothing is repeated, so nothing can be doubled
    )
    assert lost == 0, "acknowledged orders missing after the restart"
    assert_within_flight(sale, sold)


def test_monolith_kill9_with_keys_sells_exactly_what_was_acknowledged(
    tmp_path: Path, record_property: RecordProperty
) -> None:
    monolith = start("monolith", tmp_path, env=STOCK_ENV)
    sale = Sale(keyed=True, rng=random.Random(99))
    strike = Striker(monolith, sale)
    with running(monolith):
        asyncio.run(run_buyers(monolith.url, sale, stop=strike.stopped, on_answer=strike))
    assert strike.struck, f"sold out before the kill: {sale.statuses()}"
    unanswered = sale.unanswered
    in_flight = sale.in_flight_qty
    acknowledged_before_retry = sale.acknowledged_qty

    restarted = start("monolith", tmp_path, env=STOCK_ENV)
    with running(restarted):
        sold_at_restart = INITIAL - asyncio.run(available(restarted.url))
        lost = asyncio.run(check_orders(restarted.url, sale.attempts))
        assert_within_flight(sale, sold_at_restart)

        asyncio.run(retry_until_answered(restarted.url, unanswered))
        assert all(a.status == 200 for a in unanswered), [a for a in unanswered if a.status != 200]
        asyncio.run(resend_acknowledged(restarted.url, sale))
        # The rest of the sale, to the last ticket.
        asyncio.run(run_buyers(restarted.url, sale))
        left = asyncio.run(available(restarted.url))
        lost += asyncio.run(check_orders(restarted.url, sale.attempts))
        assert restarted.stop() == 0

    sold = INITIAL - left
    report(
        record_property,
        "monolith kill -9, with keys",
        sold_at_restart=sold_at_restart,
        acknowledged_at_kill=strike.acknowledged_at_kill,
        acknowledged_before_retry=acknowledged_before_retry,
        in_flight=in_flight,
        retried=len(unanswered),
        sold=sold,
        acknowledged=sale.acknowledged_qty,
        lost=lost,
        doubled=sale.doubled(),
    )
    assert lost == 0
    assert sale.doubled() == 0
    assert sold == sale.acknowledged_qty
    assert left == 0  # the sale ran to the end: every ticket sold once


def test_vacancy_kill9_with_keys_sells_exactly_what_was_acknowledged(
    tmp_path: Path, record_property: RecordProperty
) -> None:
    vacancy = start("vacancy", tmp_path / "v", env=STOCK_ENV)
    ticket = start("ticket", tmp_path / "t", env={"VACANCY_URL": vacancy.url})
    sale = Sale(keyed=True, rng=random.Random(999))
    strike = Striker(vacancy, sale)
    with running(ticket, vacancy):
        asyncio.run(run_buyers(ticket.url, sale, stop=strike.stopped, on_answer=strike))
        assert strike.struck, f"sold out before the kill: {sale.statuses()}"
        vacancy.kill()  # reap it

        # Ticket stays up and says so promptly: 503 vacancy_unavailable, never a hang or a 500.
        assert ticket.process.poll() is None, ticket.log()
        probe = sale.new_attempt()
        began = time.monotonic()
        asyncio.run(_buy_once(ticket.url, probe))
        assert probe.status == 503, probe
        assert probe.body.get("error") == "vacancy_unavailable", probe
        assert time.monotonic() - began < 2.0
        # Alive but not ready: a balancer would stop sending buyers, a supervisor not restart it.
        assert get(ticket.url, "/healthz")[0] == 200
        assert get(ticket.url, "/readyz")[0] == 503
        down_answers = sale.statuses()

        revived = start("vacancy", tmp_path / "v", port=vacancy.port, env=STOCK_ENV)
        with running(revived):
            assert get(ticket.url, "/readyz")[0] == 200, "ticket did not reconnect to the revived vacancy"
            sold_at_restart = INITIAL - asyncio.run(available(revived.url))
            assert_within_flight(sale, sold_at_restart)
            unanswered = sale.unanswered
            in_flight = sale.in_flight_qty
            acknowledged_before_retry = sale.acknowledged_qty
            asyncio.run(retry_until_answered(ticket.url, unanswered))
            assert all(a.status == 200 for a in unanswered), [a for a in unanswered if a.status != 200]
            asyncio.run(resend_acknowledged(ticket.url, sale))
            asyncio.run(run_buyers(ticket.url, sale))
            left = asyncio.run(available(revived.url))
            assert asyncio.run(available(ticket.url)) == left
            lost = asyncio.run(check_orders(ticket.url, sale.attempts))
            assert ticket.stop() == 0
            assert revived.stop() == 0

    sold = INITIAL - left
    report(
        record_property,
        "vacancy kill -9, with keys",
        clients=CLIENTS,
        answered_503=down_answers[503],
        unanswered=down_answers[None],
        sold_at_restart=sold_at_restart,
        acknowledged_at_kill=strike.acknowledged_at_kill,
        acknowledged_before_retry=acknowledged_before_retry,
        in_flight=in_flight,
        retried=len(unanswered),
        sold=sold,
        acknowledged=sale.acknowledged_qty,
        lost=lost,
        doubled=sale.doubled(),
    )
    assert down_answers[None] == 0, "ticket dropped connections instead of answering 503"
    assert lost == 0
    assert sale.doubled() == 0
    assert sold == sale.acknowledged_qty
    assert left == 0


async def _buy_once(url: str, attempt: Attempt) -> None:
    conn = Connection(url)
    try:
        await buy(conn, attempt)
    finally:
        conn.close()
