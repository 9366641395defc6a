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
from pathlib import Path

import pytest

from tests.support.buyers import (
    CLIENTS,
    NO_ANSWER,
    Answer,
    Ledger,
    available,
    connected,
    new_key,
    read_orders,
    run_buyers,
    settle,
)
from tests.support.figures import RecordProperty, report
from tests.support.services import Service, get, running, start

pytestmark = pytest.mark.slow

INITIAL = 2000
STOCK_ENV = {"INITIAL_STOCK": str(INITIAL)}
RESENT_ACKNOWLEDGED = 25  # acknowledged purchases repeated after the restart: same order, nothing taken
RETRY_DEADLINE = 20.0


class Striker:
    """Sends SIGKILL to ``victim`` the moment half the stock has been acknowledged.

    It counts the 200 answers' qty as they arrive (``run_buyers`` never repeats a purchase, so
    each is an order of its own) rather than asking ``Ledger.sold()``, which goes through the
    whole ledger: on every answer that delay would let the server answer the other buyers'
    requests before the kill, and leave none in flight.
    """

    def __init__(self, victim: Service) -> None:
        self.victim = victim
        self.struck = False
        self.acknowledged_at_kill = 0

    def __call__(self, answer: Answer) -> None:
        if self.struck or answer.status != 200:
            return
        self.acknowledged_at_kill += answer.qty
        if self.acknowledged_at_kill >= INITIAL // 2:
            os.kill(self.victim.pid, signal.SIGKILL)  # not Service.kill(): that blocks the loop on wait()
            self.struck = True

    def stopped(self) -> bool:
        return self.struck


def assert_within_flight(ledger: Ledger, sold: int) -> None:
    """Stock taken may exceed acknowledged sales only by what was in flight at the kill."""
    acknowledged = ledger.sold()
    assert acknowledged <= sold, f"acknowledged sales lost: {acknowledged} acknowledged, {sold} taken"
    assert sold <= acknowledged + ledger.in_flight(), (
        f"{sold} taken, but only {acknowledged} acknowledged + {ledger.in_flight()} in flight"
    )


def sell_until_struck(
    url: str, victim: Service, ledger: Ledger, rng: random.Random, *, keyed: bool
) -> Striker:
    """Buyers on ``url`` until half the stock is acknowledged, when ``victim`` gets SIGKILL."""
    strike = Striker(victim)
    asyncio.run(run_buyers(url, ledger, rng, keyed=keyed, stop=strike.stopped, on_answer=strike))
    assert strike.struck, f"sold out before the kill: {ledger.statuses()}"
    return strike


def settle_then_sell_out(url: str, ledger: Ledger, rng: random.Random) -> None:
    """After the restart: repeat every unresolved purchase with its key (each must end 200:
    its tickets were either taken once already or are still there), check acknowledged ones
    give their first order again, then sell the rest of the stock."""
    settled = asyncio.run(settle(ledger, [url], timeout=RETRY_DEADLINE))
    assert 409 not in ledger.statuses(settled), settled
    asyncio.run(resend_acknowledged(url, ledger))
    asyncio.run(run_buyers(url, ledger, rng, keyed=True))


async def resend_acknowledged(url: str, ledger: Ledger) -> None:
    """Repeat some acknowledged purchases: after the restart each must get its first order."""
    async with connected() as http:
        for order_id, sale in list(ledger.sales().items())[:RESENT_ACKNOWLEDGED]:
            again = await ledger.buy(url, sale.qty, sale.key, http=http)
            assert again.status == 200, again
            assert again.body["order_id"] == order_id, (sale, again)


def test_monolith_kill9_without_keys_keeps_every_acknowledged_sale(
    tmp_path: Path, record_property: RecordProperty
) -> None:
    monolith = start("monolith", tmp_path, env=STOCK_ENV)
    ledger, rng = Ledger(), random.Random(9)
    with running(monolith):
        strike = sell_until_struck(monolith.url, monolith, ledger, rng, keyed=False)

    restarted = start("monolith", tmp_path, env=STOCK_ENV)
    with running(restarted):
        sold = INITIAL - asyncio.run(available(restarted.url))
        lost = len(asyncio.run(read_orders(ledger.sales(), [restarted.url])))
        assert restarted.stop() == 0

    acknowledged = ledger.sold()
    report(
        record_property,
        "monolith kill -9, no keys",
        acknowledged_at_kill=strike.acknowledged_at_kill,
        sold=sold,
        acknowledged=acknowledged,
        in_flight=ledger.in_flight(),
        sold_unacknowledged=sold - acknowledged,
        lost=lost,
        doubled=0,  # without keys nothing is repeated, so nothing can be doubled
    )
    assert lost == 0, "acknowledged orders missing after the restart"
    assert_within_flight(ledger, sold)


def test_monolith_kill9_with_keys_sells_exactly_what_was_acknowledged(
    tmp_path: Path, record_property: RecordProperty
) -> None:
    monolith = start("monolith", tmp_path, env=STOCK_ENV)
    ledger, rng = Ledger(), random.Random(99)
    with running(monolith):
        strike = sell_until_struck(monolith.url, monolith, ledger, rng, keyed=True)
    unanswered = ledger.unresolved()
    in_flight = ledger.in_flight()
    acknowledged_before_retry = ledger.sold()

    restarted = start("monolith", tmp_path, env=STOCK_ENV)
    with running(restarted):
        sold_at_restart = INITIAL - asyncio.run(available(restarted.url))
        lost = len(asyncio.run(read_orders(ledger.sales(), [restarted.url])))
        assert_within_flight(ledger, sold_at_restart)

        settle_then_sell_out(restarted.url, ledger, rng)
        left = asyncio.run(available(restarted.url))
        lost += len(asyncio.run(read_orders(ledger.sales(), [restarted.url])))
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
        acknowledged=ledger.sold(),
        lost=lost,
        doubled=ledger.doubled(),
    )
    assert lost == 0
    assert ledger.doubled() == 0
    assert sold == ledger.sold()
    assert left == 0  # the sale ran to the end: every ticket sold once


def test_vacancy_kill9_with_keys_sells_exactly_what_was_acknowledged(
    tmp_path: Path, record_property: RecordProperty
) -> None:
    vacancy = start("vacancy", tmp_path / "v", env=STOCK_ENV)
    ticket = start("ticket", tmp_path / "t", env={"VACANCY_URL": vacancy.url})
    ledger, rng = Ledger(), random.Random(999)
    with running(ticket, vacancy):
        strike = sell_until_struck(ticket.url, vacancy, ledger, rng, keyed=True)
        vacancy.kill()  # reap it

        # Ticket stays up and says so promptly: 503 vacancy_unavailable, never a hang or a 500.
        assert ticket.process.poll() is None, ticket.log()
        began = time.monotonic()
        probe = asyncio.run(ledger.buy(ticket.url, rng.randint(1, 5), new_key()))
        assert probe.status == 503, probe
        assert probe.error == "vacancy_unavailable", probe
        assert time.monotonic() - began < 2.0
        # Alive but not ready: a balancer would stop sending buyers, a supervisor not restart it.
        assert get(ticket.url, "/healthz")[0] == 200
        assert get(ticket.url, "/readyz")[0] == 503
        down_answers = ledger.statuses()

        revived = start("vacancy", tmp_path / "v", port=vacancy.port, env=STOCK_ENV)
        with running(revived):
            assert get(ticket.url, "/readyz")[0] == 200, "ticket did not reconnect to the revived vacancy"
            sold_at_restart = INITIAL - asyncio.run(available(revived.url))
            assert_within_flight(ledger, sold_at_restart)
            unanswered = ledger.unresolved()
            in_flight = ledger.in_flight()
            acknowledged_before_retry = ledger.sold()
            settle_then_sell_out(ticket.url, ledger, rng)
            left = asyncio.run(available(revived.url))
            assert asyncio.run(available(ticket.url)) == left
            lost = len(asyncio.run(read_orders(ledger.sales(), [ticket.url])))
            assert ticket.stop() == 0
            assert revived.stop() == 0

    sold = INITIAL - left
    report(
        record_property,
        "vacancy kill -9, with keys",
        clients=CLIENTS,
        answered_503=down_answers[503],
        unanswered=down_answers[NO_ANSWER],
        sold_at_restart=sold_at_restart,
        acknowledged_at_kill=strike.acknowledged_at_kill,
        acknowledged_before_retry=acknowledged_before_retry,
        in_flight=in_flight,
        retried=len(unanswered),
        sold=sold,
        acknowledged=ledger.sold(),
        lost=lost,
        doubled=ledger.doubled(),
    )
    assert down_answers[NO_ANSWER] == 0, "ticket dropped connections instead of answering 503"
    assert lost == 0
    assert ledger.doubled() == 0
    assert sold == ledger.sold()
    assert left == 0
