"""The contracts between Ticket, Vacancy and the stores, whichever side of a socket they are on.

Three roles. A ``StockStore`` is Vacancy's: the stock and its holds. An ``OrderStore`` is
Ticket's: orders and the idempotency keys of the requests that made them. A ``SaleStore`` is
both at once, for a process that owns the stock and the orders (the monolith): it can sell and
record the order in one atomic write, so its purchase needs no hold. A ``DirectSale`` is that
one write alone, beside a stock and an order store that live in one Redis.
"""

from __future__ import annotations

from typing import Protocol

from ticketsys.domain.models import Hold, Order, OrderRecord, OrderState, Stock


class VacancyClient(Protocol):
    """How Ticket reaches Vacancy. ``LocalVacancyClient`` awaits the service in-process;
    ``RemoteVacancyClient`` speaks keep-alive HTTP. TicketService never knows which.

    Every call raises ``VacancyUnavailable`` when Vacancy cannot answer (timeout, dead peer):
    the call may or may not have happened. A hold that was made but whose answer was lost
    expires by itself, so nothing here ever needs to be undone by the caller."""

    async def available(self) -> int:
        """Tickets available now."""
        ...

    async def stock(self) -> Stock: ...

    async def hold(self, qty: int, ttl: float, key: str | None = None) -> Hold:
        """Set ``qty`` tickets aside for ``ttl`` seconds; ``SoldOut`` if fewer are available.
        A repeated ``key`` returns the hold it made first, in whatever state it is now."""
        ...

    async def sell_hold(self, qty: int, expires_at: float, order_id: str) -> Hold:
        """A hold of ``qty`` sold to ``order_id`` at once; see ``StockStore.sell_hold``. The
        order id is its key: repeating the call answers the hold it made."""
        ...

    async def get_hold(self, hold_id: str) -> Hold:
        """``HoldNotFound`` for an unknown id."""
        ...

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        """Sell a held hold to ``order_id``; see ``StockStore.confirm``."""
        ...

    async def release(self, hold_id: str) -> int:
        """Put a held hold back on sale; returns what is available after."""
        ...

    async def store_id(self) -> str:
        """The identity of Vacancy's store (which sale Ticket is selling from)."""
        ...

    async def ready(self) -> bool:
        """Whether Vacancy answers now (for readiness probes); never raises."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...


class Lifecycle(Protocol):
    """What every store has: it is opened once at start-up, closed once at shutdown, and
    pinged by readiness probes (``StoreUnavailable`` when it cannot be reached now)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...


class StockStore(Protocol):
    """Where the stock lives. Every change is all-or-nothing and keeps
    ``available + held + sold == capacity``. A hold past its ``expires_at`` never counts as
    held for any decision: each store expires due holds before deciding, and sweeps them in
    the background (``expire``)."""

    store_id: str  # set by open(): a random id made when the store was created

    async def stock(self) -> Stock: ...

    async def available(self) -> int: ...

    async def hold(self, qty: int, ttl: float, key: str | None = None, fingerprint: str = "") -> Hold:
        """Move ``qty`` from available to held until now + ``ttl``; ``SoldOut`` (nothing held)
        if fewer are available. With ``key``: a repeat returns the first hold, whatever its
        state now; ``IdempotencyConflict`` if it was made with another ``fingerprint``."""
        ...

    async def sell_hold(self, qty: int, expires_at: float, key: str, order_id: str) -> Hold:
        """A hold made and confirmed to ``order_id`` in one step: ``qty`` from available to
        sold, if it happens before ``expires_at`` (seconds since the epoch). The key decides
        first: a repeat returns the hold it made (confirmed to its order), whenever it
        comes. Without one made, ``HoldUnavailable`` (expired) once ``expires_at`` has
        passed, so no repeat can sell after that; ``SoldOut`` if too few are available.
        This is a purchase across processes in one round trip (ticket/checkout.py)."""
        ...

    async def sell_holds(self, sales: list[tuple[int, float, str, str]]) -> list[Hold | Exception]:
        """``sell_hold(qty, expires_at, key, order_id)`` for each of ``sales``, in order, each
        answered on its own: its hold, or the error that call would have raised. The sales
        commit together: if the commit fails, each fails with its ``StoreUnavailable``."""
        ...

    async def get_hold(self, hold_id: str) -> Hold: ...

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        """Move a held hold's tickets to sold, to ``order_id``. Repeating it with the same
        ``order_id`` returns the confirmed hold; ``HoldUnavailable`` if it expired, was
        released or was confirmed to another order; ``HoldNotFound`` for an unknown id."""
        ...

    async def release(self, hold_id: str) -> int:
        """Move a held hold back to available; returns what is available after. Releasing a
        released or expired hold changes nothing; ``HoldUnavailable`` if it is confirmed."""
        ...

    async def sell(self, qty: int) -> int:
        """Move ``qty`` from available to sold outside any hold (Vacancy's ``reserve``);
        ``SoldOut`` if fewer are available. Returns what is available after."""
        ...

    async def unsell(self, qty: int) -> int:
        """Move ``qty`` from sold back to available (Vacancy's ``release``); ``OverRelease``
        if fewer were sold outside holds (by ``sell``): a confirmed hold's tickets stay sold."""
        ...

    async def restock(self, qty: int) -> int:
        """Add ``qty`` to the capacity and the available tickets; ``InvalidQuantity`` beyond
        ``MAX_STOCK``."""
        ...

    async def expire(self) -> int:
        """Release every hold past its ``expires_at``; returns how many. Cheap: O(expired)."""
        ...

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` if the store cannot be reached now (readiness)."""
        ...

    def figures(self) -> dict[str, int]:
        """What the store can count cheaply (``holds``, ``orders``, ``keys``), for /status;
        a figure it cannot count without scanning is left out."""
        ...

    async def open(self) -> None:
        """Connect or recover; ``INITIAL_STOCK`` seeds only a store being created.
        ``StoreRefused`` (one line) when the store cannot prove its state."""
        ...

    async def close(self) -> None: ...


class OrderStore(Protocol):
    """Orders, and the idempotency keys of the requests that made them."""

    store_id: str  # set by open()

    async def get(self, order_id: str) -> OrderRecord | None: ...

    async def recall(self, key: str, fingerprint: str) -> OrderRecord | None:
        """The order an earlier request with ``key`` made; ``IdempotencyConflict`` if that
        request asked for something else (another ``fingerprint``)."""
        ...

    async def add(
        self,
        qty: int,
        key: str | None,
        fingerprint: str,
        *,
        hold_id: str | None = None,
        expires_at: float | None = None,
    ) -> OrderRecord:
        """Record a pending order, standing on ``hold_id`` or on a sale valid until
        ``expires_at``, as durably as the store promises, and return the order on record
        for ``key``: the new one, or the one another process recorded first with the same
        key (a void one is replaced). ``StoreUnavailable`` if it may not be recorded."""
        ...

    async def settle(
        self,
        record: OrderRecord,
        state: OrderState,
        *,
        hold_id: str | None = None,
        remaining: int | None = None,
    ) -> OrderRecord:
        """Mark a pending order confirmed (sold on ``hold_id``, ``remaining`` left after it) or
        void. A void order's key stays bound to it (so the same key with another body is still
        a conflict) until ``add`` rebinds it: a retry buys anew. Need not be durable: a
        pending order is settled again from Vacancy."""
        ...

    async def pending(self, limit: int) -> list[OrderRecord]:
        """Pending orders, oldest first (to settle after a crash or a lost answer)."""
        ...

    async def peer(self) -> str | None:
        """The Vacancy store id these orders were sold from (None: none yet)."""
        ...

    async def set_peer(self, store_id: str) -> None: ...

    async def ping(self) -> None: ...

    def figures(self) -> dict[str, int]:
        """As ``StockStore.figures``."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...


class SaleStore(StockStore, Protocol):
    """Stock and orders in one store: a sale is one atomic write, so no hold is needed."""

    async def purchase(self, qty: int, key: str | None, fingerprint: str) -> Order:
        """Sell ``qty`` and record the order in one write (``SoldOut``: nothing taken); a
        repeated ``key`` returns its first order."""
        ...

    async def confirm_hold(self, hold_id: str, key: str | None, fingerprint: str) -> Order:
        """Sell a held hold and record its order in one write; confirming it again returns
        the same order. ``HoldUnavailable`` if it expired or was released."""
        ...

    async def get_order(self, order_id: str) -> Order | None: ...

    async def recall(self, key: str, fingerprint: str) -> Order | None: ...


class DirectSale(Lifecycle, Protocol):
    """A purchase in one step where the stock and the orders are apart but one process owns
    both (the monolith on Redis): sold and recorded together, no hold."""

    async def purchase(self, qty: int, key: str | None, fingerprint: str) -> OrderRecord:
        """The order sold now, confirmed (``SoldOut``: nothing taken); or the one ``key`` is
        bound to, which may be pending (another process recorded it and is selling it)."""
        ...
