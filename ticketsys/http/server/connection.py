"""The life of one connection, and the one place that decides whether it stays open.

Sans-IO, as h11's ``_state.py``: the protocol reports what happened and asks what to do; it
never decides "close or keep alive" itself. The phases (httpcore's ``HTTPConnectionState``):

    IDLE ── a request begins ──▶ ACTIVE ── answered, nothing arriving ──▶ IDLE
     │                             │
     └──────────────┬──────────────┘
                    │ no more requests: the client asked to close, half-closed or sent
                    ▼ garbage; a request timed out; an answer said close; server shutdown
                 CLOSING ── the last answer written ──┬──▶ CLOSED
                    │                                 │
                    │ that answer refused a request   │
                    ▼ not yet read whole (413, 431)   │
                LINGERING ── client's EOF, or the lingering deadline ──┘

In CLOSING nothing new is accepted, what was received (even partly: its deadline bounds it)
is answered in order, and the last answer says ``connection: close``. An answer that says
close ends the conversation: whatever is behind it is dropped. LINGERING is RFC 9112 §9.6's
staged close (nginx's ``lingering_close``): after the answer, shut our sending side and read
and discard what the client is still sending, so that closing does not reset the connection
under an answer the client has not read yet.
"""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    IDLE = "idle"
    ACTIVE = "active"
    CLOSING = "closing"
    LINGERING = "lingering"
    CLOSED = "closed"


class Next(enum.Enum):
    """What the connection does once it has answered everything it has."""

    KEEP_ALIVE = "keep-alive"  # idle: arm the keep-alive deadline
    WAIT = "wait"  # a request is still arriving: its deadline runs
    CLOSE = "close"
    LINGER = "linger"


# The members again, as module globals: on Python 3.11 looking an Enum member up on its class
# goes through EnumType and costs several times a global's lookup, a dozen times a request.
IDLE, ACTIVE, CLOSING, LINGERING, CLOSED = (
    Phase.IDLE,
    Phase.ACTIVE,
    Phase.CLOSING,
    Phase.LINGERING,
    Phase.CLOSED,
)
KEEP_ALIVE, WAIT, CLOSE, LINGER = Next.KEEP_ALIVE, Next.WAIT, Next.CLOSE, Next.LINGER


class ConnectionState:
    __slots__ = ("_linger", "_said_close", "phase")

    def __init__(self) -> None:
        self.phase = IDLE
        self._said_close = False  # an answer said "connection: close": nothing more may follow
        self._linger = False  # the close must be staged (see the module's docstring)

    def __repr__(self) -> str:
        return f"<ConnectionState {self.phase.value}>"

    def begin_request(self) -> bool:
        """A request's first byte arrived: whether it may be answered."""
        if self.phase is IDLE:
            self.phase = ACTIVE
            return True
        return self.phase is ACTIVE

    def no_more_requests(self, *, linger: bool = False) -> None:
        """Accept nothing new; ``linger``: an error is being answered while the client may
        still be sending the request it refuses."""
        if self.phase is IDLE or self.phase is ACTIVE:
            self.phase = CLOSING
        self._linger = self._linger or linger

    def keeps_alive(self, requested: bool, last: bool) -> bool:
        """Whether the answer being written leaves the connection open. ``requested``: the
        request (and the app) allow it; ``last``: nothing else is queued or arriving, so if
        the connection is closing, this answer must say so."""
        if requested and not (last and self.phase is CLOSING):
            return True
        self.must_close()
        return False

    def must_close(self) -> None:
        """Nothing more may be said here: an answer said close, or half an answer is out."""
        self._said_close = True
        self.no_more_requests()

    def next(self, arriving: bool) -> Next:
        """Everything received in full has been answered; ``arriving``: a request has begun
        to arrive and may still be answered."""
        if self.phase is CLOSED or self.phase is LINGERING:
            return CLOSE  # asked again while lingering: the server is going away
        if self._said_close or (self.phase is CLOSING and not arriving):
            if self._linger and self._said_close:
                self.phase = LINGERING
                return LINGER
            return CLOSE
        if arriving:
            return WAIT
        self.phase = IDLE
        return KEEP_ALIVE

    def lost(self) -> None:
        self.phase = CLOSED
