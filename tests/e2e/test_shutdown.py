"""SIGTERM under load: every request the server took gets its whole answer, the process exits
0, and the stock afterwards matches the acknowledged sales exactly."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from tests.support import services

STOCK = 100_000  # never sells out: the run ends by the signal alone
CLIENTS = 50
SIGNAL_AFTER = 500  # answers before the signal: the load is well under way


@dataclass
class Tally:
    acknowledged_qty: int = 0
    answers: int = 0
    unanswered: int = 0  # connection closed before any byte of an answer: never processed
    torn: list[bytes] = field(default_factory=list)  # part of an answer, then EOF: a lost response
    statuses: set[int] = field(default_factory=set)


def _request(qty: int) -> bytes:
    body = orjson.dumps({"qty": qty})
    head = (
        "POST /api/v1/purchase HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return status, await reader.readexactly(length)


async def _client(port: int, seed: int, tally: Tally, enough: asyncio.Event) -> None:
    """One keep-alive connection buying until the server goes away."""
    rng = random.Random(seed)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return  # the listener is already closed: nothing was sent
    try:
        while True:
            qty = rng.randint(1, 3)
            try:
                writer.write(_request(qty))
                status, body = await _read_answer(reader)
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    tally.torn.append(exc.partial)
                else:
                    tally.unanswered += 1
                return
            except ConnectionError:
                tally.unanswered += 1
                return
            tally.answers += 1
            tally.statuses.add(status)
            if status == 200:
                tally.acknowledged_qty += orjson.loads(body)["qty"]
            if tally.answers >= SIGNAL_AFTER:
                enough.set()
    finally:
        writer.close()


async def _load_then_terminate(front: services.Service) -> Tally:
    tally = Tally()
    enough = asyncio.Event()
    clients = [asyncio.create_task(_client(front.port, seed, tally, enough)) for seed in range(CLIENTS)]
    await enough.wait()
    front.process.terminate()
    signalled_at = tally.answers
    await asyncio.wait_for(asyncio.gather(*clients), timeout=30)
    print(f"answers after SIGTERM: {tally.answers - signalled_at}, unanswered: {tally.unanswered}")
    return tally


def _check(tally: Tally, front: services.Service) -> None:
    assert front.process.wait(timeout=15) == 0, front.log()
    assert tally.torn == [], "a response was cut off by the shutdown"
    assert tally.statuses == {200}, tally.statuses
    assert tally.answers >= SIGNAL_AFTER


def test_sigterm_under_load_monolith(tmp_path: Path) -> None:
    env = {"INITIAL_STOCK": str(STOCK)}
    monolith = services.start("monolith", tmp_path, env=env)
    with services.running(monolith):
        tally = asyncio.run(_load_then_terminate(monolith))
        _check(tally, monolith)
    restarted = services.start("monolith", tmp_path, env=env)
    with services.running(restarted):
        sold = STOCK - orjson.loads(services.get(restarted.url, "/api/v1/available")[1])["available"]
        assert sold == tally.acknowledged_qty
        assert restarted.stop() == 0


@pytest.mark.parametrize("store", ["sqlite", "memory"])
def test_sigterm_under_load_ticket(tmp_path: Path, store: str) -> None:
    """Ticket stops while it has reserves in flight to Vacancy: each one is answered."""
    env = {"INITIAL_STOCK": str(STOCK), "STOCK_STORE": store}
    vacancy = services.start("vacancy", tmp_path / "vacancy", env=env)
    ticket = services.start("ticket", tmp_path / "ticket", env={**env, "VACANCY_URL": vacancy.url})
    with services.running(ticket, vacancy):
        tally = asyncio.run(_load_then_terminate(ticket))
        _check(tally, ticket)
        sold = STOCK - orjson.loads(services.get(vacancy.url, "/api/v1/available")[1])["available"]
        assert sold == tally.acknowledged_qty
        assert vacancy.stop() == 0
