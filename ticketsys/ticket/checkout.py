"""How a purchase becomes an order: in one store, or across a process boundary by a hold.

``StoreCheckout`` (the monolith, and any process that owns the stock and the orders in one
store): selling and recording the order is one atomic write of a ``SaleStore``. A crash loses
both or neither; no hold is needed.

``HoldCheckout`` (Ticket in microservices): Vacancy owns the stock, Ticket the orders, and no
write spans both. A purchase is:

1. **hold** ``qty`` at Vacancy for ``PURCHASE_HOLD_TTL`` seconds;
2. **record** the order at Ticket, *pending*, naming the hold, durably (commit, and fsync
   under ``FSYNC=always``) before going on;
3. **confirm** the hold at Vacancy *to that order id*;
4. **settle** the order confirmed, and answer the buyer.

Why no ticket is sold twice or lost, whatever dies when. Vacancy's state of the hold is the
truth; Ticket's order state only caches it. Tickets are sold only by step 3, and step 3 names
an order that step 2 had already recorded: so every sold ticket has an order on record. A
hold that is never confirmed expires by itself and its tickets go back on sale: a crash or a
lost answer before step 3 strands nothing. Vacancy refuses to confirm a hold past its
``expires_at`` (it expires due holds before any decision), and an expired hold never becomes
confirmed: so an order can only be *confirmed* if its hold was confirmed in time, and a
recorded order and an expired hold never coexist as a sale. An order whose hold expired, was
released or was sold to another order is *void*: nothing was sold to it, and it is never
shown. A pending order is settled by reading its hold at Vacancy (``settle_pending``, which
never changes Vacancy's state, so it cannot race a confirm in flight): confirmed to it ->
confirmed; anything else but still held -> wait. After a crash between steps 3 and 4 the
order is pending while its tickets are sold; reading the hold settles it.

Each interleaving, with what each side ends with:

- dies before 1, or 1 is lost: nothing held, or a hold that expires; no order.
- dies after 1, before 2 (or 2 fails): a hold that expires; no order (or a pending order
  that settles void: its hold expires or is released).
- dies after 2, before 3: a pending order, a held hold -> the hold expires -> void.
- 3 arrives after the expiry (Ticket stalled): Vacancy refuses it -> void, the buyer gets 503.
- 3 is lost, or its answer is: pending; the hold is confirmed or expires -> settled either
  way by reading it.
- dies after 3, before 4: pending; its hold is confirmed -> settled confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from ticketsys.domain.errors import HoldNotFound, HoldUnavailable, StoreRefused, VacancyUnavailable
from ticketsys.domain.interfaces import OrderStore, SaleStore, VacancyClient
from ticketsys.domain.models import HoldState, Order, OrderRecord, OrderState

log = logging.getLogger("ticketsys.ticket")

# Pending orders are settled in rounds of this many, once a second.
SETTLE_BATCH = 100


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
    def __init__(self, sale: SaleStore) -> None:
        self._sale = sale

    @property
    def store_id(self) -> str:
        return self._sale.store_id

    async def purchase(self, qty: int, key: str | None, fingerprint: str) -> Order:
        return await self._sale.purchase(qty, key, fingerprint)

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
        self, vacancy: VacancyClient, orders: OrderStore, purchase_ttl: float, *, vacancy_url: str = ""
    ) -> None:
        self.vacancy = vacancy
        self.orders = orders
        self.purchase_ttl = purchase_ttl
        self._vacancy_url = vacancy_url
        self._settling: set[str] = set()  # order ids a request of this process is settling
        self._peer_checked = False
        self.mismatch: str | None = None  # why this Ticket refuses Vacancy's store, if it does
        self._settler: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def store_id(self) -> str:
        return self.orders.store_id

    # -- purchase -----------------------------------------------------------------------------

    async def purchase(self, qty: int, key: str | None, fingerprint: str) -> Order:
        if key is not None:
            found = await self.orders.recall(key, fingerprint)
            if found is not None:
                order = await self._complete(found)
                if order is not None:
                    return order
                # void: nothing was sold to it; buy anew (``add`` rebinds the key)
        await self._check_peer()
        hold = await self.vacancy.hold(qty, self.purchase_ttl, self._scoped("purchase", key))
        if hold.state is not HoldState.HELD:
            # The key's hold from an earlier attempt that recorded no order here: it ended.
            hold = await self.vacancy.hold(qty, self.purchase_ttl)
        try:
            record = await self.orders.add(qty, hold.remaining, hold.hold_id, key, fingerprint)
        except BaseException:
            self._release_soon(hold.hold_id)  # no order may stand on it now: put it back now
            raise
        if record.hold_id != hold.hold_id:  # another process recorded this key's order first
            self._release_soon(hold.hold_id)
        try:
            order = await self._complete(record)
        except HoldUnavailable:
            order = None
        if order is None:
            raise VacancyUnavailable("the purchase's hold ended before it could be confirmed")
        return order

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
        record = await self.orders.add(hold.qty, hold.remaining, hold_id, key, fingerprint)
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
        """Confirm a pending order's hold (the buyer is here, asking): the order if sold, None
        if its hold ended; ``HoldUnavailable`` (confirmed) if it was sold to another order."""
        if record.state is not OrderState.PENDING:
            return record.order if record.state is OrderState.CONFIRMED else None
        order_id = record.order.order_id
        assert record.hold_id is not None  # a pending order always stands on a hold
        self._settling.add(order_id)
        try:
            await self.vacancy.confirm(record.hold_id, order_id)
        except HoldUnavailable as exc:
            await self.orders.settle(record, OrderState.VOID)
            if exc.state == HoldState.CONFIRMED:
                raise
            return None
        finally:
            self._settling.discard(order_id)
        await self.orders.settle(record, OrderState.CONFIRMED)
        return record.order

    # -- reading and settling -----------------------------------------------------------------

    async def order(self, order_id: str) -> Order | None:
        found = await self.orders.get(order_id)
        return None if found is None else await self._settled(found)

    async def recall(self, key: str, fingerprint: str) -> Order | None:
        found = await self.orders.recall(key, fingerprint)
        return None if found is None else await self._settled(found)

    async def _settled(self, record: OrderRecord) -> Order | None:
        """The order if it is sold, learning a pending one's outcome from its hold (read only)."""
        if record.state is OrderState.CONFIRMED:
            return record.order
        if record.state is OrderState.VOID or record.hold_id is None:
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
        await self.orders.settle(record, OrderState.CONFIRMED if sold else OrderState.VOID)
        return record.order if sold else None

    async def settle_pending(self) -> int:
        """Settle what pending orders can be settled now; how many were."""
        settled = 0
        pending = await self.orders.pending(SETTLE_BATCH)
        log.debug("settling %d pending orders", len(pending))
        for record in pending:
            if record.order.order_id in self._settling:
                continue
            try:
                before = record.state
                await self._settled(record)
            except VacancyUnavailable:
                break  # try again next round
            settled += before is OrderState.PENDING
        return settled

    async def _settle_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.settle_pending()
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

    def _scoped(self, kind: str, key: str | None) -> str | None:
        """Keys at Vacancy carry this order store's identity: two Tickets on separate stores
        never share a hold; replicas on one shared store (Redis) do."""
        return None if key is None else f"{self.store_id}:{kind}:{key}"

    def _release_soon(self, hold_id: str) -> None:
        async def release() -> None:
            with contextlib.suppress(Exception):
                await self.vacancy.release(hold_id)

        task = asyncio.get_running_loop().create_task(release())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def __repr__(self) -> str:
        return f"<HoldCheckout ttl={self.purchase_ttl:g}s {self.orders!r}>"
