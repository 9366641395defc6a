"""Operators' view of a SQLite store, stopped or running: ``check`` and ``orders export``.

A running store (its owner holds the lock) is read through a read-only connection: WAL lets it
read a consistent snapshot without stopping the sale. A stopped store is opened the way the
service opens it (every check at open: format, identity, a lost log), read, and closed cleanly,
so a tool never reads a store the service would refuse, nor changes one it would not.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from ticketsys.domain.errors import StoreRefused
from ticketsys.domain.models import OrderState
from ticketsys.domain.wire import rfc3339
from ticketsys.storage.sqlite.database import Database
from ticketsys.storage.sqlite.ids import IdCodec

ORDER_STATES = {int(state): state.name.lower() for state in OrderState}


@dataclass(frozen=True, slots=True)
class Report:
    path: Path
    kind: str
    running: bool
    summary: str
    problems: list[str]


@contextlib.contextmanager
def opened(path: Path, kind: str) -> Iterator[tuple[sqlite3.Connection, bool]]:
    """A connection to the store at ``path`` and whether its owner is running."""
    if not path.exists():
        raise StoreRefused(f"{path}: no store here")
    if _locked_by_another(path):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            yield conn, True
        finally:
            conn.close()
        return
    database = Database(path, kind)
    database.open(None)
    try:
        yield database.connection, False
    finally:
        database.close_now()


def _locked_by_another(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we got: Database takes its own
    return False


def check(path: Path, kind: str) -> Report:
    """Verify a store: SQLite's own structure check, then the counters against the rows."""
    with opened(path, kind) as (conn, running):
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        facts = []
        if kind in ("sale", "stock"):
            available, held, sold, capacity, direct = conn.execute(
                "SELECT available, held, sold, capacity, sold_direct FROM stock"
            ).fetchone()
            if available + held + sold != capacity:
                problems.append(f"stock: {available} + {held} + {sold} != capacity {capacity}")
            holding = _sum(conn, "SELECT total(qty) FROM holds WHERE state = 0")
            if holding != held:
                problems.append(f"stock: {held} held, but the held holds hold {holding}")
            confirmed = _sum(conn, "SELECT total(qty) FROM holds WHERE state = 1")
            if confirmed + direct != sold:
                problems.append(
                    f"stock: {sold} sold, but confirmed holds ({confirmed}) + direct sales ({direct}) differ"
                )
            facts.append(f"{available} available, {held} held, {sold} sold of {capacity}")
        if kind in ("sale", "orders"):
            orders = _sum(conn, "SELECT count(*) FROM orders WHERE state = 1")
            pending = _sum(conn, "SELECT count(*) FROM orders WHERE state = 0")
            if kind == "sale":
                in_orders = _sum(conn, "SELECT total(qty) FROM orders WHERE state = 1")
                sold = conn.execute("SELECT sold FROM stock").fetchone()[0]
                if in_orders != sold:
                    problems.append(f"orders: {in_orders} tickets on orders, but {sold} sold")
            facts.append(f"{orders} orders" + (f", {pending} pending" if pending else ""))
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        facts.append(f"{size / 1e6:.1f} MB")
    return Report(path, kind, running, "; ".join(facts), problems)


def _sum(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


EXPORT_COLUMNS = ("order_id", "qty", "created_at", "remaining", "state", "hold_id")


def export_orders(
    path: Path, kind: str, out: IO[str], *, since: float | None = None, form: str = "jsonl"
) -> int:
    """Write every order made at or after ``since`` (seconds since the epoch) to ``out``,
    oldest first; returns how many. Streams: memory does not grow with the book."""
    with opened(path, kind) as (conn, _):
        codec = IdCodec(conn.execute("SELECT secret FROM identity").fetchone()[0], b"order")
        rows = conn.execute(
            "SELECT seq, secret, qty, created_ms, remaining, state, hold FROM orders "
            "WHERE created_ms >= ? ORDER BY seq",
            (int((since or 0) * 1000),),
        )
        writer = csv.writer(out) if form == "csv" else None
        if writer is not None:
            writer.writerow(EXPORT_COLUMNS)
        count = 0
        for seq, secret, qty, created_ms, remaining, state, hold in rows:
            record = (
                codec.encode(seq, secret),
                qty,
                rfc3339(created_ms / 1000),
                remaining,
                ORDER_STATES[state],
                hold.hex() if hold is not None else None,
            )
            if writer is not None:
                writer.writerow(record)
            else:
                out.write(orjson.dumps(dict(zip(EXPORT_COLUMNS, record, strict=True))).decode() + "\n")
            count += 1
    return count
