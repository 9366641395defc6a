"""Flow control of one connection, both ways (uvicorn's ``FlowControl``).

Reading: the protocol pauses reading while too many parsed requests wait to be answered (the
kernel then pushes back on the client) and resumes when the queue has drained. Writing: the
transport says when its buffer is over its own high-water mark (``pause_writing``); an answer
then waits in ``drain()`` until the socket is writable again, so a client that does not read
cannot make us buffer without bound.
"""

from __future__ import annotations

import asyncio


class FlowControl:
    __slots__ = ("_transport", "_writable", "read_paused", "write_paused")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._writable = asyncio.Event()
        self._writable.set()
        self.read_paused = False
        self.write_paused = False  # read it before awaiting drain(): the hot path skips the await

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._writable.clear()

    def resume_writing(self) -> None:
        """Also called when the connection is lost: a writer stuck in ``drain`` wakes up."""
        self.write_paused = False
        self._writable.set()

    async def drain(self) -> None:
        await self._writable.wait()
