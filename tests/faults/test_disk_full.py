"""A disk that fills, then is freed: a real tmpfs of a few hundred KiB under DATA_DIR.

While full, purchases answer 503 ``store_unavailable`` and sell nothing (the transaction that
could not be written rolled back whole); once space is back, sales resume without a restart
or a hand edit; after ``kill -9`` and a restart every acknowledged order is readable and the
tickets sold are exactly the acknowledged ones.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.buyers import Ledger, available, connected, read_orders
from tests.support.figures import RecordProperty, report
from tests.support.services import Service, request, running, start

pytestmark = pytest.mark.slow

INITIAL = 100_000


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root, as .ci/run has)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the disk-full tests need root to mount a tmpfs")
        pytest.skip("needs root to mount a tmpfs")
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def resize(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


async def buy_until_full(url: str, ledger: Ledger, limit: int = 20_000) -> int:
    """Buy one ticket at a time until the store refuses; then a few more refusals."""
    refused = 0
    async with connected() as http:
        for _ in range(limit):
            answer = await ledger.buy(url, 1, None, http=http)
            if answer.status == 503:
                assert answer.error == "store_unavailable", answer
                refused += 1
                if refused == 5:
                    return refused
            else:
                assert answer.status == 200, answer
    raise AssertionError(f"the disk never filled in {limit} purchases")


async def buy_together_until_full(url: str, ledger: Ledger, buyers: int = 16, limit: int = 20_000) -> int:
    """``buyers`` buying one ticket at a time side by side (so that their sales reach Vacancy
    in batches) until each has been refused twice."""
    bought = 0

    async def buyer() -> int:
        nonlocal bought
        refused = 0
        async with connected() as http:
            while refused < 2:
                answer = await ledger.buy(url, 1, None, http=http)
                if answer.status == 503:
                    assert answer.error == "vacancy_unavailable", answer
                    refused += 1
                else:
                    assert answer.status == 200, answer
                    bought += 1
                    assert bought < limit, f"the disk never filled in {limit} purchases"
        return refused

    return sum(await asyncio.gather(*(buyer() for _ in range(buyers))))


async def buy(url: str, ledger: Ledger, count: int) -> None:
    async with connected() as http:
        for _ in range(count):
            answer = await ledger.buy(url, 1, None, http=http)
            assert answer.status == 200, answer


def assert_restart_keeps_the_books(service: Service, directory: Path, ledger: Ledger, stock_url: str) -> int:
    status, parts = request(stock_url, "GET", "/api/v1/stock")
    assert status == 200 and parts["available"] + parts["held"] + parts["sold"] == parts["capacity"], parts
    missing = asyncio.run(read_orders(ledger.sales(), [service.url]))
    assert missing == [], missing[:3]
    sold = INITIAL - asyncio.run(available(stock_url))
    assert sold == ledger.sold(), f"{sold} sold, {ledger.sold()} acknowledged: a refused purchase sold"
    return sold


def test_monolith_disk_full_then_freed(tmp_path: Path, record_property: RecordProperty) -> None:
    env = {"INITIAL_STOCK": str(INITIAL), "FSYNC": "always", "DATA_DIR": str(tmp_path / "disk")}
    ledger = Ledger()
    with small_disk(tmp_path / "disk", "160k") as disk:
        monolith = start("monolith", tmp_path, env=env)
        with running(monolith):
            refused = asyncio.run(buy_until_full(monolith.url, ledger))
            sold_when_full = ledger.sold()
            assert INITIAL - asyncio.run(available(monolith.url)) == sold_when_full
            resize(disk, "8m")
            asyncio.run(buy(monolith.url, ledger, 3))  # sales resume: no restart, no hand edit
            monolith.kill()
        restarted = start("monolith", tmp_path, env=env)
        with running(restarted):
            sold = assert_restart_keeps_the_books(restarted, disk, ledger, restarted.url)
            assert restarted.stop() == 0
    report(record_property, "monolith disk full", sold_when_full=sold_when_full, refused=refused, sold=sold)


def test_ticket_disk_full_then_freed(tmp_path: Path, record_property: RecordProperty) -> None:
    env = {"INITIAL_STOCK": str(INITIAL), "FSYNC": "always"}
    ledger = Ledger()
    vacancy = start("vacancy", tmp_path / "v", env=env)
    with running(vacancy), small_disk(tmp_path / "disk", "160k") as disk:
        ticket_env = {**env, "DATA_DIR": str(disk), "VACANCY_URL": vacancy.url}
        ticket = start("ticket", tmp_path / "t", env=ticket_env)
        with running(ticket):
            refused = asyncio.run(buy_until_full(ticket.url, ledger))
            resize(disk, "8m")
            asyncio.run(buy(ticket.url, ledger, 3))
            ticket.kill()
        restarted = start("ticket", tmp_path / "t", env=ticket_env)
        with running(restarted):
            sold = assert_restart_keeps_the_books(restarted, disk, ledger, vacancy.url)
            assert restarted.stop() == 0
        assert vacancy.stop() == 0
    report(record_property, "ticket disk full", refused=refused, sold=sold)


def test_vacancy_disk_full_then_freed(tmp_path: Path, record_property: RecordProperty) -> None:
    """Vacancy's store fills under buyers side by side: each batch of sales that cannot be
    committed is refused whole (503 to each buyer), nothing of it sold; the orders Ticket
    recorded for them stay pending and are voided later."""
    env = {"INITIAL_STOCK": str(INITIAL), "FSYNC": "always"}
    ledger = Ledger()
    with small_disk(tmp_path / "disk", "160k") as disk:
        vacancy_env = {**env, "DATA_DIR": str(disk)}
        vacancy = start("vacancy", tmp_path / "v", env=vacancy_env)
        ticket = start("ticket", tmp_path / "t", env={**env, "VACANCY_URL": vacancy.url})
        with running(ticket, vacancy):
            refused = asyncio.run(buy_together_until_full(ticket.url, ledger))
            assert INITIAL - asyncio.run(available(vacancy.url)) == ledger.sold()
            resize(disk, "8m")
            asyncio.run(buy(ticket.url, ledger, 3))  # sales resume: no restart, no hand edit
            vacancy.kill()
            revived = start("vacancy", tmp_path / "v", port=vacancy.port, env=vacancy_env)
            with running(revived):
                sold = assert_restart_keeps_the_books(ticket, disk, ledger, revived.url)
                assert revived.stop() == 0
            assert ticket.stop() == 0
    report(record_property, "vacancy disk full", refused=refused, sold=sold)
