"""SIGTERM under load: every request the server took gets its whole answer, the process exits
0, and the stock afterwards matches the acknowledged sales exactly. SIGTERM with nothing to
do: every process stops at once, idle keep-alive connections (clients', and Ticket's pool to
Vacancy) included."""

from __future__ import annotations

import asyncio
import http.client
import os
import random
import select
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from tests.support import services
from tests.support.figures import RecordProperty, report

STOCK = 100_000  # never sells out: the run ends by the signal alone
CLIENTS = 50
SIGNAL_AFTER = 500  # answers before the signal: the load is well under way
# Issue 12: a process with no request running stops within 100 ms of SIGTERM. The bound leaves
# slack for a shared 2-core machine; waiting on an idle connection would take the keep-alive
# period (60 s here) or the shutdown grace (10 s).
STOP_BOUND = 0.5
# Memory stores: what a journal's close costs (its fsyncs, its compaction) is the store's,
# and varies with the disk; these tests are about connections and the process.
IDLE_ENV = {"KEEPALIVE_TIMEOUT": "60", "STOCK_STORE": "memory"}


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


def _idle_connections(service: services.Service, count: int = 3) -> list[http.client.HTTPConnection]:
    """Keep-alive connections that were answered once and now sit idle."""
    held = []
    for _ in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        assert response.status == 200 and not response.will_close
        held.append(conn)
    return held


def _buy(front: services.Service, times: int) -> None:
    """Purchases through ``front``: a ticket's pool then holds keep-alive connections to Vacancy."""
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=5)
    try:
        for _ in range(times):
            conn.request(
                "POST", "/api/v1/purchase", body=b'{"qty": 1}', headers={"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            response.read()
            assert response.status == 200
    finally:
        conn.close()


def _stop_idle(service: services.Service, held: list[http.client.HTTPConnection]) -> float:
    """SIGTERM; each held connection is closed by the server with nothing written; the process
    exits 0. Returns the seconds from the signal to the exit, as the kernel reports it (a
    pidfd turns readable then; Popen.wait with a timeout would poll every 50 ms)."""
    pidfd = os.pidfd_open(service.pid)
    try:
        began = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        exited, _, _ = select.select([pidfd], [], [], 10)
        took = time.monotonic() - began
    finally:
        os.close(pidfd)
    assert exited, f"{service.name} still running 10 s after SIGTERM"
    assert service.process.wait() == 0, service.log()
    for conn in held:
        assert conn.sock is not None
        assert conn.sock.recv(1) == b""  # our FIN, and no bytes before it
        conn.close()
    return took


@pytest.mark.parametrize("order", ["ticket-first", "vacancy-first"])
def test_idle_services_stop_at_once(tmp_path: Path, record_property: RecordProperty, order: str) -> None:
    vacancy = services.start("vacancy", tmp_path / "vacancy", env=IDLE_ENV)
    ticket = services.start("ticket", tmp_path / "ticket", env={**IDLE_ENV, "VACANCY_URL": vacancy.url})
    with services.running(ticket, vacancy):
        _buy(ticket, 20)
        held = {ticket.name: _idle_connections(ticket), vacancy.name: _idle_connections(vacancy)}
        stopping = [ticket, vacancy] if order == "ticket-first" else [vacancy, ticket]
        took = {service.name: _stop_idle(service, held[service.name]) for service in stopping}
    report(
        record_property, f"idle stop, {order}", **{f"{name}_ms": round(s * 1000) for name, s in took.items()}
    )
    assert max(took.values()) < STOP_BOUND, took


def test_an_idle_monolith_stops_at_once(tmp_path: Path, record_property: RecordProperty) -> None:
    monolith = services.start("monolith", tmp_path, env=IDLE_ENV)
    with services.running(monolith):
        _buy(monolith, 20)
        took = _stop_idle(monolith, _idle_connections(monolith))
    report(record_property, "idle stop", monolith_ms=round(took * 1000))
    assert took < STOP_BOUND, took
