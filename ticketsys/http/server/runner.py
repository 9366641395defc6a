"""Running an ASGI app on the embedded server: listen, lifespan, signals, graceful shutdown.

Shutdown order on SIGTERM/SIGINT: stop accepting; close idle connections; let each busy
connection answer every request it has already received (the last answer says
``connection: close``); after ``shutdown_grace`` cut what is left and cancel its handlers;
then the app's lifespan shutdown. The process then exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable

from ticketsys.http.models import ASGIApp, DirectDispatch
from ticketsys.http.server.lifespan import Lifespan
from ticketsys.http.server.limits import ServerLimits
from ticketsys.http.server.protocol import HttpConnection
from ticketsys.http.server.state import ServerState

log = logging.getLogger("ticketsys.server")

# Connections waiting in the kernel's accept queue: a burst of 10,000 buyers opening sockets
# at once should queue, not be refused. The kernel caps it at net.core.somaxconn.
BACKLOG = 4096
# After the grace period, how long cancelled handlers get to unwind before lifespan shutdown.
CANCEL_WAIT = 1.0


class Server:
    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        limits: ServerLimits | None = None,
        *,
        direct: bool = True,
        reuse_port: bool = False,
    ) -> None:
        """``direct``: hand requests to the app's handler without the ASGI layer when the app
        offers one (``models.DirectDispatch``: same answers, less work per request); False
        always speaks ASGI.
        ``reuse_port``: several processes listen on one port (SO_REUSEPORT), the kernel
        spreading connections among them."""
        self.state = ServerState(app, limits or ServerLimits())
        self.host = host
        self.port = port
        self.direct = direct
        self.reuse_port = reuse_port
        self.lifespan = Lifespan(app)
        self._server: asyncio.base_events.Server | None = None
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()  # a second stop request: cut the shutdown grace short

    async def start(self) -> None:
        """Run the app's start-up, then listen; return once listening. Start-up errors
        propagate (and nothing listens); if listening fails, the app is shut down again."""
        await self.lifespan.startup()
        app = self.state.app
        if self.direct and isinstance(app, DirectDispatch):
            self.state.direct = app.direct_handler()
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: HttpConnection(self.state),
                self.host,
                self.port,
                backlog=BACKLOG,
                reuse_address=True,
                reuse_port=self.reuse_port or None,
            )
        except BaseException:
            # The port is taken (or the host is wrong): what start-up opened must not leak.
            await self.lifespan.shutdown()
            raise
        if self.port == 0:
            self.port = self.sockets[0].getsockname()[1]

    @property
    def sockets(self) -> list[socket.socket]:
        assert self._server is not None
        return list(self._server.sockets)

    def request_stop(self) -> None:
        """The first call begins a graceful shutdown; a second (Ctrl-C twice) cuts its grace
        short: open requests are cancelled, but the app's shutdown still closes its stores."""
        if self._stop.is_set():
            self._hurry.set()
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
            try:
                await self.shutdown()
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    async def shutdown(self) -> None:
        self.state.closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.state.connections):
            conn.shutdown()
        drained = asyncio.ensure_future(self._drained())
        hurry = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait(
            {drained, hurry}, timeout=self.state.limits.shutdown_grace, return_when=asyncio.FIRST_COMPLETED
        )
        hurry.cancel()
        if not drained.done():
            drained.cancel()
            log.warning(
                "shutdown cut short (grace over or a second signal): %d connection(s), %d request(s)",
                len(self.state.connections),
                len(self.state.tasks),
            )
            for conn in list(self.state.connections):
                conn.abort()
            tasks = set(self.state.tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                # Let cancelled handlers run their cleanup before the app's own shutdown
                # closes what they use; one that ignores cancellation is not waited for long.
                await asyncio.wait(tasks, timeout=CANCEL_WAIT)
        if self._server is not None:
            await self._server.wait_closed()
        await self.lifespan.shutdown()

    async def _drained(self) -> None:
        """Every connection closed and every handler returned (even one whose client left)."""
        await self.state.all_closed.wait()
        while self.state.tasks:
            await asyncio.wait(set(self.state.tasks))
