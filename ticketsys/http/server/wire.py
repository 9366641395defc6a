"""The bytes of a response head: status lines rendered once, the ``Date`` header once a second."""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

from ticketsys.http.models import Response

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


# Status lines are rendered once: the hot path only looks them up.
STATUS_LINES: dict[int, bytes] = {
    int(status): b"HTTP/1.1 %d %s\r\n" % (int(status), _reason(int(status))) for status in HTTPStatus
}


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


class _DateHeader:
    """``Date`` is required of origin servers (RFC 9110 §6.6.1); format it once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self._line


DATE = _DateHeader()


def render(
    response: Response,
    keep_alive: bool,
    head: bool = False,
    length: int | None = None,
    http10: bool = False,
    extra: bytes = b"",
) -> bytes:
    """A whole response. ``head`` omits the body but keeps its declared ``length``.
    ``http10``: an HTTP/1.0 client assumes close unless told ``keep-alive``. ``extra``: the
    header lines rendered already (the request id's), after the response's own."""
    if keep_alive:
        ending = b"connection: keep-alive\r\n\r\n" if http10 else b"\r\n"
    else:
        ending = b"connection: close\r\n\r\n"
    head_block = (
        (STATUS_LINES.get(response.status) or status_line(response.status))
        + b"content-type: "
        + response.content_type
        + b"\r\ncontent-length: %d\r\n" % (len(response.body) if length is None else length)
    )
    if response.headers:
        head_block += b"".join(name + b": " + value + b"\r\n" for name, value in response.headers)
    head_block += extra + DATE.line() + ending
    return head_block if head else head_block + response.body
