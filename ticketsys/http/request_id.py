"""Request ids: accepted from ``X-Request-ID`` when well-formed, made up otherwise, and held in
a context variable for the length of the request, so that a log line written anywhere during
it (and a call to another service) can carry it.

An id from outside is hostile input: it goes into our logs and into headers we send on, so it
must be 1-128 visible ASCII characters (no spaces, no control characters: nothing that can
split a header or a log line). Anything else is replaced, not repaired.

A made-up id is this process's random prefix and a counter (``3f9a1c2e-1b``): unique across
processes with overwhelming probability, and a hundred nanoseconds to make where a uuid4 costs
a microsecond and a half.
"""

from __future__ import annotations

import itertools
import os
import re
from contextvars import ContextVar

HEADER = b"x-request-id"
MAX_LENGTH = 128

_VALID = re.compile(rb"[\x21-\x7e]{1,128}")

# The id of the request being answered; "" outside any request.
current: ContextVar[str] = ContextVar("ticketsys_request_id", default="")


def accept(raw: bytes | None) -> str | None:
    """``raw`` as a request id, or None if it is missing or not 1-128 visible ASCII chars."""
    if raw is None or _VALID.fullmatch(raw) is None:
        return None
    return raw.decode("ascii")


class IdMaker:
    """Fresh ids for requests that came without one."""

    __slots__ = ("_counter", "prefix")

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix if prefix is not None else os.urandom(4).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}-{next(self._counter):x}"

    def __repr__(self) -> str:
        return f"<IdMaker prefix={self.prefix}>"
