"""VacancyService: the rules around the stock (valid quantities and hold times), whatever the
transport and whatever the store."""

from __future__ import annotations

from ticketsys.domain.errors import InvalidQuantity
from ticketsys.domain.interfaces import StockStore
from ticketsys.domain.models import DEFAULT_HOLDS, MAX_STOCK, Hold, HoldRules, Stock, check_quantity


def _sale_key(order_id: str) -> str:
    # Order ids are unguessable and never made twice: the order id is the sale's key.
    return f"sale:{order_id}"


class VacancyService:
    def __init__(self, stock: StockStore, max_qty: int, holds: HoldRules = DEFAULT_HOLDS) -> None:
        self.stock_store = stock
        self.max_qty = max_qty
        self.holds = holds

    @property
    def store_id(self) -> str:
        return self.stock_store.store_id

    async def available(self) -> int:
        return await self.stock_store.available()

    async def stock(self) -> Stock:
        return await self.stock_store.stock()

    async def hold(self, qty: int, ttl: float | None = None, key: str | None = None) -> Hold:
        qty, seconds = check_quantity(qty, self.max_qty), self.holds.ttl(ttl)
        return await self.stock_store.hold(qty, seconds, key, f"qty={qty}:ttl={seconds:g}")

    async def sell_hold(self, qty: int, expires_at: float, order_id: str) -> Hold:
        qty = check_quantity(qty, self.max_qty)
        return await self.stock_store.sell_hold(qty, expires_at, _sale_key(order_id), order_id)

    async def sell_holds(self, sales: list[tuple[int, float, str]]) -> list[Hold | Exception]:
        """``sell_hold`` for each ``(qty, expires_at, order_id)``, committed together, each
        answered on its own (its hold, or its error)."""
        results: list[Hold | Exception | None] = []  # None: the store answers it
        valid: list[tuple[int, float, str, str]] = []
        for qty, expires_at, order_id in sales:
            try:
                valid.append((check_quantity(qty, self.max_qty), expires_at, _sale_key(order_id), order_id))
                results.append(None)
            except InvalidQuantity as exc:
                results.append(exc)
        sold = iter(await self.stock_store.sell_holds(valid) if valid else ())
        return [next(sold) if result is None else result for result in results]

    async def get_hold(self, hold_id: str) -> Hold:
        return await self.stock_store.get_hold(hold_id)

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        return await self.stock_store.confirm(hold_id, order_id)

    async def release(self, hold_id: str) -> int:
        return await self.stock_store.release(hold_id)

    async def reserve(self, qty: int) -> int:
        return await self.stock_store.sell(check_quantity(qty, self.max_qty))

    async def unreserve(self, qty: int) -> int:
        # A release may return a whole sale at once: the store bounds it by what was sold.
        return await self.stock_store.unsell(check_quantity(qty, MAX_STOCK))

    async def restock(self, qty: int) -> int:
        return await self.stock_store.restock(check_quantity(qty, MAX_STOCK))

    def __repr__(self) -> str:
        return f"<VacancyService {self.stock_store!r} max_qty={self.max_qty}>"
