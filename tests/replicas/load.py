"""Load for the replica tests, and the processes they run.

Buyers are asyncio tasks, each on its own keep-alive connections (tests/support/buyers.py);
every answer (or the lack of one) goes into a ``Ledger``. Every purchase carries an
``Idempotency-Key`` and a buyer repeats a purchase whose outcome it does not know (no answer,
503) with the same key, as the README tells clients to, so at the end each key is either
answered (200 or 409) or left to ``settle()``.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis as redislib

from tests.redis_server import RedisServer
from tests.support.buyers import BACKOFF, NO_ANSWER, Answer, Ledger, connected, new_key
from tests.support.services import Service, start


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
                answer = await ledger.buy(urls[turn % len(urls)], qty, key, http=http)
                if answer.status == 200:
                    break
                if answer.status == 409:
                    remaining = int(answer.body["remaining"])
                    if remaining == 0:
                        return
                    most = min(5, remaining)
                    break
                if answer.status not in (NO_ANSWER, 503):
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


def start_replicas(directory: Path, env: Mapping[str, str]) -> tuple[list[Service], list[Service]]:
    """Two Vacancy replicas on ``env``'s shared store, then two Tickets that call both."""
    vacancies = start_all(["vacancy", "vacancy"], directory, env)
    try:
        urls = ",".join(vacancy.url for vacancy in vacancies)
        tickets = start_all(["ticket", "ticket"], directory, {**env, "VACANCY_URL": urls})
    except BaseException:
        for vacancy in vacancies:
            vacancy.kill()
        raise
    return vacancies, tickets


def stop_all(services: Sequence[Service], timeout: float = 15.0) -> None:
    """SIGTERM every service at once, then check that each exits 0 (its log quoted if not).

    One signal each: a second would cut a server's graceful drain short.
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
