"""Running an ASGI app on the embedded server: listen, lifespan, signals, graceful shutdown.

Shutdown order on SIGTERM/SIGINT: stop accepting; close idle connections; let each busy
connection answer every request it has already received (the last answer says
``connection: close``); after ``shutdown_grace`` cut what is left; then the app's lifespan
shutdown. The process then exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from typing import Any

from ticketsys.http.lifespan import Lifespan
from ticketsys.http.limits import ServerLimits
from ticketsys.http.server import HttpConnection, ServerState

log = logging.getLogger("ticketsys.server")

# Connections waiting in the kernel's accept queue: a burst of 10,000 buyers opening sockets
# at once should queue, not be refused. The kernel caps it at net.core.somaxconn.
BACKLOG = 4096


class Server:
    def __init__(self, app: Any, host: str, port: int, limits: ServerLimits | None = None) -> None:
        self.state = ServerState(app, limits or ServerLimits())
        self.host = host
        self.port = port
        self.lifespan = Lifespan(app)
        self._server: asyncio.base_events.Server | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Run the app's start-up, then listen. Start-up errors propagate (and nothing listens)."""
        await self.lifespan.startup()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self.state),
            self.host,
            self.port,
            backlog=BACKLOG,
            reuse_address=True,
        )
        if self.port == 0:
            self.port = self.sockets[0].getsockname()[1]

    @property
    def sockets(self) -> list[socket.socket]:
        assert self._server is not None
        return list(self._server.sockets)

    def request_stop(self) -> None:
        self._stop.set()

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Start, serve until SIGTERM/SIGINT (or ``request_stop()``), then shut down."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            if on_ready is not None:
                on_ready()
            await self._stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.shutdown()

    async def shutdown(self) -> None:
        self.state.closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.state.connections):
            conn.shutdown()
        deadline = asyncio.get_running_loop().time() + self.state.limits.shutdown_grace
        while self.state.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.state.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
        await self.lifespan.shutdown()
