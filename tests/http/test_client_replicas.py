"""Replicas: round robin and failover over real pools, against raw servers that count."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from ticketsys.http.client import ClientOptions, ConnectError, HttpPool, RemoteProtocolError, Replicas


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


class Counting:
    """A raw server that counts requests and answers, hangs up or says nothing, as told."""

    def __init__(self, hang_up: bool = False, silent: bool = False) -> None:
        self.hang_up = hang_up
        self.silent = silent
        self.requests = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self, port: int = 0) -> int:
        counter = self

        class Answer(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport
                self.buffer = b""

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                while b"\r\n\r\n" in self.buffer:
                    _, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
                    counter.requests += 1
                    if counter.hang_up:
                        self.transport.close()
                        return
                    if counter.silent:
                        continue
                    self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")  # type: ignore[attr-defined]

        self.server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", port)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _replicas(*ports: int) -> Replicas:
    return Replicas([HttpPool(ClientOptions(f"http://127.0.0.1:{port}")) for port in ports])


def test_replicas_share_the_requests() -> None:
    async def test() -> None:
        one, two = Counting(), Counting()
        replicas = _replicas(await one.start(), await two.start())
        try:
            for _ in range(10):
                assert (await replicas.request("GET", "/")).status == 200
            assert (one.requests, two.requests) == (5, 5)
        finally:
            await replicas.aclose()
            await one.stop()
            await two.stop()

    run(test)


def test_replicas_fail_over_a_refused_connection_even_when_not_idempotent() -> None:
    async def test() -> None:
        alive = Counting()
        replicas = _replicas(_refused_port(), await alive.start())
        try:
            for _ in range(4):
                assert (await replicas.request("POST", "/", b"{}")).status == 200
            assert alive.requests == 4
        finally:
            await replicas.aclose()
            await alive.stop()

    run(test)


def test_replicas_all_refusing_is_a_connect_error() -> None:
    async def test() -> None:
        replicas = _replicas(_refused_port(), _refused_port())
        try:
            with pytest.raises(ConnectError):
                await replicas.request("GET", "/")
        finally:
            await replicas.aclose()

    run(test)


def test_a_lost_reply_is_repeated_only_when_idempotent() -> None:
    async def test() -> None:
        rude, polite = Counting(hang_up=True), Counting()
        replicas = _replicas(await rude.start(), await polite.start())
        try:
            with pytest.raises(RemoteProtocolError):
                await replicas.request("POST", "/", b"{}")  # went to the rude one first
            assert polite.requests == 0
            await replicas.request("GET", "/")  # round robin: the polite one now
            # Idempotent, starting at the rude one again: repeated once, on the next replica.
            assert (await replicas.request("POST", "/", b"{}", idempotent=True)).status == 200
            assert (rude.requests, polite.requests) == (2, 2)
        finally:
            await replicas.aclose()
            await rude.stop()
            await polite.stop()

    run(test)


def test_one_replica_repeats_an_idempotent_request_once() -> None:
    async def test() -> None:
        rude = Counting(hang_up=True)
        replicas = _replicas(await rude.start())
        try:
            with pytest.raises(RemoteProtocolError):
                await replicas.request("POST", "/", b"{}", idempotent=True)
            assert rude.requests == 2
        finally:
            await replicas.aclose()
            await rude.stop()

    run(test)


def test_a_closed_replicas_moves_nothing_to_another_replica() -> None:
    """Requests failed by aclose() are not sent to the next replica (it is closing too)."""

    async def test() -> None:
        slow, other = Counting(silent=True), Counting()
        replicas = _replicas(await slow.start(), await other.start())
        try:
            busy = asyncio.ensure_future(replicas.request("POST", "/", b"{}", idempotent=True))
            while slow.requests == 0:
                await asyncio.sleep(0.001)  # until the silent one has it
            await replicas.aclose()
            with pytest.raises(RemoteProtocolError, match="closed"):
                await busy
            assert other.requests == 0
        finally:
            await slow.stop()
            await other.stop()

    run(test)


def test_a_replica_down_and_back_is_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    async def test() -> None:
        port = _refused_port()
        replicas = Replicas([HttpPool(ClientOptions(f"http://127.0.0.1:{port}"))], names=["vacancy A"])
        try:
            for _ in range(3):
                with pytest.raises(ConnectError):
                    await replicas.request("GET", "/")
            assert replicas.down == [True]
            server = Counting()
            await server.start(port)  # the replica is back, on the same port
            for _ in range(3):
                assert (await replicas.request("GET", "/")).status == 200
            assert replicas.down == [False]
            await server.stop()
        finally:
            await replicas.aclose()

    with caplog.at_level("INFO", logger="ticketsys.http.client"):
        run(test)
    lines = [record.getMessage() for record in caplog.records if record.name == "ticketsys.http.client"]
    assert [line.split(":")[0] for line in lines] == ["vacancy A is down", "vacancy A is back"]
