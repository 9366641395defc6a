"""What the server and all its connections share."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ticketsys.http.models import ASGIApp, Handler
from ticketsys.http.server.limits import ServerLimits

if TYPE_CHECKING:
    from ticketsys.http.server.protocol import HttpConnection


class ServerState:
    def __init__(self, app: ASGIApp, limits: ServerLimits) -> None:
        self.app = app
        # Set by the runner after start-up when the app offers one (see cycle.DirectCycle).
        self.direct: Handler | None = None
        self.limits = limits
        self.connections: set[HttpConnection] = set()
        self.closing = False
        # Every connection's worker task, until done: the loop keeps only weak references to
        # tasks, and a handler may outlive its connection (the client left mid-request).
        self.tasks: set[asyncio.Task[None]] = set()
        # Set whenever no connection is open: the runner's shutdown waits on it.
        self.all_closed = asyncio.Event()
        self.all_closed.set()

    def add(self, conn: HttpConnection) -> None:
        self.connections.add(conn)
        self.all_closed.clear()

    def discard(self, conn: HttpConnection) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self.all_closed.set()
