"""Which waiting request goes on which connection: a pure decision, as httpcore's pool makes it.

``assign`` looks at the connections' states and the number of requests waiting (oldest
first) and returns a ``Plan``; it touches no socket and changes nothing. The pool carries the
plan out: closes what expired, writes the requests, opens the new connections.

Preference, for the requests at the head of the queue, in order:

1. idle connections, most recently used first (the warmest, the least likely to have been
   closed by the server), up to ``max_pipeline`` requests each: the requests of one event-loop
   tick share one write;
2. new connections, while fewer than ``max_connections`` are open or opening;
3. behind the requests in flight on busy connections (the least deep first), up to
   ``max_pipeline`` in flight on each: only once no connection can be opened;
4. otherwise they keep waiting, in order.

Idle connections past ``keepalive_expiry`` are closed (their slot counts as free at once);
closed ones are never used. A connection being opened is ``ACTIVE``: requests given to it go
out together when it connects.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from typing import Generic, Protocol, TypeVar


class ConnState(enum.Enum):
    IDLE = "idle"  # open, nothing in flight
    ACTIVE = "active"  # opening, or requests in flight
    CLOSED = "closed"  # closed by either side, or about to be: never used again
    EXPIRED = "expired"  # idle for longer than the keep-alive expiry


class Assignable(Protocol):
    """What the decision reads of a connection."""

    @property
    def depth(self) -> int:
        """Requests given to it and not yet answered."""
        ...

    def state(self, now: float) -> ConnState: ...


C = TypeVar("C", bound=Assignable)


class Plan(Generic[C]):
    """What to do, in this order: close ``close``; for each ``(conn, n)`` of ``send``, write
    the next n waiting requests on conn; for each n of ``open``, open a connection for the
    next n."""

    __slots__ = ("close", "open", "send")

    def __init__(self) -> None:
        self.close: list[C] = []
        self.send: list[tuple[C, int]] = []
        self.open: list[int] = []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Plan) and (self.close, self.send, self.open) == (
            other.close,
            other.send,
            other.open,
        )

    def __repr__(self) -> str:
        return f"Plan(close={self.close!r}, send={self.send!r}, open={self.open!r})"


def assign(
    waiting: int,
    idle: Sequence[C],
    active: Collection[C],
    now: float,
    *,
    max_connections: int,
    max_pipeline: int,
) -> Plan[C]:
    """``idle``: the idle connections, least recently used first. ``active``: the others
    still open or opening. Reads only the connections it needs: the expired ones, found
    from the front, and those it gives requests to, from the back."""
    plan: Plan[C] = Plan()
    if idle and 0 < waiting <= max_pipeline:
        # The common case, decided as below but in fewer steps: nothing expired (the oldest
        # idle one is fresh), and the newest idle one takes the whole tick.
        newest = idle[-1]
        if newest.state(now) is ConnState.IDLE and (len(idle) == 1 or idle[0].state(now) is ConnState.IDLE):
            plan.send.append((newest, waiting))
            return plan
    fresh = 0  # idle[fresh:] are newer than the newest expired one: not expired
    for conn in idle:
        if conn.state(now) is ConnState.IDLE:
            break
        plan.close.append(conn)
        fresh += 1
    open_count = len(idle) - fresh + len(active)
    index = len(idle) - 1
    while waiting > 0 and index >= fresh:
        conn = idle[index]
        index -= 1
        if conn.state(now) is not ConnState.IDLE:  # closing, not yet reported closed
            plan.close.append(conn)
            open_count -= 1
            continue
        n = min(waiting, max_pipeline)
        plan.send.append((conn, n))
        waiting -= n
    while waiting > 0 and open_count < max_connections:
        n = min(waiting, max_pipeline)
        plan.open.append(n)
        waiting -= n
        open_count += 1
    if waiting > 0 and max_pipeline > 1:
        busy = sorted((c for c in active if c.state(now) is ConnState.ACTIVE), key=lambda c: c.depth)
        for conn in busy:
            room = max_pipeline - conn.depth
            if room > 0:
                n = min(waiting, room)
                plan.send.append((conn, n))
                waiting -= n
                if waiting <= 0:
                    break
    return plan
