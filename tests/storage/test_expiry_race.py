"""A confirm racing its hold's expiry, 1,000 times around the deadline, on every engine.

The clock is moved to ``expires_at + offset`` for offsets from -500 to +499 ms (and a few
microseconds either side of the exact instant): before the deadline the confirm sells, at or
after it the hold is expired and nothing is sold. Either way the books balance, nothing stays
held, and no ticket is sold twice (a second confirm of the same hold to another order never
sells again) or lost.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ticketsys.domain.errors import HoldUnavailable
from ticketsys.domain.models import HoldState

from .engines import ENGINES, Clock, Engine

OFFSETS_MS = [*range(-500, 500), -0.004, -0.001, 0.0, 0.001]
STOCK_ENGINES = [engine for engine in ENGINES if engine.kind == "stock"]


@pytest.mark.parametrize("engine", STOCK_ENGINES, ids=[engine.name for engine in STOCK_ENGINES])
def test_confirm_racing_expiry_never_sells_twice_nor_loses(engine: Engine, tmp_path: Path) -> None:
    clock = Clock(1_800_000_000.0)
    loop = asyncio.new_event_loop()
    store = engine.open(loop, len(OFFSETS_MS) * 2, clock, tmp_path)

    async def race() -> tuple[int, int]:
        sold = expired = 0
        for n, offset in enumerate(OFFSETS_MS):
            hold = await store.hold(2, 1.0)
            clock.now = hold.expires_at + offset / 1000
            try:
                confirmed = await store.confirm(hold.hold_id, f"{n:032x}")
            except HoldUnavailable as exc:
                assert exc.state == HoldState.EXPIRED and offset >= 0, (offset, exc)
                expired += 1
            else:
                assert confirmed.state is HoldState.CONFIRMED and offset < 0, offset
                sold += 2
                with pytest.raises(HoldUnavailable):  # never sold again, to anyone
                    await store.confirm(hold.hold_id, f"{n + 10**6:032x}")
            stock = await store.stock()
            assert stock.held == 0 and stock.sold == sold
            assert stock.available + stock.sold == stock.capacity
        return sold, expired

    try:
        sold, expired = loop.run_until_complete(race())
        assert sold == 2 * sum(1 for offset in OFFSETS_MS if offset < 0)
        assert expired == sum(1 for offset in OFFSETS_MS if offset >= 0)
    finally:
        loop.run_until_complete(store.close())
        loop.close()
