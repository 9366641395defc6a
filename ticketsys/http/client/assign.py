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
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class Plan(Generic[C]):
    close: list[C] = field(default_factory=list)  # to close now (expired or closing)
    send: list[tuple[C, int]] = field(default_factory=list)  # the next n waiting requests go on it
    open: list[int] = field(default_factory=list)  # a new connection for each n requests


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
