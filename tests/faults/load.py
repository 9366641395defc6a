"""Load and bookkeeping for the fault tests: concurrent buyers on raw keep-alive HTTP/1.1
connections (asyncio streams), a record of every purchase and its answer, and the figures the
invariants are written in.

Raw streams rather than an HTTP library: a fault test must know exactly whether a request was
written before the server died (``Attempt.sent``) and must see a broken connection as "no
answer", never as a retry that a library made on its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Bound on one request's round trip: far above any healthy answer, so hitting it means the
#: request got no answer (the server died or froze), never that the server was merely slow.
ROUND_TRIP_LIMIT = 10.0
CLIENTS = 50

Json = dict[str, Any]


@dataclass
class Attempt:
    """One purchase as the buyer saw it."""

    qty: int
    key: str | None
    sent: bool = False  # the request was written to an open connection
    status: int | None = None  # None: no answer at all (the connection died)
    body: Json = field(default_factory=dict)
    order_ids: list[str] = field(default_factory=list)  # one per 200 answer, retries included

    @property
    def acknowledged(self) -> bool:
        return self.status == 200


class Connection:
    """One keep-alive HTTP/1.1 connection; it reconnects only when told to (``open``)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: Json | None = None,
        headers: dict[str, str] | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> tuple[int, dict[str, str], Json]:
        """Status, headers (lower-case names) and JSON body. Raises OSError or
        asyncio.IncompleteReadError when the connection dies; ``on_sent`` is called once the
        request has been handed to an open connection."""
        return await asyncio.wait_for(self._request(method, path, body, headers, on_sent), ROUND_TRIP_LIMIT)

    async def _request(
        self,
        method: str,
        path: str,
        body: Json | None,
        headers: dict[str, str] | None,
        on_sent: Callable[[], None] | None,
    ) -> tuple[int, dict[str, str], Json]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        content = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(content)}\r\n"
        try:
            writer.write(head.encode("latin-1") + b"\r\n" + content)
            if on_sent is not None:
                on_sent()
            await writer.drain()
            raw_head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = raw_head.decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            answer_headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    answer_headers[name.strip().lower()] = value.strip()
            payload = await reader.readexactly(int(answer_headers.get("content-length", "0")))
        except BaseException:
            self.close()
            raise
        if answer_headers.get("connection", "").lower() == "close":
            self.close()
        return status, answer_headers, json.loads(payload) if payload else {}

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def buy(conn: Connection, attempt: Attempt) -> Attempt:
    """Send ``attempt`` (or repeat it: same key, same body) and record its answer. A dead
    connection leaves ``status`` None; the caller decides whether to try again."""

    def mark_sent() -> None:
        attempt.sent = True

    headers = {} if attempt.key is None else {"Idempotency-Key": attempt.key}
    try:
        status, _, body = await conn.request(
            "POST", "/api/v1/purchase", {"qty": attempt.qty}, headers, on_sent=mark_sent
        )
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        attempt.status, attempt.body = None, {}
        return attempt
    attempt.status, attempt.body = status, body
    if status == 200:
        attempt.order_ids.append(str(body["order_id"]))
    return attempt


def new_key() -> str:
    return "fault-" + os.urandom(12).hex()


@dataclass
class Sale:
    """Every purchase of one test, in the order they were started."""

    keyed: bool
    rng: random.Random
    attempts: list[Attempt] = field(default_factory=list)

    def new_attempt(self, cap: int = 5) -> Attempt:
        attempt = Attempt(self.rng.randint(1, cap), new_key() if self.keyed else None)
        self.attempts.append(attempt)
        return attempt

    @property
    def acknowledged_qty(self) -> int:
        return sum(a.qty for a in self.attempts if a.acknowledged)

    @property
    def unanswered(self) -> list[Attempt]:
        """Purchases that ended without a 200 or a 409: maybe sold, maybe not."""
        return [a for a in self.attempts if a.status not in (200, 409)]

    @property
    def in_flight_qty(self) -> int:
        """What the server may have taken without the buyer ever hearing of it."""
        return sum(a.qty for a in self.unanswered if a.sent)

    def doubled(self) -> int:
        """Keys answered with more than one order: a retry that bought again."""
        return sum(1 for a in self.attempts if len(set(a.order_ids)) > 1)

    def statuses(self) -> Counter[int | None]:
        return Counter(a.status for a in self.attempts)


async def run_buyers(
    url: str,
    sale: Sale,
    *,
    clients: int = CLIENTS,
    stop: Callable[[], bool] = lambda: False,
    on_answer: Callable[[Attempt], None] = lambda attempt: None,
) -> None:
    """``clients`` buyers, each on its own keep-alive connection, buying 1-5 tickets at a time
    until sold out (a 409 with nothing left), until ``stop()``, or until their connection dies.
    A 409 with some tickets left makes the buyer ask for at most that many next time, so a
    run without faults ends with the stock at exactly zero. ``on_answer`` sees each answer as
    it arrives (the kill tests use it to strike mid-sale)."""

    async def buyer() -> None:
        conn = Connection(url)
        cap = 5
        try:
            while not stop():
                attempt = await buy(conn, sale.new_attempt(cap))
                on_answer(attempt)
                if attempt.status is None:
                    return  # the server went away; what happened to this one is unknown
                if attempt.status == 409:
                    left = int(attempt.body.get("remaining", 0))
                    if left == 0:
                        return
                    cap = min(cap, left)
        finally:
            conn.close()

    await asyncio.gather(*(buyer() for _ in range(clients)))


async def retry_until_answered(url: str, attempts: list[Attempt], *, deadline: float = 20.0) -> None:
    """Repeat each attempt (same key, same body) until it gets a 200 or a 409, on ``CLIENTS``
    connections. A 503 or a dead connection is repeated: the key makes that safe."""
    queue: asyncio.Queue[Attempt] = asyncio.Queue()
    for attempt in attempts:
        queue.put_nowait(attempt)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline

    async def worker() -> None:
        conn = Connection(url)
        try:
            while not queue.empty():
                attempt = queue.get_nowait()
                while True:
                    await buy(conn, attempt)
                    if attempt.status in (200, 409):
                        break
                    if loop.time() > give_up:
                        raise AssertionError(f"no answer for {attempt} within {deadline}s")
                    await asyncio.sleep(0.05)  # a 503 says Retry-After; poll again shortly
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(min(CLIENTS, max(1, len(attempts))))))


async def check_orders(url: str, attempts: list[Attempt]) -> int:
    """How many acknowledged orders the service no longer knows (each must still be there,
    with its quantity)."""
    conn = Connection(url)
    missing = 0
    try:
        for attempt in attempts:
            for order_id in set(attempt.order_ids):
                status, _, body = await conn.request("GET", f"/api/v1/orders/{order_id}")
                if status != 200:
                    missing += 1
                else:
                    assert body["qty"] == attempt.qty, (attempt, body)
    finally:
        conn.close()
    return missing


async def available(url: str) -> int:
    conn = Connection(url)
    try:
        status, _, body = await conn.request("GET", "/api/v1/available")
    finally:
        conn.close()
    assert status == 200, body
    return int(body["available"])
