"""Vacancy's stock and holds in a SQLite store (also the stock half of the monolith's).

Every operation does its reads and writes synchronously, so nothing interleaves with it on the
event loop, then awaits the commit of the tick's transaction before answering. Writes come
only after every check has passed, so an operation that refuses (sold out, a hold already
confirmed) changes nothing.

Expiry is exact and costs O(expired): ``_next_due_ms`` is never later than the earliest
expiry of a held hold, so the common case is one comparison; when it is reached, the due holds
are read through a partial index of held holds by expiry, released, and the next due time is
read from the same index. Every decision expires what is due first, and a background round
each second does it for a store nobody asks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ticketsys.domain.errors import (
    SALE_REFUSALS,
    HoldNotFound,
    HoldUnavailable,
    InvalidQuantity,
    OverRelease,
    SoldOut,
    StoreUnavailable,
)
from ticketsys.domain.models import MAX_STOCK, Hold, HoldState, Stock, sale_fingerprint
from ticketsys.storage.sqlite.database import Database, Identity
from ticketsys.storage.sqlite.ids import IdCodec, matches
from ticketsys.storage.sqlite.tables import KeyTable
from ticketsys.storage.window import DAY

log = logging.getLogger("ticketsys.storage")

Clock = Callable[[], float]
STATES = (HoldState.HELD, HoldState.CONFIRMED, HoldState.RELEASED, HoldState.EXPIRED)  # by stored number
_HELD, _CONFIRMED = 0, 1
_NEVER = 2**62


class SqliteStock:
    def __init__(self, db: Database, initial: int, *, clock: Clock = time.time, key_ttl: float = DAY) -> None:
        self._db = db
        self.initial = initial
        self._clock = clock
        self._keys = KeyTable(db, "hold_keys", int(key_ttl * 1000))
        self._ids: IdCodec | None = None
        self.store_id = ""
        self._next_due_ms = 0  # 0: not known yet, look at the first access

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._open_database()
        self._db.start()
        await self._db.flush()
        stock = await self.stock()
        log.info(
            "stock store %s: %d available, %d held, %d sold of %d",
            self._db.path,
            stock.available,
            stock.held,
            stock.sold,
            stock.capacity,
        )

    def _open_database(self) -> Identity:
        identity = self._db.open(self.initial)
        self.store_id = identity.store_id
        self._ids = IdCodec(identity.secret, b"hold")
        self._db.every_second(self._maintain)
        return identity

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        self._db.read("SELECT 1 FROM stock")

    def figures(self) -> dict[str, int]:
        # Holds ever made: the largest seq, one index lookup.
        holds = self._db.read("SELECT coalesce(max(seq), 0) FROM holds").fetchone()[0]
        return {"holds": holds, "keys": self._keys.count()}

    def _maintain(self) -> bool:
        now = self._now()
        return self._expire_due(now) > 0 or self._keys.expire(now)

    # -- reads --------------------------------------------------------------------------------

    async def stock(self) -> Stock:
        await self._db.ready()
        self._expire_due(self._now())
        available, held, sold, capacity = self._db.read(
            "SELECT available, held, sold, capacity FROM stock"
        ).fetchone()
        return Stock(available, held, sold, capacity)

    async def available(self) -> int:
        await self._db.ready()
        self._expire_due(self._now())
        return self._available()

    def _available(self) -> int:
        return int(self._db.read("SELECT available FROM stock").fetchone()[0])

    async def get_hold(self, hold_id: str) -> Hold:
        await self._db.ready()
        self._expire_due(self._now())
        return self._hold(self._find(hold_id))

    # -- holds --------------------------------------------------------------------------------

    async def hold(self, qty: int, ttl: float, key: str | None = None, fingerprint: str = "") -> Hold:
        await self._db.ready()
        hold = self._make_hold(qty, ttl, key, fingerprint, self._now())
        await self._db.flush()  # also for a repeated key: its first answer may not be committed yet
        return hold

    def _make_hold(self, qty: int, ttl: float, key: str | None, fingerprint: str, now: int) -> Hold:
        self._expire_due(now)
        if key is not None:
            seen = self._keys.recall(key, fingerprint, now)
            if seen is not None:
                return self._hold(self._row(seen))
        remaining = self._take(qty, "held")
        secret = self.ids.new_secret()
        expires = now + max(1, round(ttl * 1000))
        cursor = self._db.write(
            "INSERT INTO holds (secret, qty, expires_ms, state, remaining) VALUES (?, ?, ?, 0, ?)",
            (secret, qty, expires, remaining),
        )
        seq: int = cursor.lastrowid  # type: ignore[assignment]  # set by every INSERT
        if key is not None:
            self._keys.bind(key, fingerprint, seq, now)
        self._next_due_ms = min(self._next_due_ms, expires)
        return Hold(self.ids.encode(seq, secret), qty, expires / 1000, HoldState.HELD, remaining)

    async def sell_hold(self, qty: int, expires_at: float, key: str, order_id: str) -> Hold:
        await self._db.ready()
        hold = self._sell_hold(qty, round(expires_at * 1000), key, order_id, self._now())
        await self._db.flush()
        return hold

    async def sell_holds(self, sales: list[tuple[int, float, str, str]]) -> list[Hold | Exception]:
        await self._db.ready()
        now = self._now()
        results: list[Hold | Exception] = []
        for qty, expires_at, key, order_id in sales:
            try:
                results.append(self._sell_hold(qty, round(expires_at * 1000), key, order_id, now))
            except SALE_REFUSALS as exc:
                results.append(exc)
            except StoreUnavailable as exc:  # the transaction is gone, and the sales made in it
                return [exc] * len(sales)
        try:
            await self._db.flush()
        except StoreUnavailable as exc:
            return [exc] * len(sales)
        return results

    def _sell_hold(self, qty: int, expires: int, key: str, order_id: str, now: int) -> Hold:
        self._expire_due(now)
        fingerprint = sale_fingerprint(qty, order_id)
        seen = self._keys.recall(key, fingerprint, now)
        if seen is not None:
            return self._hold(self._row(seen))
        if expires <= now:
            raise HoldUnavailable("", HoldState.EXPIRED)
        remaining = self._take(qty, "sold on a hold")
        secret = self.ids.new_secret()
        cursor = self._db.write(
            "INSERT INTO holds (secret, qty, expires_ms, state, remaining, order_id)"
            " VALUES (?, ?, ?, 1, ?, ?)",
            (secret, qty, expires, remaining, bytes.fromhex(order_id)),
        )
        seq: int = cursor.lastrowid  # type: ignore[assignment]  # set by every INSERT
        self._keys.bind(key, fingerprint, seq, now)
        return Hold(
            self.ids.encode(seq, secret), qty, expires / 1000, HoldState.CONFIRMED, remaining, order_id
        )

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        await self._db.ready()
        self._expire_due(self._now())
        hold = self._confirm(self._find(hold_id), order_id)
        await self._db.flush()
        return hold

    def _confirm(self, row: tuple[Any, ...], order_id: str) -> Hold:
        """Sell the hold ``row`` (as ``_find`` reads it, with due holds expired) to ``order_id``."""
        seq, _, qty, _, state, _, sold_to = row
        order = bytes.fromhex(order_id)
        if state == _CONFIRMED and sold_to == order:
            return self._hold(row)
        if state != _HELD:
            hold = self._hold(row)
            raise HoldUnavailable(hold.hold_id, hold.state, hold.order_id)
        self._db.write("UPDATE holds SET state = 1, order_id = ? WHERE seq = ?", (order, seq))
        self._db.write("UPDATE stock SET held = held - ?1, sold = sold + ?1 WHERE one = 1", (qty,))
        return self._hold((*row[:4], _CONFIRMED, row[5], order))

    async def release(self, hold_id: str) -> int:
        await self._db.ready()
        now = self._now()
        self._expire_due(now)
        row = self._find(hold_id)
        seq, _, qty, _, state, _, _ = row
        if state == _CONFIRMED:
            hold = self._hold(row)
            raise HoldUnavailable(hold.hold_id, hold.state, hold.order_id)
        if state == _HELD:
            self._db.write("UPDATE holds SET state = 2 WHERE seq = ?", (seq,))
            self._db.write(
                "UPDATE stock SET held = held - ?1, available = available + ?1 WHERE one = 1", (qty,)
            )
        available = self._available()
        await self._db.flush()
        return available

    async def expire(self) -> int:
        await self._db.ready()
        expired = self._expire_due(self._now())
        await self._db.flush()
        return expired

    def _expire_due(self, now: int) -> int:
        if now < self._next_due_ms:
            return 0
        count, total = self._db.read(
            "SELECT count(*), total(qty) FROM holds WHERE state = 0 AND expires_ms <= ?", (now,)
        ).fetchone()
        if count:
            self._db.write("UPDATE holds SET state = 3 WHERE state = 0 AND expires_ms <= ?", (now,))
            self._db.write(
                "UPDATE stock SET held = held - ?1, available = available + ?1 WHERE one = 1", (int(total),)
            )
        earliest = self._db.read("SELECT min(expires_ms) FROM holds WHERE state = 0").fetchone()[0]
        self._next_due_ms = _NEVER if earliest is None else earliest
        return int(count)

    # -- direct changes ----------------------------------------------------------------------

    async def sell(self, qty: int) -> int:
        await self._db.ready()
        self._expire_due(self._now())
        remaining = self._take(qty, "sold")
        await self._db.flush()
        return remaining

    _INTO = {
        "held": "held = held + ?1",
        "sold": "sold = sold + ?1, sold_direct = sold_direct + ?1",
        "sold on a hold": "sold = sold + ?1",
    }

    def _take(self, qty: int, into: str) -> int:
        """Move ``qty`` from available to ``into`` (held, sold outside any hold, or sold on a
        hold made sold); ``SoldOut`` if too few."""
        row = self._db.write(
            f"UPDATE stock SET available = available - ?1, {self._INTO[into]} "
            "WHERE one = 1 AND available >= ?1 RETURNING available",
            (qty,),
        ).fetchone()
        if row is None:
            raise SoldOut(qty, self._available())
        return int(row[0])

    async def unsell(self, qty: int) -> int:
        await self._db.ready()
        self._expire_due(self._now())
        row = self._db.write(
            # Only what was sold outside holds: tickets of a confirmed hold stand on an order.
            "UPDATE stock SET sold = sold - ?1, sold_direct = sold_direct - ?1, available = available + ?1 "
            "WHERE one = 1 AND sold_direct >= ?1 RETURNING available",
            (qty,),
        ).fetchone()
        if row is None:
            available, direct = self._db.read("SELECT available, sold_direct FROM stock").fetchone()
            raise OverRelease(qty, available, direct)
        await self._db.flush()
        return int(row[0])

    async def restock(self, qty: int) -> int:
        await self._db.ready()
        self._expire_due(self._now())
        row = self._db.write(
            "UPDATE stock SET capacity = capacity + ?1, available = available + ?1 "
            f"WHERE one = 1 AND capacity + ?1 <= {MAX_STOCK} RETURNING available",
            (qty,),
        ).fetchone()
        if row is None:
            raise InvalidQuantity(f"restocking {qty} would put more than {MAX_STOCK} tickets on sale")
        await self._db.flush()
        return int(row[0])

    # -- rows ---------------------------------------------------------------------------------

    _COLUMNS = "seq, secret, qty, expires_ms, state, remaining, order_id"

    def _find(self, hold_id: str) -> tuple[Any, ...]:
        decoded = self.ids.decode(hold_id)
        if decoded is not None:
            row = self._db.read(f"SELECT {self._COLUMNS} FROM holds WHERE seq = ?", (decoded[0],)).fetchone()
            if row is not None and matches(decoded[1], row[1]):
                return tuple(row)
        raise HoldNotFound(hold_id)

    def _row(self, seq: int) -> tuple[Any, ...]:
        return tuple(self._db.read(f"SELECT {self._COLUMNS} FROM holds WHERE seq = ?", (seq,)).fetchone())

    def _hold(self, row: tuple[Any, ...]) -> Hold:
        seq, secret, qty, expires, state, remaining, sold_to = row
        order_id = sold_to.hex() if sold_to is not None else None
        return Hold(self.ids.encode(seq, secret), qty, expires / 1000, STATES[state], remaining, order_id)

    @property
    def ids(self) -> IdCodec:
        if self._ids is None:
            raise RuntimeError("the store is not open")
        return self._ids

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._db!r}>"
