"""Two Vacancy and two Ticket replicas sharing one stock in Redis, under ≥ 50 concurrent buyers.

The README promises (Scaling out): any number of replicas share one stock without overselling,
any replica answers an order or a retried key, and Ticket fails over to the next Vacancy in
``VACANCY_URL`` when one dies. These tests run real processes on a real redis-server.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.replicas.load import Redis, assert_serial, buyers, start_replicas, stop_all
from tests.support.buyers import Answer, Ledger, available, connected, read_orders, settle, wait_for
from tests.support.figures import RecordProperty, report
from tests.support.services import Service, running

pytestmark = pytest.mark.slow

BUYERS = 60


def _replicas(tmp_path: Path, redis: Redis, stock: int) -> tuple[list[Service], list[Service]]:
    return start_replicas(tmp_path, {"STOCK_STORE": redis.url, "INITIAL_STOCK": str(stock)})


def test_two_vacancies_two_tickets_sell_exactly_the_stock(
    tmp_path: Path, redis: Redis, record_property: RecordProperty
) -> None:
    stock = 1500
    vacancies, tickets = _replicas(tmp_path, redis, stock)
    urls = [ticket.url for ticket in tickets]

    async def main() -> tuple[Ledger, float]:
        ledger = Ledger()
        began = time.monotonic()
        await buyers(BUYERS, urls, ledger, asyncio.Event(), seed=1)
        took = time.monotonic() - began
        async with connected() as http:
            # Every replica, Ticket or Vacancy, sees the one shared stock empty.
            for url in [*urls, *(vacancy.url for vacancy in vacancies)]:
                assert await available(url, http=http) == 0, url
        missing = await read_orders(ledger.sales(), urls, elsewhere=True)
        assert not missing, missing
        return ledger, took

    with running(*vacancies, *tickets):
        ledger, took = asyncio.run(main())
        stop_all([*tickets, *vacancies])

    statuses = ledger.statuses()
    sales = ledger.sales()
    assert set(statuses) <= {200, 409}, f"answers other than 200/409: {statuses}"
    assert ledger.sold() == stock
    assert_serial(sales, stock)
    assert all(int(answer.body["remaining"]) >= 0 for answer in ledger.answers)
    per_ticket = {url: sum(1 for sale in sales.values() if sale.url == url) for url in urls}
    assert all(count > 0 for count in per_ticket.values()), per_ticket  # both replicas sold
    report(
        record_property,
        "two vacancies, two tickets",
        sold=ledger.sold(),
        orders=len(sales),
        answers=len(ledger.answers),
        sold_out_409=statuses[409],
        orders_per_ticket=sorted(per_ticket.values()),
        seconds=round(took, 2),
    )


def test_a_vacancy_killed_mid_load_fails_over_to_the_other(
    tmp_path: Path, redis: Redis, record_property: RecordProperty
) -> None:
    stock = 3000
    vacancies, tickets = _replicas(tmp_path, redis, stock)
    urls = [ticket.url for ticket in tickets]
    killed, survivor = vacancies

    async def main() -> tuple[Ledger, float, float, list[Answer]]:
        ledger, stop = Ledger(), asyncio.Event()
        load = buyers(BUYERS, urls, ledger, stop, seed=2)
        try:
            # Kill when a fifth of the stock is sold: both replicas are busy serving then.
            await wait_for(lambda: ledger.sold() >= stock // 5, 30, "the first fifth sold")
            kill_at = time.monotonic()
            await asyncio.to_thread(killed.kill)  # SIGKILL, then reaped: it is gone
            dead_at = time.monotonic()
            await load
        finally:
            stop.set()
            await load
        settled = await settle(ledger, urls)
        async with connected() as http:
            for url in [*urls, survivor.url]:
                assert await available(url, http=http) == 0, url
        missing = await read_orders(ledger.sales(), urls, elsewhere=True)
        assert not missing, missing
        return ledger, kill_at, dead_at, settled

    with running(*vacancies, *tickets):
        ledger, kill_at, dead_at, settled = asyncio.run(main())
        stop_all([*tickets, survivor])

    after = ledger.since(kill_at)
    failed = [answer for answer in ledger.answers if answer.status not in (200, 409)]
    # Only a purchase in flight when the replica died may have failed; those sent after it
    # was gone go to the survivor (connection refused: never sent, so moved to the next).
    assert all(answer.started < dead_at for answer in failed), failed
    assert all(answer.status == 503 for answer in failed), failed
    assert sum(1 for answer in after if answer.status == 200) >= 0.95 * sum(
        1 for answer in after if answer.status != 409
    ), ledger.statuses(after)
    assert ledger.sold() == stock  # retried keys included: sold once each
    assert_serial(ledger.sales(), stock)
    report(
        record_property,
        "a vacancy killed mid-load",
        sold=ledger.sold(),
        sold_before_kill=sum(a.qty for a in ledger.sales().values() if a.finished < kill_at),
        answers_after_kill=len(after),
        statuses_after_kill=dict(ledger.statuses(after)),
        failed_in_flight=len(failed),
        settled=len(settled),
    )
