"""The client's bytes, without I/O: requests rendered whole, responses parsed as they come.

``ResponseParser`` takes whatever the socket delivered -- half a response, or the answers to
several pipelined requests at once -- and reports each final response, in order, as it
completes. Informational (1xx) responses answer no request and are skipped. A response must
be delimited by ``content-length`` or chunked coding; one delimited only by the connection's
close never completes (the connection's loss then fails its request).
"""

from __future__ import annotations

from collections.abc import Callable

import httptools

from ticketsys.http.client.interface import Headers, RemoteProtocolError

OnResponse = Callable[[int, bytes, bool], None]  # status, body, the connection stays open


def render_headers(headers: Headers) -> bytes:
    for name, value in headers:
        if any(c in name + value for c in "\r\n\0"):
            raise ValueError(f"header {name!r} contains a line break")  # header injection
    return b"".join(b"%s: %s\r\n" % (n.encode("latin-1"), v.encode("latin-1")) for n, v in headers)


def render_request(
    method: str, path: str, fixed: bytes, body: bytes | None, headers: Headers, lines: bytes = b""
) -> bytes:
    """One request, whole. ``fixed``: rendered header lines sent with every request; ``lines``:
    this request's, rendered already."""
    head = b"%s %s HTTP/1.1\r\n%s%s" % (method.encode("ascii"), path.encode("ascii"), fixed, lines)
    if headers:
        head += render_headers(headers)
    if body is None:
        return head + b"\r\n"
    return head + b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


class ResponseParser:
    """Feeds httptools' response parser; calls ``on_response`` for each final response."""

    __slots__ = ("_body", "_on_response", "_parser")

    def __init__(self, on_response: OnResponse) -> None:
        self._on_response = on_response
        self._body = b""
        self._parser = httptools.HttpResponseParser(self)

    def feed(self, data: bytes) -> None:
        """Raises ``RemoteProtocolError`` on bytes that are not HTTP/1.1 responses; the
        responses completed before the bad bytes have been reported. What ``on_response``
        raises propagates as it is."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            raise exc.__context__ or exc from None
        except httptools.HttpParserError as exc:
            raise RemoteProtocolError(f"malformed response: {exc}") from None

    def close(self) -> None:
        """Unlink from httptools' parser, which holds this object for its callbacks: a
        connection that ends is then freed by its last reference going, not by a cyclic GC
        pass (the long sale's microservices ran one every ~15 s, 3-8 ms each, to free
        connections the pool closed). Nothing may be fed after it."""
        del self._parser, self._on_response

    # httptools callbacks

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        body, self._body = self._body, b""
        status = self._parser.get_status_code()
        if status >= 200:
            self._on_response(status, body, self._parser.should_keep_alive())
