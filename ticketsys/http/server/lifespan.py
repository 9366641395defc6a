"""Drives the ASGI lifespan protocol of an application from the server side."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ticketsys.http.models import ASGIApp

log = logging.getLogger("ticketsys.server")


class LifespanError(RuntimeError):
    pass


class Lifespan:
    """Runs ``app({"type": "lifespan"}, receive, send)`` in a task and turns its messages into
    awaitable ``startup()`` and ``shutdown()``. An app that does not speak lifespan (raises at
    once) is tolerated, as uvicorn's ``lifespan="auto"`` does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._supported = True

    async def startup(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await self._reply()
        if reply["type"] == "lifespan.startup.failed":
            raise LifespanError(reply.get("message") or "application start-up failed")

    async def shutdown(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        reply = await self._reply()
        if reply["type"] == "lifespan.shutdown.failed":
            log.error("application shutdown failed: %s", reply.get("message"))
        await self._task

    async def _reply(self) -> dict[str, Any]:
        assert self._task is not None
        getter = asyncio.ensure_future(self._replies.get())
        await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        # The app returned without answering: it does not support lifespan.
        self._supported = False
        return {"type": "lifespan.unsupported"}

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        try:
            await self.app(scope, self._inbox.get, self._replies.put)
        except Exception as exc:
            if self._supported:
                log.debug("lifespan unsupported by the application: %r", exc)
            self._supported = False
