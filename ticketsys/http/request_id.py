"""Request ids: accepted from ``X-Request-ID`` when well-formed, made up otherwise, and held in
a context variable for the length of the request, so that a log line written anywhere during
it (and a call to another service) can carry it.

An id from outside is hostile input: it goes into our logs and into headers we send on, so it
must be 1-128 visible ASCII characters (no spaces, no control characters: nothing that can
split a header or a log line). Anything else is replaced, not repaired.

A made-up id is this process's random prefix and a counter (``3f9a1c2e-1b``): unique across
processes with overwhelming probability, and a hundred nanoseconds to make where a uuid4 costs
two microseconds. Ids are bytes, as they arrive and as they are written in the answer's header:
they are decoded only for a log line or a call to another service.
"""

from __future__ import annotations

import itertools
import os
import re
from contextvars import ContextVar

HEADER = b"x-request-id"
MAX_LENGTH = 128

VALID = re.compile(rb"[\x21-\x7e]{1,128}")  # fullmatch: visible ASCII, 1 to MAX_LENGTH

# The id of the request being answered; b"" outside any request.
current: ContextVar[bytes] = ContextVar("ticketsys_request_id", default=b"")


def accept(raw: bytes | None) -> bytes | None:
    """``raw`` if it is a request id (1-128 visible ASCII chars), else None."""
    if raw is None or VALID.fullmatch(raw) is None:
        return None
    return raw


class IdMaker:
    """Fresh ids for requests that came without one."""

    __slots__ = ("counter", "prefix")

    def __init__(self, prefix: bytes | None = None) -> None:
        self.prefix = prefix if prefix is not None else os.urandom(4).hex().encode("ascii")
        self.counter = itertools.count(1)

    def __call__(self) -> bytes:
        return b"%s-%x" % (self.prefix, next(self.counter))

    def __repr__(self) -> str:
        return f"<IdMaker prefix={self.prefix.decode()}>"
