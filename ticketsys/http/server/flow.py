"""Flow control of one connection, both ways (uvicorn's ``FlowControl``).

Reading: past ``high_water`` requests parsed and waiting, stop reading the socket (the kernel
then pushes back on the client); resume once the queue is down to half. Writing: the
transport says when its buffer is over its own high-water mark (``pause_writing``); a
response waits in ``drain()`` until it is writable again, so a client that does not read
cannot make us buffer without bound.
"""

from __future__ import annotations

import asyncio


class FlowControl:
    __slots__ = ("_high_water", "_transport", "_writable", "read_paused")

    def __init__(self, transport: asyncio.Transport, high_water: int) -> None:
        self._transport = transport
        self._high_water = high_water
        self._writable = asyncio.Event()
        self._writable.set()
        self.read_paused = False

    def queued(self, waiting: int) -> None:
        """``waiting`` requests are now parsed and not yet answered: pause or resume reading."""
        if waiting > self._high_water:
            if not self.read_paused:
                self.read_paused = True
                self._transport.pause_reading()
        elif self.read_paused and waiting <= self._high_water // 2:
            self.resume_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        """Also called when the connection is lost: a writer stuck in ``drain`` wakes up."""
        self._writable.set()

    async def drain(self) -> None:
        if not self._writable.is_set():
            await self._writable.wait()
