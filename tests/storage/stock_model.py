"""A Hypothesis state machine of the stock, run against any engine (test_stock_model.py).

The model is the specification in a few lines: three counters, holds with an expiry, and the
rule that a hold past its ``expires_at`` never counts as held. Every step is run on the store
and on the model, and after every step the store's stock must equal the model's and satisfy
``available + held + sold == capacity``. Restarts reopen the store on its data.

The clock sits half a millisecond off every expiry (it starts at .5 ms and moves by whole
ms; holds last whole ms), so engines that keep time in ms and in float seconds agree; the
exact boundary has tests of its own.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from ticketsys.domain.errors import HoldUnavailable, IdempotencyConflict, OverRelease, SoldOut
from ticketsys.domain.models import Hold, HoldState

from .engines import Clock, Engine

INITIAL = 20


@dataclass
class ModelHold:
    qty: int
    expires_ms: int
    state: HoldState = HoldState.HELD
    order_id: str | None = None


class StockModel:
    def __init__(self, capacity: int) -> None:
        self.capacity = self.available = capacity
        self.held = self.sold = self.sold_direct = 0
        self.holds: dict[str, ModelHold] = {}
        self.keys: dict[str, tuple[int, int, str]] = {}  # key -> (qty, ttl_ms, hold id)
        self.orders: dict[str, int] = {}  # order id -> qty (sale stores)
        self.sales: dict[str, tuple[int, str]] = {}  # order id -> (qty, hold id): holds sold at once

    def expire(self, now_ms: int) -> None:
        for hold in self.holds.values():
            if hold.state is HoldState.HELD and hold.expires_ms <= now_ms:
                self.end(hold, HoldState.EXPIRED)

    def end(self, hold: ModelHold, state: HoldState) -> None:
        hold.state = state
        self.held -= hold.qty
        self.available += hold.qty

    def parts(self) -> tuple[int, int, int, int]:
        return self.available, self.held, self.sold, self.capacity


def machine_for(engine: Engine) -> type[RuleBasedStateMachine]:
    class StockMachine(RuleBasedStateMachine):
        holds = Bundle("holds")

        def __init__(self) -> None:
            super().__init__()
            self.directory = Path(tempfile.mkdtemp(prefix="ticketsys-model-"))
            self.clock = Clock(1_800_000_000.0005)
            self.loop = asyncio.new_event_loop()
            self.store = engine.open(self.loop, INITIAL, self.clock, self.directory)
            self.model = StockModel(INITIAL)

        def teardown(self) -> None:
            try:
                self.loop.run_until_complete(self.store.close())
            finally:
                self.loop.close()
                shutil.rmtree(self.directory, ignore_errors=True)

        def run(self, coroutine: Any) -> Any:
            return self.loop.run_until_complete(coroutine)

        def now_ms(self) -> int:
            return int(self.clock() * 1000)

        # -- holds --------------------------------------------------------------------------

        @rule(
            target=holds,
            qty=st.integers(1, 6),
            ttl_ms=st.integers(1, 4000),
            key=st.sampled_from([None, "a", "b"]),
        )
        def hold(self, qty: int, ttl_ms: int, key: str | None) -> str:
            self.model.expire(self.now_ms())
            fingerprint = f"{qty}:{ttl_ms}"
            seen = self.model.keys.get(key) if key is not None else None
            try:
                hold: Hold = self.run(self.store.hold(qty, ttl_ms / 1000, key, fingerprint))
            except IdempotencyConflict:
                assert seen is not None and seen[:2] != (qty, ttl_ms)
                return "none"
            except SoldOut as exc:
                assert seen is None and qty > self.model.available
                assert exc.remaining == self.model.available
                return "none"
            if seen is not None:
                assert seen[:2] == (qty, ttl_ms) and hold.hold_id == seen[2]
                assert hold.state == self.model.holds[hold.hold_id].state
                return hold.hold_id
            assert qty <= self.model.available
            self.model.available -= qty
            self.model.held += qty
            assert hold.remaining == self.model.available and hold.qty == qty
            assert hold.state is HoldState.HELD
            self.model.holds[hold.hold_id] = ModelHold(qty, self.now_ms() + ttl_ms)
            if key is not None:
                self.model.keys[key] = (qty, ttl_ms, hold.hold_id)
            return hold.hold_id

        @precondition(lambda self: engine.kind == "stock")  # a sale confirms into its own orders
        @rule(hold_id=holds, order=st.sampled_from(["a" * 32, "b" * 32]))
        def confirm(self, hold_id: str, order: str) -> None:
            if hold_id == "none":
                return
            self.model.expire(self.now_ms())
            modelled = self.model.holds[hold_id]
            try:
                hold: Hold = self.run(self.store.confirm(hold_id, order))
            except HoldUnavailable as exc:
                assert modelled.state is not HoldState.HELD
                assert modelled.order_id != order
                assert exc.state == modelled.state
                return
            if modelled.state is HoldState.HELD:
                modelled.state, modelled.order_id = HoldState.CONFIRMED, order
                self.model.held -= modelled.qty
                self.model.sold += modelled.qty
            assert modelled.state is HoldState.CONFIRMED and modelled.order_id == order
            assert hold.state is HoldState.CONFIRMED and hold.order_id == order

        @rule(hold_id=holds)
        def release(self, hold_id: str) -> None:
            if hold_id == "none":
                return
            self.model.expire(self.now_ms())
            modelled = self.model.holds[hold_id]
            try:
                remaining = self.run(self.store.release(hold_id))
            except HoldUnavailable:
                assert modelled.state is HoldState.CONFIRMED
                return
            assert modelled.state is not HoldState.CONFIRMED
            if modelled.state is HoldState.HELD:
                self.model.end(modelled, HoldState.RELEASED)
            assert remaining == self.model.available

        @rule(hold_id=holds)
        def read_hold(self, hold_id: str) -> None:
            if hold_id == "none":
                return
            self.model.expire(self.now_ms())
            hold: Hold = self.run(self.store.get_hold(hold_id))
            modelled = self.model.holds[hold_id]
            assert (hold.qty, hold.state, hold.order_id) == (modelled.qty, modelled.state, modelled.order_id)

        @rule(ms=st.integers(1, 3000))
        def advance(self, ms: int) -> None:
            self.clock.advance(ms / 1000)

        @rule()
        def sweep(self) -> None:
            self.model.expire(self.now_ms())
            self.run(self.store.expire())

        @precondition(lambda self: engine.kind == "stock")
        @rule(
            sales=st.lists(
                st.tuples(
                    st.integers(1, 6),
                    st.sampled_from(["c" * 32, "d" * 32, "e" * 32, "f" * 32]),
                    st.sampled_from([-1000, -2, 2, 3000]),  # ms from now: never on the boundary
                ),
                min_size=1,
                max_size=6,
            )
        )
        def sell_holds(self, sales: list[tuple[int, str, int]]) -> None:
            """A batch of sales, each answered as it would have been alone, in order."""
            now = self.now_ms()
            self.model.expire(now)
            batch = [(qty, (now + offset) / 1000, f"sale:{order}", order) for qty, order, offset in sales]
            answers = self.run(self.store.sell_holds(batch))
            assert len(answers) == len(sales)
            for (qty, order, offset), answer in zip(sales, answers, strict=True):
                seen = self.model.sales.get(order)
                if seen is not None:
                    if seen[0] != qty:
                        assert isinstance(answer, IdempotencyConflict), answer
                    else:
                        assert isinstance(answer, Hold) and answer.hold_id == seen[1], answer
                        assert (answer.state, answer.order_id) == (HoldState.CONFIRMED, order)
                elif offset < 0:
                    assert isinstance(answer, HoldUnavailable) and answer.state is HoldState.EXPIRED
                elif qty > self.model.available:
                    assert isinstance(answer, SoldOut) and answer.remaining == self.model.available
                else:
                    assert isinstance(answer, Hold), answer
                    self.model.available -= qty
                    self.model.sold += qty
                    assert (answer.qty, answer.remaining) == (qty, self.model.available)
                    assert (answer.state, answer.order_id) == (HoldState.CONFIRMED, order)
                    self.model.holds[answer.hold_id] = ModelHold(
                        qty, now + offset, HoldState.CONFIRMED, order
                    )
                    self.model.sales[order] = (qty, answer.hold_id)

        # -- direct changes -----------------------------------------------------------------

        @precondition(lambda self: engine.kind == "stock")
        @rule(qty=st.integers(1, 8))
        def sell(self, qty: int) -> None:
            self.model.expire(self.now_ms())
            try:
                remaining = self.run(self.store.sell(qty))
            except SoldOut:
                assert qty > self.model.available
                return
            self.model.available -= qty
            self.model.sold += qty
            self.model.sold_direct += qty
            assert remaining == self.model.available

        @precondition(lambda self: engine.kind == "stock")
        @rule(qty=st.integers(1, 8))
        def unsell(self, qty: int) -> None:
            self.model.expire(self.now_ms())
            try:
                remaining = self.run(self.store.unsell(qty))
            except OverRelease:
                assert qty > self.model.sold_direct
                return
            self.model.sold -= qty
            self.model.sold_direct -= qty
            self.model.available += qty
            assert remaining == self.model.available

        @rule(qty=st.integers(1, 5))
        def restock(self, qty: int) -> None:
            self.model.expire(self.now_ms())
            assert self.run(self.store.restock(qty)) == self.model.available + qty
            self.model.available += qty
            self.model.capacity += qty

        # -- sales (a store that owns the orders) -------------------------------------------

        @precondition(lambda self: engine.kind == "sale")
        @rule(qty=st.integers(1, 8), key=st.sampled_from([None, "p", "q"]))
        def purchase(self, qty: int, key: str | None) -> None:
            self.model.expire(self.now_ms())
            try:
                order = self.run(self.store.purchase(qty, key, f"qty={qty}"))
            except SoldOut:
                assert qty > self.model.available
                return
            except IdempotencyConflict:
                assert key is not None
                return
            if order.order_id in self.model.orders:  # a repeated key: its first order
                assert key is not None and self.model.orders[order.order_id] == qty
                return
            self.model.available -= qty
            self.model.sold += qty
            self.model.orders[order.order_id] = qty
            assert order.remaining == self.model.available
            assert self.run(self.store.get_order(order.order_id)) == order

        @precondition(lambda self: engine.kind == "sale")
        @rule(hold_id=holds)
        def confirm_hold(self, hold_id: str) -> None:
            if hold_id == "none":
                return
            self.model.expire(self.now_ms())
            modelled = self.model.holds[hold_id]
            try:
                order = self.run(self.store.confirm_hold(hold_id, None, f"confirm={hold_id}"))
            except HoldUnavailable:
                assert modelled.state in (HoldState.EXPIRED, HoldState.RELEASED)
                return
            if modelled.state is HoldState.HELD:
                modelled.state, modelled.order_id = HoldState.CONFIRMED, order.order_id
                self.model.held -= modelled.qty
                self.model.sold += modelled.qty
                self.model.orders[order.order_id] = modelled.qty
            assert modelled.order_id == order.order_id and order.qty == modelled.qty

        # -- restarts -----------------------------------------------------------------------

        @rule()
        def restart(self) -> None:
            self.store = engine.reopen(self.loop, self.store, INITIAL, self.clock, self.directory)

        @invariant()
        def stock_agrees(self) -> None:
            self.model.expire(self.now_ms())
            stock = self.run(self.store.stock())
            assert stock.available + stock.held + stock.sold == stock.capacity
            assert (stock.available, stock.held, stock.sold, stock.capacity) == self.model.parts()
            if engine.kind == "sale":
                assert sum(self.model.orders.values()) == self.model.sold

    StockMachine.__name__ = f"StockMachine_{engine.name.replace('-', '_')}"
    return StockMachine
