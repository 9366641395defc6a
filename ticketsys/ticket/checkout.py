"""How a purchase becomes an order: in one store, or across a process boundary by a hold.

``StoreCheckout`` (the monolith, and any process that owns the stock and the orders in one
store): selling and recording the order is one atomic write of a ``SaleStore``. A crash loses
both or neither; no hold is needed.

``HoldCheckout`` (Ticket in microservices, and the monolith on Redis): Vacancy owns the stock,
Ticket the orders, and no write spans both. A purchase is:

1. **record** the order at Ticket, *pending*, with the instant ``expires_at`` (now +
   ``PURCHASE_HOLD_TTL``) until which it may be sold, durably (committed, and fsynced under
   ``FSYNC=always``) before going on;
2. **hold and confirm** at Vacancy in one request (``sell_hold``): a hold of ``qty`` made
   already sold *to that order id*, under a key derived from it, refused once ``expires_at``
   has passed;
3. **settle** the order confirmed (with the hold and what is left), and answer the buyer.

Given a ``DirectSale`` (the monolith on Redis: one process owns both stores, in one Redis), a
purchase is that one script instead, recorded confirmed and sold in one step; a key it finds
bound to a pending order (a Ticket replica sharing the Redis recorded it) is completed as
below.

A buyer's own hold (``POST /api/v1/holds``, then confirm) takes the longer road: the hold is
made first; confirming it records the order pending, naming the hold, then confirms the hold
to it (``confirm``), then settles.

Why no ticket is sold twice or lost, whatever dies when. Vacancy's state is the truth; Ticket's
order state only caches it. Tickets are sold only by step 2 (or a confirm), which names an
order already on record at Ticket: every sold ticket has its order. An order is *confirmed*
only after Vacancy said it sold it. A pending order is settled by repeating its step 2 with
the same key, but only once ``expires_at`` (plus a margin for clock skew) has passed: the key
answers the hold that step 2 made, if it made one (then the order is confirmed), and without
one Vacancy refuses, because the time has passed, and forever after (then the order is *void*:
nothing was sold to it, and it is never shown). A pending order on a buyer's hold is settled
by reading the hold (confirmed to it, or ended). Nothing is ever held on a purchase's behalf,
so a crash strands no ticket; a buyer's hold that is never confirmed expires by itself.

Each interleaving of a purchase, with what each side ends with:

- dies before 1, or 1 fails: nothing recorded, nothing sold.
- dies after 1, before 2 is sent, or 2 is lost on the way: a pending order -> after
  ``expires_at`` the repeat is refused -> void; nothing sold.
- 2 arrives after ``expires_at`` (Ticket stalled, Vacancy frozen and thawed late): refused ->
  void; the buyer got 503 and nothing was sold.
- 2 sold but its answer is lost (timeout, dead peer): pending -> the repeat answers the hold
  -> confirmed (the buyer got 503: a retry with the same key answers that order).
- dies after 2, before 3: pending -> the repeat answers the hold -> confirmed.
- 2 sold out: void at once, 409.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from time import perf_counter
from typing import Any, Protocol

from ticketsys.domain.errors import (
    HoldNotFound,
    HoldUnavailable,
    SoldOut,
    StoreRefused,
    StoreUnavailable,
    VacancyUnavailable,
)
from ticketsys.domain.interfaces import DirectSale, OrderStore, SaleStore, VacancyClient
from ticketsys.domain.models import HoldState, Order, OrderRecord, OrderState
from ticketsys.ticket.counts import SellTiming

log = logging.getLogger("ticketsys.ticket")

# Pending orders are settled in rounds of this many, every SETTLE_INTERVAL seconds.
SETTLE_BATCH = 100
SETTLE_INTERVAL = 1.0
# A purchase's pending order is settled this long after its expires_at: the hosts' clocks may
# differ by about this much (NTP keeps them well within it), and a request may still sit in a
# socket buffer. Until then its step 2 might still sell, and reading could not say.
SETTLE_MARGIN = 5.0


def _ignore(_: Any) -> None:
    pass


class Checkout(Protocol):
    @property
    def store_id(self) -> str:
        """The order store's identity (scopes the keys this Ticket sends to Vacancy)."""
        ...

    async def purchase(self, qty: int, key: str | None, fingerprint: str) -> Order: ...

    async def confirm(self, hold_id: str, key: str | None, fingerprint: str) -> Order: ...

    async def order(self, order_id: str) -> Order | None: ...

    async def recall(self, key: str, fingerprint: str) -> Order | None: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...


class StoreCheckout:
    """``timing``: told how long each sell took (the monolith's equivalent of the call to
    Vacancy, so that the two modes' hops are seen in the same units), and of each failure."""

    __slots__ = ("_failed", "_record", "_sale")

    def __init__(self, sale: SaleStore, timing: SellTiming | None = None) -> None:
        self._sale = sale
        timing = timing or SellTiming(_ignore, _ignore)
        self._record, self._failed = timing.record, timing.failed

    @property
    def store_id(self) -> str:
        return self._sale.store_id

    async def purchase(self, qty: int, key: str | None, fingerprint: str) -> Order:
        began = perf_counter()
        try:
            order = await self._sale.purchase(qty, key, fingerprint)
        except Exception as exc:
            self._record(perf_counter() - began)
            self._failed(exc)
            raise
        self._record(perf_counter() - began)
        return order

    async def confirm(self, hold_id: str, key: str | None, fingerprint: str) -> Order:
        return await self._sale.confirm_hold(hold_id, key, fingerprint)

    async def order(self, order_id: str) -> Order | None:
        return await self._sale.get_order(order_id)

    async def recall(self, key: str, fingerprint: str) -> Order | None:
        return await self._sale.recall(key, fingerprint)

    async def open(self) -> None:
        pass  # the store is opened by its owner (the app's start-up)

    async def close(self) -> None:
        pass


class HoldCheckout:
    def __init__(
        self,
        vacancy: VacancyClient,
        orders: OrderStore,
        purchase_ttl: float,
        *,
        vacancy_url: str = "",
        clock: Callable[[], float] = time.time,
        direct: DirectSale | None = None,
        timing: SellTiming | None = None,
    ) -> None:
        self.vacancy = vacancy
        self._direct = direct
        timing = timing or SellTiming(_ignore, _ignore)
        self._record, self._failed = timing.record, timing.failed
        self._clock = clock
        self.orders = orders
        self.purchase_ttl = purchase_ttl
        self._vacancy_url = vacancy_url
        self._settling: set[str] = set()  # order ids a request of this process is settling
        self._peer_checked = False
        self.mismatch: str | None = None  # why this Ticket refuses Vacancy's store, if it does
        self._settler: asyncio.Task[None] | None = None

    @property
    def store_id(self) -> str:
        return self.orders.store_id

    # -- purchase -----------------------------------------------------------------------------

    async def purchase(self, qty: int, key: str | None, fingerprint: str) -> Order:
        if self._direct is not None:
            return await self._purchase_directly(self._direct, qty, key, fingerprint)
        if key is not None:
            found = await self.orders.recall(key, fingerprint)
            if found is not None:
                order = await self._complete(found)
                if order is not None:
                    return order
                # void: nothing was sold to it; buy anew (``add`` rebinds the key)
        if not self._peer_checked:  # checked once, not a coroutine call every purchase
            await self._check_peer()
        expires_at = round(self._clock() + self.purchase_ttl, 3)
        record = await self.orders.add(qty, key, fingerprint, expires_at=expires_at)
        try:  # ``record`` is another process's if it recorded this key's order first
            order = await self._complete(record)
        except HoldUnavailable:
            order = None
        if order is None:
            raise VacancyUnavailable("the purchase did not reach the stock service in time")
        return order

    async def _purchase_directly(
        self, direct: DirectSale, qty: int, key: str | None, fingerprint: str
    ) -> Order:
        if not self._peer_checked:
            await self._check_peer()
        for _ in range(2):  # again only if the key's pending order turned out void: buy anew
            began = perf_counter()
            try:
                record = await direct.purchase(qty, key, fingerprint)
            except Exception as exc:
                self._record(perf_counter() - began)
                self._failed(exc)
                raise
            self._record(perf_counter() - began)
            try:
                order = await self._complete(record)  # confirmed already, unless another's
            except HoldUnavailable:
                order = None
            if order is not None:
                return order
        raise VacancyUnavailable("the purchase did not reach the stock in time")

    async def confirm(self, hold_id: str, key: str | None, fingerprint: str) -> Order:
        if key is not None:
            found = await self.orders.recall(key, fingerprint)
            if found is not None:
                order = await self._complete(found)
                if order is not None:
                    return order
        await self._check_peer()
        hold = await self.vacancy.get_hold(hold_id)
        if hold.state is HoldState.CONFIRMED:
            return await self._sold_already(hold_id, hold.order_id)
        if hold.state is not HoldState.HELD:
            raise HoldUnavailable(hold_id, hold.state)
        record = await self.orders.add(hold.qty, key, fingerprint, hold_id=hold_id)
        try:
            order = await self._complete(record)
        except HoldUnavailable as exc:
            if exc.state == HoldState.CONFIRMED:  # confirmed to another order meanwhile
                return await self._sold_already(hold_id, exc.order_id)
            raise
        if order is None:
            raise HoldUnavailable(hold_id, HoldState.EXPIRED)
        return order

    async def _sold_already(self, hold_id: str, order_id: str | None) -> Order:
        """A second confirm returns the order the hold was sold to, if it is in this store."""
        found = await self.orders.get(order_id) if order_id else None
        if found is None or found.state is OrderState.VOID:
            raise HoldUnavailable(hold_id, HoldState.CONFIRMED, order_id)
        order = await self._settled(found)
        if order is None:
            raise HoldUnavailable(hold_id, HoldState.CONFIRMED, order_id)
        return order

    async def _complete(self, record: OrderRecord) -> Order | None:
        """Sell a pending order at Vacancy (its step 2, or its hold's confirm; the buyer is
        here, asking): the order if sold, None if its time or its hold ended; ``SoldOut``;
        ``HoldUnavailable`` (confirmed) if its hold was sold to another order."""
        if record.state is not OrderState.PENDING:
            return record.order if record.state is OrderState.CONFIRMED else None
        order = record.order
        self._settling.add(order.order_id)
        try:
            if record.hold_id is not None:
                hold = await self.vacancy.confirm(record.hold_id, order.order_id)
            else:
                assert record.expires_at is not None  # a purchase records its deadline
                hold = await self.vacancy.sell_hold(order.qty, record.expires_at, order.order_id)
        except SoldOut:
            await self.orders.settle(record, OrderState.VOID)
            raise
        except HoldUnavailable as exc:
            await self.orders.settle(record, OrderState.VOID)
            if exc.state == HoldState.CONFIRMED:
                raise
            return None
        finally:
            self._settling.discard(order.order_id)
        if hold.order_id != order.order_id:  # a key that sold to another order: never ours
            await self.orders.settle(record, OrderState.VOID)
            raise VacancyUnavailable(f"vacancy answered a hold of order {hold.order_id} for {order.order_id}")
        settled = await self.orders.settle(
            record, OrderState.CONFIRMED, hold_id=hold.hold_id, remaining=hold.remaining
        )
        return settled.order

    # -- reading and settling -----------------------------------------------------------------

    async def order(self, order_id: str) -> Order | None:
        found = await self.orders.get(order_id)
        return None if found is None else await self._settled(found)

    async def recall(self, key: str, fingerprint: str) -> Order | None:
        found = await self.orders.recall(key, fingerprint)
        return None if found is None else await self._settled(found)

    async def _settled(self, record: OrderRecord) -> Order | None:
        """The order if it is sold, learning a pending one's outcome once it is decided: a
        purchase's after its ``expires_at``, a buyer's hold's from the hold."""
        if record.state is not OrderState.PENDING:
            return record.order if record.state is OrderState.CONFIRMED else None
        if record.hold_id is None:
            assert record.expires_at is not None
            if self._clock() < record.expires_at + SETTLE_MARGIN:
                return None  # undecided: step 2 may still arrive and sell
            try:
                return await self._complete(record)  # refused now, or answered by its key
            except (SoldOut, HoldUnavailable):
                return None
        try:
            hold = await self.vacancy.get_hold(record.hold_id)
        except HoldNotFound:
            log.error(
                "order %s stands on hold %s, which Vacancy does not know",
                record.order.order_id,
                record.hold_id,
            )
            return None
        if hold.state is HoldState.HELD:
            return None  # undecided: confirmed or expired later
        sold = hold.state is HoldState.CONFIRMED and hold.order_id == record.order.order_id
        settled = await self.orders.settle(record, OrderState.CONFIRMED if sold else OrderState.VOID)
        return settled.order if sold else None

    async def settle_pending(self) -> int:
        """Settle what pending orders can be settled now; how many were."""
        settled = 0
        pending = await self.orders.pending(SETTLE_BATCH)
        for record in pending:
            if record.order.order_id in self._settling:
                continue
            try:
                await self._settled(record)
            except VacancyUnavailable as exc:
                log.warning("settling pending orders: %s; again in a second", exc)
                break
            settled += 1
        return settled

    async def _settle_forever(self) -> None:
        while True:
            await asyncio.sleep(SETTLE_INTERVAL)
            try:
                await self.settle_pending()
            except StoreUnavailable as exc:  # a store outage is news, not a bug: one line a second
                log.warning("settling pending orders: %s; again in a second", exc)
            except Exception:
                log.exception("settling pending orders failed")

    # -- identity -----------------------------------------------------------------------------

    async def _check_peer(self) -> None:
        """Sell only from the Vacancy store these orders were sold from."""
        if self._peer_checked:
            return
        theirs = await self.vacancy.store_id()
        ours = await self.orders.peer()
        if ours is None:
            await self.orders.set_peer(theirs)
        elif ours != theirs:
            message = (
                f"Vacancy at {self._vacancy_url or 'VACANCY_URL'} serves stock store {theirs}, but the "
                f"orders in this Ticket's store were sold from stock store {ours}: refusing to sell "
                "from another sale"
            )
            if self.mismatch is None and self._settler is not None:  # at start-up the CLI says it
                log.error("%s", message)
            self.mismatch = message
            raise StoreRefused(message)
        self.mismatch = None
        self._peer_checked = True

    async def ready(self) -> bool:
        """Not ready while Vacancy serves another sale than these orders'."""
        return self.mismatch is None

    async def open(self) -> None:
        with contextlib.suppress(VacancyUnavailable):  # checked again before the first sale
            await self._check_peer()
        self._settler = asyncio.get_running_loop().create_task(self._settle_forever())

    async def close(self) -> None:
        if self._settler is not None:
            self._settler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._settler
            self._settler = None

    # -- helpers ------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<HoldCheckout ttl={self.purchase_ttl:g}s {self.orders!r}>"
