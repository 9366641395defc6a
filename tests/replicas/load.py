"""Load and bookkeeping for the replica tests.

Buyers are asyncio tasks, each on its own keep-alive connections; every answer (or the lack
of one) goes into a ``Ledger``. Every purchase carries an ``Idempotency-Key`` and a buyer repeats
a purchase whose outcome it does not know (no answer, 503) with the same key, as the README
tells clients to, so at the end each key is either answered (200 or 409) or left to
``settle()``. The ledger's sum over distinct 200 orders is then what the store must show as
taken: ``initial - available == sold``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis as redislib

from tests.redis_server import RedisServer
from tests.support.services import Service, start

PURCHASE = "/api/v1/purchase"
AVAILABLE = "/api/v1/available"
# Far above every bound the tests assert, so that a slow answer is measured, not cut off.
CLIENT_TIMEOUT = 10.0
# After a 503 a buyer waits this long before repeating: a real client honours Retry-After;
# without a pause, 50 buyers would spin on a refused store and starve the shared 2 cores.
BACKOFF = 0.02


@dataclass(frozen=True, slots=True)
class Answer:
    """One purchase attempt. ``status`` 0: no HTTP answer (the connection broke or timed out)."""

    url: str
    key: str
    qty: int
    status: int
    body: dict[str, Any]
    started: float  # time.monotonic() when the request was sent
    elapsed: float

    @property
    def error(self) -> str | None:
        return self.body.get("error")

    @property
    def finished(self) -> float:
        return self.started + self.elapsed


@dataclass
class Ledger:
    answers: list[Answer] = field(default_factory=list)

    def add(self, answer: Answer) -> None:
        self.answers.append(answer)

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
            assert order_of_key.setdefault(answer.key, order_id) == order_id, (
                f"key {answer.key} answered two orders: {order_of_key[answer.key]} and {order_id}"
            )
            first = by_order.setdefault(order_id, answer)
            assert first.key == answer.key, f"order {order_id} answered two keys"
        return by_order

    def sold(self) -> int:
        return sum(answer.qty for answer in self.sales().values())

    def unresolved(self) -> dict[str, Answer]:
        """Keys whose last answer says neither sold (200) nor not sold (409): the outcome of
        those purchases is unknown until they are repeated with their key."""
        last: dict[str, Answer] = {}
        for answer in self.answers:
            last[answer.key] = answer
        return {key: answer for key, answer in last.items() if answer.status not in (200, 409)}

    def since(self, moment: float) -> list[Answer]:
        return [answer for answer in self.answers if answer.started >= moment]


def new_key() -> str:
    return os.urandom(12).hex()


class Client:
    """A buyer's keep-alive HTTP/1.1 connections, one per server URL, one request at a time.

    Raw asyncio streams rather than httpx: httpx costs ~1 ms of CPU a request, so 60 httpx
    buyers on this 2-core machine measure the client (~500 purchases/s), not the servers
    (~3,000/s). Any failure (refused, reset, closed before the whole answer, timeout) closes
    the connection and raises ``OSError``; the next request opens a new one.
    """

    def __init__(self) -> None:
        self._streams: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        self.last_headers: dict[str, str] = {}  # of the last answer, names in lower case

    async def request(
        self, url: str, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT):
                return await self._exchange(url, method, path, body, headers or {})
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            self._drop(url)
            raise OSError(f"{method} {url}{path}: {exc!r}") from exc

    async def _exchange(
        self, url: str, method: str, path: str, body: bytes, headers: Mapping[str, str]
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
        writer.write("\r\n".join(lines).encode() + b"\r\n\r\n" + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        content = await reader.readexactly(int(fields["content-length"]))
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


async def purchase(http: Client, url: str, qty: int, key: str) -> Answer:
    started = time.monotonic()
    try:
        status, content = await http.request(
            url, "POST", PURCHASE, orjson.dumps({"qty": qty}), {"Idempotency-Key": key}
        )
    except OSError as exc:
        return Answer(url, key, qty, 0, {"exception": str(exc)}, started, time.monotonic() - started)
    elapsed = time.monotonic() - started
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = {"raw": content.decode(errors="replace")}
    if not isinstance(body, dict):
        body = {"raw": body}
    return Answer(url, key, qty, status, body, started, elapsed)


async def available(http: Client, url: str) -> int:
    status, body = await http.get_json(url, AVAILABLE)
    assert status == 200, (url, status, body)
    return int(body["available"])


async def buyer(urls: Sequence[str], ledger: Ledger, rng: random.Random, stop: asyncio.Event) -> None:
    """Buy 1-5 tickets at a time until sold out (a 409 with nothing left) or ``stop``.

    Purchases alternate between ``urls``. One without a definite answer is repeated with its
    key on the next of ``urls`` (any replica may answer it); on ``stop`` it is left to
    ``settle()``. After a 409 with some tickets left, the next asks for no more than those.
    """
    turn = rng.randrange(len(urls))
    most = 5
    async with connected() as http:
        while not stop.is_set():
            qty, key = rng.randint(1, most), new_key()
            while True:
                answer = await purchase(http, urls[turn % len(urls)], qty, key)
                ledger.add(answer)
                if answer.status == 200:
                    break
                if answer.status == 409:
                    remaining = int(answer.body["remaining"])
                    if remaining == 0:
                        return
                    most = min(5, remaining)
                    break
                if answer.status not in (0, 503):
                    raise AssertionError(f"unexpected answer {answer}")
                if stop.is_set():
                    return
                turn += 1  # the other replica may answer while this one cannot
                await asyncio.sleep(BACKOFF)  # the client's back-off, not a wait for a server
            turn += 1


def buyers(
    count: int, urls: Sequence[str], ledger: Ledger, stop: asyncio.Event, seed: int
) -> asyncio.Future[list[None]]:
    """``count`` concurrent buyers, each on its own connections, seeded for repeatability."""
    rng = random.Random(seed)
    return asyncio.gather(*(buyer(urls, ledger, random.Random(rng.random()), stop) for _ in range(count)))


async def settle(ledger: Ledger, urls: Sequence[str], timeout: float = 15.0) -> list[Answer]:
    """Repeat every unresolved purchase with its key, on another replica than its last try,
    until each gets 200 or 409; the answers go into the ledger and are returned."""
    deadline = time.monotonic() + timeout
    settled: list[Answer] = []

    async def resolve(key: str, last: Answer) -> None:
        turn = urls.index(last.url) + 1 if last.url in urls else 0
        async with connected() as http:
            while time.monotonic() < deadline:
                answer = await purchase(http, urls[turn % len(urls)], last.qty, key)
                ledger.add(answer)
                settled.append(answer)
                if answer.status in (200, 409):
                    return
                turn += 1
                await asyncio.sleep(BACKOFF)  # back-off between repeats, as a client would
        raise AssertionError(f"purchase {key} still unanswered after {timeout}s: {settled[-1]}")

    await asyncio.gather(*(resolve(key, last) for key, last in ledger.unresolved().items()))
    return settled


async def read_orders(sales: Mapping[str, Answer], urls: Sequence[str], *, elsewhere: bool) -> None:
    """GET every sold order (from the replica that did *not* sell it, if ``elsewhere``) and
    check it is the order that was answered: same qty and remaining. 50 readers at once."""
    queue = list(sales.items())

    async def reader() -> None:
        async with connected() as http:
            while queue:
                order_id, sale = queue.pop()
                others = [url for url in urls if url != sale.url] if elsewhere else list(urls)
                for url in others:
                    status, order = await http.get_json(url, f"/api/v1/orders/{order_id}")
                    assert status == 200, (url, order_id, order)
                    assert (order["order_id"], order["qty"]) == (order_id, sale.qty), (order, sale)
                    assert order["remaining"] == sale.body["remaining"], (order, sale)

    await asyncio.gather(*(reader() for _ in range(50)))


async def wait_for(condition: Any, timeout: float, what: str) -> None:
    """Poll ``condition()`` (every 10 ms of the event loop) until true or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)  # yields to the buyers; polling the ledger, not a server


def assert_serial(sales: Mapping[str, Answer], initial: int) -> None:
    """Every sale took its tickets from what the one before it left: sorted by ``remaining``,
    each is the previous ``remaining`` minus its own qty. So the sales form one serial
    history of the one shared stock (no two replicas sold the same tickets) with no gaps
    (no tickets taken that no answered sale accounts for)."""
    history = sorted(sales.values(), key=lambda answer: -int(answer.body["remaining"]))
    left = initial
    for answer in history:
        remaining = int(answer.body["remaining"])
        assert remaining >= 0, answer
        assert remaining == left - answer.qty, f"after {left} left, sale {answer} says {remaining}"
        left = remaining


# -- processes ---------------------------------------------------------------------------------


class Redis:
    """A redis-server (AOF on) that a test may kill, freeze and restart on the same port and
    directory, so that its append-only file brings the data back.

    ``appendfsync always``, not tests/redis_server.py's ``everysec``: under ``everysec``,
    while a background fsync is slow Redis postpones writing its AOF buffer (up to 2 s) yet
    still answers the commands in it, so SIGKILL can drop writes it acknowledged. That is
    Redis's documented window (README: "as Redis's appendfsync"), not ticketsys's, and these
    tests account for ticketsys's answers exactly; ``always`` writes before it answers.
    """

    def __init__(self, directory: Path, appendfsync: str = "always") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.appendfsync = appendfsync
        self.server = RedisServer(directory)
        self.paused = False

    @classmethod
    @contextmanager
    def running(cls, directory: Path) -> Iterator[Redis]:
        redis = cls(directory)
        redis.start()
        try:
            yield redis
        finally:
            redis.close()

    def start(self) -> None:
        self.server.start()
        self.command("CONFIG", "SET", "appendfsync", self.appendfsync)

    def command(self, *args: str | bytes) -> Any:
        """One command on a connection of its own (closed at once: no ResourceWarning)."""
        with redislib.Redis.from_url(self.url, socket_timeout=5) as connection:
            return connection.execute_command(*args)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def kill(self) -> None:
        self.server.kill()

    def restart(self) -> None:
        self.server.kill()
        self.server = RedisServer(self.directory, port=self.port)
        self.start()

    def pause(self) -> None:
        assert self.server.process is not None
        self.server.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.server.process is not None
        self.server.process.send_signal(signal.SIGCONT)
        self.paused = False

    def close(self) -> None:
        if self.paused:
            self.resume()
        self.server.kill()


def start_all(names: Sequence[str], directory: Path, env: Mapping[str, str]) -> list[Service]:
    """Start several services at once (each in its own subdirectory) and wait for all: the
    interpreters start in parallel instead of one after the other."""
    services = [
        start(name, directory / f"{name}{index}", env=env, wait=False) for index, name in enumerate(names)
    ]
    try:
        for service in services:
            service.wait_healthy()
    except BaseException:
        for service in services:
            service.kill()
        raise
    return services


def stop_all(services: Sequence[Service], timeout: float = 15.0) -> None:
    """SIGTERM every service at once, then check that each exits 0 (its log quoted if not).

    One signal each: a server restores the default disposition once it starts shutting down,
    so a second SIGTERM (as ``Service.stop()`` would send) kills it mid-shutdown.
    """
    for service in services:
        if service.process.poll() is None:
            service.process.send_signal(signal.SIGTERM)
    for service in services:
        try:
            code = service.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            service.kill()
            raise
        assert code == 0, f"{service.name} exited {code}:\n{service.log()}"
