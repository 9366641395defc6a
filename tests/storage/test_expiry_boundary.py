"""The exact boundary of a hold's life, the same in every stock engine: a hold whose
``expires_at`` is now or past is expired for every decision; a moment before, it is held.

(The state machine keeps its clock off every expiry, so that engines keeping time in ms and
in float seconds agree there; this is the test of the boundary itself.) The clock starts
between two milliseconds, as a real clock does: the rule holds for the ``expires_at`` each
engine answers, whatever it rounded.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

from ticketsys.domain.errors import HoldUnavailable
from ticketsys.domain.models import HoldState, Stock

from .engines import ENGINES, Clock, Engine

STOCK_ENGINES = [engine for engine in ENGINES if engine.kind == "stock"]
ORDER = "a" * 32


def _on(engine: Engine, offset: float) -> tuple[HoldState, Stock]:
    """Make a hold, set the clock to its ``expires_at`` + ``offset``, confirm it: what
    became of it, and the stock after."""
    directory = Path(tempfile.mkdtemp(prefix="ticketsys-boundary-"))
    loop = asyncio.new_event_loop()
    clock = Clock(1_800_000_000.0007)
    store = engine.open(loop, 10, clock, directory)
    try:
        hold = loop.run_until_complete(store.hold(3, 1.5))
        clock.now = hold.expires_at + offset
        try:
            state = loop.run_until_complete(store.confirm(hold.hold_id, ORDER)).state
        except HoldUnavailable as exc:
            state = HoldState(exc.state)
        return state, loop.run_until_complete(store.stock())
    finally:
        loop.run_until_complete(store.close())
        loop.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("engine", STOCK_ENGINES, ids=[engine.name for engine in STOCK_ENGINES])
@pytest.mark.parametrize("offset", [0.0, 0.0001, 1.0])
def test_a_hold_at_or_past_its_expiry_is_expired(engine: Engine, offset: float) -> None:
    assert _on(engine, offset) == (HoldState.EXPIRED, Stock(10, 0, 0, 10))


@pytest.mark.parametrize("engine", STOCK_ENGINES, ids=[engine.name for engine in STOCK_ENGINES])
@pytest.mark.parametrize("offset", [-0.0004, -0.001, -1.0])
def test_a_hold_before_its_expiry_is_confirmed(engine: Engine, offset: float) -> None:
    assert _on(engine, offset) == (HoldState.CONFIRMED, Stock(7, 0, 3, 10))
