"""Buyers for the tests that run real processes: one keep-alive HTTP/1.1 client on raw asyncio
streams, one record of every purchase attempt and its answer (or the lack of one), and what is
written on them: repeating unknown outcomes with their ``Idempotency-Key``, reading the orders
back, the stock left.

Raw streams rather than an HTTP library, for two reasons. A fault test must know exactly
whether a request was written before the server died (``Answer.sent``) and must see a broken
connection as "no answer", never as a retry that a library made on its own. And httpx costs
~1 ms of CPU a request, so 60 httpx buyers on a 2-core machine measure the client (~500
purchases/s), not the servers (~3,000/s).

Every attempt goes into a ``Ledger``. A purchase is the attempts that share its key (one
without a key is never repeated: it is its one attempt); it is resolved once answered 200
(sold) or 409 (not sold), and ``settle()`` repeats the others with their key until they are.
The ledger's sum over distinct 200 orders is then what the store must show as taken:
``initial - available == sold``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

PURCHASE = "/api/v1/purchase"
AVAILABLE = "/api/v1/available"
#: Bound on one request's round trip: far above any healthy answer and every bound the tests
#: assert, so hitting it means no answer (the server died or froze), never a slow one cut off.
ROUND_TRIP_LIMIT = 10.0
#: Before repeating a purchase that got a 503 or no answer: a real client honours Retry-After;
#: without a pause, 50 buyers would spin on a refused store and starve the shared 2 cores.
BACKOFF = 0.02
#: Connections at once: the fault tests' buyers, ``settle()``'s and ``read_orders()``'s workers.
CLIENTS = 50
#: ``Answer.status`` of an attempt that got no HTTP answer (refused, broken, timed out).
NO_ANSWER = 0

_FAILURES = (OSError, EOFError, TimeoutError, ValueError, asyncio.LimitOverrunError)


class Client:
    """A buyer's keep-alive HTTP/1.1 connections, one per server URL, one request at a time.

    Any failure (refused, reset, closed before the whole answer, timeout) closes the connection
    and raises ``OSError``; the next request opens a new one.
    """

    def __init__(self) -> None:
        self._streams: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        self.last_headers: dict[str, str] = {}  # of the last answer, names in lower case

    async def request(
        self,
        url: str,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        on_sent: Callable[[], None] | None = None,
    ) -> tuple[int, bytes]:
        """Status and body. ``on_sent`` is called once the request is written to an open
        connection: from then on the server may act on it, answered or not."""
        try:
            async with asyncio.timeout(ROUND_TRIP_LIMIT):
                return await self._exchange(url, method, path, body, headers or {}, on_sent)
        except _FAILURES as exc:
            self._drop(url)
            raise OSError(f"{method} {url}{path}: {exc!r}") from exc
        except BaseException:
            self._drop(url)  # cancelled mid-exchange: the connection is out of step
            raise

    async def _exchange(
        self,
        url: str,
        method: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        on_sent: Callable[[], None] | None,
    ) -> tuple[int, bytes]:
        if url not in self._streams:
            host, port = url.removeprefix("http://").split(":")
            self._streams[url] = await asyncio.open_connection(host, int(port))
        reader, writer = self._streams[url]
        lines = [f"{method} {path} HTTP/1.1", f"Host: {url.removeprefix('http://')}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method == "POST":
            if not any(name.lower() == "content-type" for name in headers):
                lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        writer.write("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body)
        if on_sent is not None:
            on_sent()
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        content = await reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            self._drop(url)
        self.last_headers = fields
        return int(status_line.split(" ")[1]), content

    def _drop(self, url: str) -> None:
        streams = self._streams.pop(url, None)
        if streams is not None:
            streams[1].close()

    async def get_json(self, url: str, path: str) -> tuple[int, Any]:
        status, content = await self.request(url, "GET", path)
        return status, orjson.loads(content)

    async def aclose(self) -> None:
        for url in list(self._streams):
            _, writer = self._streams.pop(url)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@asynccontextmanager
async def connected() -> AsyncIterator[Client]:
    http = Client()
    try:
        yield http
    finally:
        await http.aclose()


@dataclass(frozen=True, slots=True)
class Answer:
    """One purchase attempt as the buyer saw it. ``key`` None: sent without an Idempotency-Key."""

    url: str
    key: str | None
    qty: int
    status: int  # NO_ANSWER: no HTTP answer at all
    body: dict[str, Any]
    started: float  # time.monotonic() when the request was begun
    elapsed: float
    sent: bool  # written to an open connection: the server may have acted on it

    @property
    def error(self) -> str | None:
        return self.body.get("error")

    @property
    def finished(self) -> float:
        return self.started + self.elapsed


def new_key() -> str:
    return os.urandom(12).hex()


async def purchase(url: str, qty: int, key: str | None, *, http: Client | None = None) -> Answer:
    """POST a purchase of ``qty`` with ``key`` (none if None), on ``http`` or a connection of
    its own, and how it was answered; never raises for a missing answer."""
    if http is None:
        async with connected() as own:
            return await purchase(url, qty, key, http=own)
    started = time.monotonic()
    sent = False

    def mark_sent() -> None:
        nonlocal sent
        sent = True

    headers = {} if key is None else {"Idempotency-Key": key}
    try:
        status, content = await http.request(
            url, "POST", PURCHASE, orjson.dumps({"qty": qty}), headers, on_sent=mark_sent
        )
    except OSError as exc:
        elapsed = time.monotonic() - started
        return Answer(url, key, qty, NO_ANSWER, {"exception": str(exc)}, started, elapsed, sent)
    elapsed = time.monotonic() - started
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = {"raw": content.decode(errors="replace")}
    if not isinstance(body, dict):
        body = {"raw": body}
    return Answer(url, key, qty, status, body, started, elapsed, sent)


@dataclass
class Ledger:
    """Every purchase attempt of a test, in the order they were answered."""

    answers: list[Answer] = field(default_factory=list)

    def add(self, answer: Answer) -> None:
        self.answers.append(answer)

    async def buy(self, url: str, qty: int, key: str | None, *, http: Client | None = None) -> Answer:
        """``purchase()``, its answer recorded."""
        answer = await purchase(url, qty, key, http=http)
        self.add(answer)
        return answer

    def statuses(self, answers: Sequence[Answer] | None = None) -> Counter[int]:
        return Counter(a.status for a in (self.answers if answers is None else answers))

    def sales(self) -> dict[str, Answer]:
        """order_id -> its first 200 answer. A key answered twice (a retry) names one order."""
        by_order: dict[str, Answer] = {}
        order_of_key: dict[str, str] = {}
        for answer in self.answers:
            if answer.status != 200:
                continue
            order_id = answer.body["order_id"]
            if answer.key is not None:
                assert order_of_key.setdefault(answer.key, order_id) == order_id, (
                    f"key {answer.key} answered two orders: {order_of_key[answer.key]} and {order_id}"
                )
            first = by_order.setdefault(order_id, answer)
            assert first.key == answer.key, f"order {order_id} answered two keys"
        return by_order

    def sold(self) -> int:
        """What the 200 answers sold: the qty of each distinct order."""
        return sum(answer.qty for answer in self.sales().values())

    def doubled(self) -> int:
        """Keys answered with more than one order: a retry that bought again."""
        orders: dict[str, set[str]] = {}
        for answer in self.answers:
            if answer.status == 200 and answer.key is not None:
                orders.setdefault(answer.key, set()).add(answer.body["order_id"])
        return sum(1 for ids in orders.values() if len(ids) > 1)

    def unresolved(self) -> list[Answer]:
        """The last answer of each purchase that says neither sold (200) nor not sold (409):
        its outcome is unknown until it is repeated with its key."""
        last: dict[str | int, Answer] = {}
        for index, answer in enumerate(self.answers):
            last[index if answer.key is None else answer.key] = answer
        return [answer for answer in last.values() if answer.status not in (200, 409)]

    def in_flight(self) -> int:
        """Tickets the server may have taken without the buyer hearing of it: the qty of the
        unresolved purchases that were sent at least once."""
        sent = {a.key for a in self.answers if a.sent and a.key is not None}
        return sum(a.qty for a in self.unresolved() if a.sent or a.key in sent)

    def since(self, moment: float) -> list[Answer]:
        return [answer for answer in self.answers if answer.started >= moment]


async def settle(ledger: Ledger, urls: Sequence[str], timeout: float = 15.0) -> list[Answer]:
    """Repeat every unresolved purchase with its key until each gets 200 or 409, ``CLIENTS`` at
    once: each try on the next of ``urls`` after the last (any replica may answer it),
    ``BACKOFF`` apart. A 503 or a dead connection is repeated: the key makes that safe. The
    answers go into the ledger and are returned (so the last of each purchase is 200 or 409)."""
    deadline = time.monotonic() + timeout
    pending = ledger.unresolved()
    settled: list[Answer] = []

    async def worker() -> None:
        async with connected() as http:
            while pending:
                last = pending.pop(0)
                assert last.key is not None, f"a purchase without a key cannot be repeated: {last}"
                turn = urls.index(last.url) + 1 if last.url in urls else 0
                while True:
                    answer = await ledger.buy(urls[turn % len(urls)], last.qty, last.key, http=http)
                    settled.append(answer)
                    if answer.status in (200, 409):
                        break
                    if time.monotonic() > deadline:
                        raise AssertionError(f"purchase {last.key} unanswered after {timeout}s: {answer}")
                    turn += 1
                    await asyncio.sleep(BACKOFF)  # back-off between repeats, as a client would

    await asyncio.gather(*(worker() for _ in range(min(CLIENTS, len(pending)))))
    return settled


async def read_orders(
    sales: Mapping[str, Answer], urls: Sequence[str], *, elsewhere: bool = False
) -> list[tuple[str, str, int]]:
    """GET every sold order from each of ``urls`` (only from those that did *not* sell it, if
    ``elsewhere``), ``CLIENTS`` readers at once. Each order found must be the one that was
    answered: same qty and remaining. Returns those not found: (url, order_id, status)."""
    queue = list(sales.items())
    missing: list[tuple[str, str, int]] = []

    async def reader() -> None:
        async with connected() as http:
            while queue:
                order_id, sale = queue.pop()
                for url in [url for url in urls if url != sale.url] if elsewhere else urls:
                    status, order = await http.get_json(url, f"/api/v1/orders/{order_id}")
                    if status != 200:
                        missing.append((url, order_id, status))
                        continue
                    assert (order["order_id"], order["qty"]) == (order_id, sale.qty), (order, sale)
                    assert order["remaining"] == sale.body["remaining"], (order, sale)

    await asyncio.gather(*(reader() for _ in range(CLIENTS)))
    return missing


async def available(url: str, *, http: Client | None = None) -> int:
    """The stock ``url`` says is left, asked on ``http`` or a connection of its own."""
    if http is None:
        async with connected() as own:
            return await available(url, http=own)
    status, body = await http.get_json(url, AVAILABLE)
    assert status == 200, (url, status, body)
    return int(body["available"])


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition()`` (every 10 ms of the event loop) until true or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)  # yields to the buyers; polling the ledger, not a server


async def run_buyers(
    url: str,
    ledger: Ledger,
    rng: random.Random,
    *,
    keyed: bool,
    stop: Callable[[], bool] = lambda: False,
    on_answer: Callable[[Answer], None] = lambda answer: None,
) -> None:
    """``CLIENTS`` buyers, each on its own keep-alive connection, buying 1-5 tickets at a time
    (with a fresh key each, if ``keyed``) until sold out (a 409 with nothing left), until
    ``stop()``, or until their connection dies: a purchase without an answer is not repeated
    here. A 409 with some tickets left makes the buyer ask for at most that many next time, so
    a run without faults ends with the stock at exactly zero. ``on_answer`` sees each answer as
    it arrives (the Striker uses it to strike mid-sale)."""

    async def buyer() -> None:
        cap = 5
        async with connected() as http:
            while not stop():
                answer = await ledger.buy(url, rng.randint(1, cap), new_key() if keyed else None, http=http)
                on_answer(answer)
                if answer.status == NO_ANSWER:
                    return  # the server went away; what happened to this one is unknown
                if answer.status == 409:
                    left = int(answer.body.get("remaining", 0))
                    if left == 0:
                        return
                    cap = min(cap, left)

    await asyncio.gather(*(buyer() for _ in range(CLIENTS)))
