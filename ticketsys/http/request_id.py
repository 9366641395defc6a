"""Request ids: accepted from ``X-Request-ID`` when well-formed, made up otherwise, written on
every answer, and held in a context variable while the request is answered, so that a log
line written anywhere during it (and a call to another service) can carry it.

An id from outside is hostile input: it goes into our logs and into headers we send on, so it
must be 1-128 visible ASCII characters (no spaces, no control characters: nothing that can
split a header or a log line). Anything else is replaced, not repaired.

A made-up id is 16 random hex digits (64 bits: unique across processes and restarts with
overwhelming probability, and not guessable). Every request needs one, so they are made 1,024
at a time from one ``os.urandom`` call, and each is kept as the header line the answer carries
(``x-request-id: 3f9a1c2e0b7d4a51\\r\\n``): taking one is a ``next()`` on a list iterator, and
writing it is one concatenation, where formatting an id per request cost a tenth of a
purchase's budget for all of observability. The context variable holds that line too; the bare
id is cut from it only for a log line or a call to another service.

A request gets its line where it is built (the server's parser, or the ASGI adapter). The
context variable holds a ``Slot`` with the line in it. Our server gives each connection a
context of its own, with a slot that it refills for each request (an attribute store: setting
the context variable per request cost a purchase ten times as much); a connection answers one
request at a time, so its slot holds the one being answered. Under another ASGI server each
request runs in a task of its own, and the adapter puts a new slot in that task's context
(``enter``).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

HEADER = b"x-request-id"
MAX_LENGTH = 128

_PREFIX = HEADER + b": "
_BATCH = 1024

VALID = re.compile(rb"[\x21-\x7e]{1,128}")  # fullmatch: visible ASCII, 1 to MAX_LENGTH


class Slot:
    """The header line of the request being answered in a context (b"": none)."""

    __slots__ = ("line",)

    def __init__(self, line: bytes = b"") -> None:
        self.line = line

    def __repr__(self) -> str:
        return f"<Slot {self.line!r}>"


# The slot of the context's request; None outside any.
current: ContextVar[Slot | None] = ContextVar("ticketsys_request_id", default=None)


def line() -> bytes:
    """The header line of the request being answered (b"" outside any)."""
    slot = current.get()
    return b"" if slot is None else slot.line


def enter(line: bytes) -> None:
    """Make ``line`` the current request's, in a task that answers only that request."""
    current.set(Slot(line))


def accept(raw: bytes | None) -> bytes | None:
    """``raw`` if it is a request id (1-128 visible ASCII chars), else None."""
    if raw is None or VALID.fullmatch(raw) is None:
        return None
    return raw


def header_line(raw: bytes | None) -> bytes:
    """The answer's header line for a client's id; b"" if it is no valid id (make one up)."""
    taken = accept(raw)
    return b"" if taken is None else _PREFIX + taken + b"\r\n"


def id_of(line: bytes) -> bytes:
    """The id in a header line (b"" for b"")."""
    return line[len(_PREFIX) : -2]


def from_headers(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The header line for the id among ``headers`` (lower-case names), or a fresh one."""
    for name, value in headers:
        if name == HEADER:
            return header_line(value) or next(fresh)
    return next(fresh)


_batch: list[bytes] = []  # the lines being handed out


def _batches() -> Iterator[list[bytes]]:
    global _batch
    while True:
        digits = os.urandom(8 * _BATCH).hex(" ", 8)  # 16 hex digits, a space, 16 more...
        text = "x-request-id: " + digits.replace(" ", "\r\n|x-request-id: ") + "\r\n"
        _batch = text.encode("ascii").split(b"|")
        yield _batch


def _forked() -> None:
    # A forked process would go on handing out its parent's batch, and two workers the same
    # ids: emptied, the batch ends, and the child's next id starts a batch of its own.
    _batch.clear()


os.register_at_fork(after_in_child=_forked)

# ``next(fresh)``: a made-up id's header line (a C-level call: no Python frame per request).
fresh: Iterator[bytes] = itertools.chain.from_iterable(_batches())
