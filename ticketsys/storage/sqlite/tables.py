"""Tables shared by the kinds of SQLite store: idempotency keys, and orders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ticketsys.domain.errors import IdempotencyConflict
from ticketsys.domain.models import Order, OrderRecord, OrderState
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.ids import IdCodec, matches

# Keys forgotten per round of background work: one round stays well under a millisecond,
# and rounds repeat each tick until none is left, so expiry keeps up with any key rate.
EXPIRY_BATCH = 200


class KeyTable:
    """Idempotency keys in table ``name``: key -> (fingerprint, the row it made), each kept
    ``ttl_ms`` from when it was made. Rows are appended in time order, so the oldest are the
    first by id and expiry reads only what it deletes: O(expired)."""

    def __init__(self, db: Database, name: str, ttl_ms: int) -> None:
        self._db = db
        self._ttl_ms = ttl_ms
        self._find = f"SELECT fingerprint, ref, at_ms FROM {name} WHERE key = ?"
        self._insert = f"INSERT INTO {name} (key, fingerprint, ref, at_ms) VALUES (?, ?, ?, ?)"
        self._rebind = f"UPDATE {name} SET fingerprint = ?, ref = ?, at_ms = ? WHERE key = ?"
        self._oldest = f"SELECT at_ms FROM {name} ORDER BY id LIMIT 1"
        self._span = f"SELECT coalesce(max(id) - min(id) + 1, 0) FROM {name}"
        self._expire = (
            f"DELETE FROM {name} WHERE id IN (SELECT id FROM {name} ORDER BY id LIMIT ?) AND at_ms <= ?"
        )

    def count(self) -> int:
        """The keys kept: appended by id, expired from the oldest, so they are the span of ids
        (two index lookups; ``count(*)`` would read the table, on the loop)."""
        return int(self._db.read(self._span).fetchone()[0])

    def recall(self, key: str, fingerprint: str, now_ms: int) -> int | None:
        """The row ``key`` made, if it is still remembered."""
        row = self._db.read(self._find, (key,)).fetchone()
        if row is None or row[2] + self._ttl_ms <= now_ms:
            return None
        if row[0] != fingerprint:
            raise IdempotencyConflict(key)
        return int(row[1])

    def bind(self, key: str, fingerprint: str, ref: int, now_ms: int) -> None:
        """Remember ``key`` for row ``ref`` (replacing an expired or void binding)."""
        if self._db.read(self._find, (key,)).fetchone() is None:
            self._db.write(self._insert, (key, fingerprint, ref, now_ms))
        else:
            self._db.write(self._rebind, (fingerprint, ref, now_ms, key))

    def expire(self, now_ms: int) -> bool:
        """Forget a batch of expired keys; True if more may be left."""
        oldest = self._db.read(self._oldest).fetchone()
        horizon = now_ms - self._ttl_ms
        if oldest is None or oldest[0] > horizon:
            return False
        return self._db.write(self._expire, (EXPIRY_BATCH, horizon)).rowcount == EXPIRY_BATCH


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int
    record: OrderRecord


class OrderTable:
    """Orders keyed by an increasing integer; their ids are masked (ids.py)."""

    _COLUMNS = "seq, secret, qty, created_ms, remaining, state, hold, expires_ms"

    def __init__(self, db: Database, codec: IdCodec) -> None:
        self._db = db
        self._codec = codec

    def count(self) -> int:
        """Orders ever recorded (pending and void ones too): the largest seq, one index lookup."""
        return int(self._db.read("SELECT coalesce(max(seq), 0) FROM orders").fetchone()[0])

    def insert(
        self,
        qty: int,
        created_ms: int,
        remaining: int,
        state: OrderState,
        hold: str | None = None,
        expires_ms: int | None = None,
    ) -> _Row:
        secret = self._codec.new_secret()
        cursor = self._db.write(
            "INSERT INTO orders (secret, qty, created_ms, remaining, state, hold, expires_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (secret, qty, created_ms, remaining, int(state), _blob(hold), expires_ms),
        )
        seq: int = cursor.lastrowid  # type: ignore[assignment]  # set by every INSERT
        order = Order(self._codec.encode(seq, secret), qty, created_ms / 1000, remaining)
        return _Row(seq, OrderRecord(order, state, hold, None if expires_ms is None else expires_ms / 1000))

    def find(self, order_id: str) -> _Row | None:
        decoded = self._codec.decode(order_id)
        if decoded is None:
            return None
        seq, secret = decoded
        row = self._db.read(f"SELECT {self._COLUMNS} FROM orders WHERE seq = ?", (seq,)).fetchone()
        if row is None or not matches(secret, row[1]):
            return None
        return self._row(row)

    def by_seq(self, seq: int) -> _Row:
        row = self._db.read(f"SELECT {self._COLUMNS} FROM orders WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise LookupError(f"order {seq} is missing")
        return self._row(row)

    def pending(self, limit: int) -> list[_Row]:
        rows = self._db.read(
            f"SELECT {self._COLUMNS} FROM orders WHERE state = 0 ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [self._row(row) for row in rows]

    def settle(self, order_id: str, state: OrderState, hold: str | None, remaining: int | None) -> bool:
        """Settle a pending order of this store (its own id: no secret to check); False if it
        was not pending."""
        decoded = self._codec.decode(order_id)
        if decoded is None:
            raise LookupError(f"order {order_id} is not an id of this store")
        return (
            self._db.write(
                "UPDATE orders SET state = ?, hold = coalesce(?, hold), remaining = coalesce(?, remaining)"
                " WHERE seq = ? AND state = 0",
                (int(state), _blob(hold), remaining, decoded[0]),
            ).rowcount
            == 1
        )

    def _row(self, row: tuple[Any, ...]) -> _Row:
        seq, secret, qty, created_ms, remaining, state, hold, expires_ms = row
        order = Order(self._codec.encode(seq, secret), qty, created_ms / 1000, remaining)
        hold_id = hold.hex() if isinstance(hold, bytes) else None
        expires_at = None if expires_ms is None else expires_ms / 1000
        return _Row(seq, OrderRecord(order, OrderState(state), hold_id, expires_at))


def _blob(hold: str | None) -> bytes | None:
    return None if hold is None else bytes.fromhex(hold)
