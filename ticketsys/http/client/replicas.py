"""``Replicas``: one client per replica of a service, requests spread round-robin, failed over.

A request goes to the next replica in turn. When nothing was sent (``ConnectError``: refused,
unreachable, or the replica's pool could not send it) it moves on to the next replica, and
the failed replica is tried last for ``down_for`` seconds. When it may have been processed
(``RemoteProtocolError``) it is repeated once more only if the caller says it is idempotent
(a GET, or a call carrying an idempotency key). A timeout is never repeated.

A replica is logged once when it goes down (a connect failed) and once when it answers again,
not at every request that finds it down.
"""

from __future__ import annotations

import asyncio
import logging

from ticketsys.http.client.interface import (
    ClientError,
    ClientResponse,
    ConnectError,
    Headers,
    HttpClient,
    RemoteProtocolError,
)

log = logging.getLogger("ticketsys.http.client")


class Replicas:
    def __init__(
        self, clients: list[HttpClient], *, down_for: float = 1.0, names: list[str] | None = None
    ) -> None:
        assert clients and (names is None or len(names) == len(clients))
        self.clients = clients
        self.names = names or [f"replica {i}" for i in range(len(clients))]  # for the logs
        self.down = [False] * len(clients)  # failed to connect, and not answered since
        self.down_for = down_for
        self._down_until = [0.0] * len(clients)
        self._next = 0
        self._closed = False

    def _order(self) -> list[int]:
        count = len(self.clients)
        start, self._next = self._next, (self._next + 1) % count
        if count == 1:
            return [0]
        rotated = [(start + i) % count for i in range(count)]
        now = asyncio.get_running_loop().time()
        return sorted(rotated, key=lambda i: self._down_until[i] > now)  # stable: up ones first

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Headers = (),
        *,
        idempotent: bool = False,
        lines: bytes = b"",
        gathered: bool = False,
    ) -> ClientResponse:
        order = self._order()
        if idempotent and len(order) == 1:
            order *= 2  # a single replica: one repeat on the same one (a lost connection)
        repeated = False
        failure: ClientError | None = None
        for index in order:
            try:
                response = await self.clients[index].request(
                    method, path, body, headers, idempotent=idempotent, lines=lines, gathered=gathered
                )
            except ConnectError as exc:  # never sent: the next replica may have it
                if self._closed:
                    raise
                self._down_until[index] = asyncio.get_running_loop().time() + self.down_for
                if not self.down[index]:
                    self.down[index] = True
                    log.warning("%s is down: %s", self.names[index], exc)
                failure = exc
            except RemoteProtocolError as exc:  # maybe processed: repeat only the idempotent, once
                if not idempotent or repeated or self._closed:
                    raise
                repeated, failure = True, exc
            else:
                if self.down[index]:
                    self.down[index] = False
                    log.info("%s is back", self.names[index])
                return response
        assert failure is not None
        raise failure

    async def aclose(self) -> None:
        self._closed = True  # requests failed by the closing are not moved to another replica
        for client in self.clients:
            await client.aclose()

    def __repr__(self) -> str:
        return f"<Replicas {self.clients!r}>"
