"""One deadline per connection, on at most one loop timer.

A connection has one deadline at a time: the keep-alive deadline while idle, the request
deadline from the first byte of a request until its last, the lingering deadline while it
discards what a refused client still sends. ``set`` replaces the previous deadline; it is a
plain attribute, and the one armed loop timer, when it fires before the current deadline,
re-arms for the rest. A busy keep-alive connection thus re-arms about once per keep-alive
period instead of creating and cancelling two libuv timers per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Deadline:
    __slots__ = ("_action", "_at", "_handle", "_handle_at", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None  # the armed loop timer, if any
        self._handle_at = 0.0  # when it fires
        self._at = 0.0
        self._action: Callable[[], None] | None = None  # None: no deadline pending

    @property
    def pending(self) -> bool:
        return self._action is not None

    @property
    def armed(self) -> bool:
        """Whether a loop timer is armed (it may find nothing to do when it fires)."""
        return self._handle is not None

    def set(self, delay: float, action: Callable[[], None]) -> None:
        """Call ``action`` in ``delay`` seconds, unless replaced or cleared before."""
        when = self._loop.time() + delay
        self._at, self._action = when, action
        if self._handle is None or when < self._handle_at:
            if self._handle is not None:
                self._handle.cancel()
            self._handle, self._handle_at = self._loop.call_at(when, self._fired), when

    def clear(self) -> None:
        self._action = None  # the armed timer, if any, will find nothing to do

    def stop(self) -> None:
        """Clear, and cancel the loop timer too (the connection is gone)."""
        self._action = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fired(self) -> None:
        self._handle = None
        action = self._action
        if action is None:
            return
        if self._loop.time() < self._at:  # moved later since this timer was armed
            self._handle, self._handle_at = self._loop.call_at(self._at, self._fired), self._at
            return
        self._action = None
        action()
