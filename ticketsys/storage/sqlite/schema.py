"""The tables of a SQLite store, by kind, and the checks of what a store file says it is.

Three kinds: ``sale`` (the monolith: stock and orders in one file, so a purchase is one
transaction), ``stock`` (Vacancy) and ``orders`` (Ticket). Rows that grow with the sale (holds,
orders) are keyed by an increasing integer, so every insert appends to the end of its table;
ids given out are that integer masked and joined to a random secret (see ids.py). The
counters' rules are CHECK constraints, so no change, from any code path, can leave
``available + held + sold != capacity`` or a negative count on disk. Tables are STRICT: a
value of the wrong type is refused, not coerced.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from ticketsys.domain.errors import StoreRefused
from ticketsys.domain.models import MAX_STOCK

APPLICATION_ID = 0x7469636B  # "tick": the header field that says whose file this is
SCHEMA_VERSION = 1

KINDS = ("sale", "stock", "orders")
MADE_BY = {"sale": "the monolith", "stock": "Vacancy", "orders": "Ticket"}

_IDENTITY = """
CREATE TABLE identity (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  kind TEXT NOT NULL CHECK (kind IN ('sale', 'stock', 'orders')),
  store_id TEXT NOT NULL,
  created_at REAL NOT NULL,
  capacity INTEGER NOT NULL,            -- tickets at creation
  secret BLOB NOT NULL CHECK (length(secret) = 16),  -- keys the masks of the ids given out
  clean INTEGER NOT NULL,               -- 1 once closed cleanly, 0 while open
  boot_id TEXT NOT NULL,                -- the boot of the machine it was last opened in
  peer TEXT,                            -- orders: the Vacancy store they were sold from
  moved_to TEXT                         -- set by move-to-redis: nothing serves it after
) STRICT;
"""

_STOCK = f"""
CREATE TABLE stock (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  capacity INTEGER NOT NULL CHECK (capacity BETWEEN 0 AND {MAX_STOCK}),
  available INTEGER NOT NULL CHECK (available >= 0),
  held INTEGER NOT NULL CHECK (held >= 0),
  sold INTEGER NOT NULL CHECK (sold >= 0),
  sold_direct INTEGER NOT NULL CHECK (sold_direct BETWEEN 0 AND sold),  -- sold outside any hold
  CHECK (available + held + sold = capacity)
) STRICT;
CREATE TABLE holds (
  seq INTEGER PRIMARY KEY,
  secret BLOB NOT NULL,
  qty INTEGER NOT NULL CHECK (qty > 0),
  expires_ms INTEGER NOT NULL,
  state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 3),  -- held, confirmed, released, expired
  remaining INTEGER NOT NULL CHECK (remaining >= 0),
  order_id BLOB                          -- confirmed: the order it was sold to
) STRICT;
CREATE INDEX holds_due ON holds (expires_ms) WHERE state = 0;
CREATE TABLE hold_keys (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  fingerprint TEXT NOT NULL,
  ref INTEGER NOT NULL,
  at_ms INTEGER NOT NULL
) STRICT;
"""

_ORDERS = """
CREATE TABLE orders (
  seq INTEGER PRIMARY KEY,
  secret BLOB NOT NULL,
  qty INTEGER NOT NULL CHECK (qty > 0),
  created_ms INTEGER NOT NULL,
  remaining INTEGER NOT NULL CHECK (remaining >= 0),
  state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 2),  -- pending, confirmed, void
  hold BLOB,                             -- the Vacancy hold it stands on (microservices)
  expires_ms INTEGER                     -- pending purchase: Vacancy sells it only until then
) STRICT;
CREATE INDEX orders_pending ON orders (seq) WHERE state = 0;
CREATE TABLE order_keys (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  fingerprint TEXT NOT NULL,
  ref INTEGER NOT NULL,
  at_ms INTEGER NOT NULL
) STRICT;
"""

_TABLES = {"sale": _STOCK + _ORDERS, "stock": _STOCK, "orders": _ORDERS}


def create(conn: sqlite3.Connection, kind: str, capacity: int, boot_id: str) -> None:
    """Make a new store of ``kind`` (inside a transaction)."""
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    for statement in (_IDENTITY + _TABLES[kind]).split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(
        "INSERT INTO identity (one, kind, store_id, created_at, capacity, secret, clean, boot_id)"
        " VALUES (1, ?, ?, ?, ?, ?, 0, ?)",
        (kind, os.urandom(12).hex(), time.time(), capacity, os.urandom(16), boot_id),
    )
    if kind in ("sale", "stock"):
        conn.execute("INSERT INTO stock VALUES (1, ?, ?, 0, 0, 0)", (capacity, capacity))


def check_format(conn: sqlite3.Connection, application_id: int, path: Path) -> None:
    """Refuse a SQLite file that is not a ticketsys store of this version."""
    if application_id != APPLICATION_ID:
        raise StoreRefused(f"{path} is a SQLite database of another application (not a ticketsys store)")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreRefused(
            f"{path} was written by a newer ticketsys (format {version}, this one reads {SCHEMA_VERSION})"
        )
    if version < SCHEMA_VERSION:
        raise StoreRefused(f"{path} has format {version}, this ticketsys reads {SCHEMA_VERSION}")


def read_identity(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    try:
        cursor = conn.execute("SELECT * FROM identity")
        row = cursor.fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreRefused(f"{path}: cannot read its identity ({exc})") from None
    if row is None:
        raise StoreRefused(f"{path} has no identity record (damaged)")
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}
