"""A request as the parser assembles it, and the checks on its head. Sans-IO: plain data and
functions that raise ``HTTPError`` for what the server refuses before any app sees it."""

from __future__ import annotations

from urllib.parse import unquote

import httptools

from ticketsys.http import request_id
from ticketsys.http.errors import HTTPError, payload_too_large
from ticketsys.http.server.limits import ServerLimits


class Incoming:
    """A request being assembled by the parser callbacks."""

    __slots__ = (
        "body",
        "continue_pending",
        "head_bytes",
        "headers",
        "http_version",
        "id_header",
        "in_head",
        "keep_alive",
        "method",
        "raw_head_bytes",
        "url",
    )

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.head_bytes = 0  # request line and header fields, as the callbacks report them
        self.raw_head_bytes = 0  # bytes received while the head was still open: see data_received
        self.in_head = True
        self.method = ""
        self.http_version = "1.1"
        self.keep_alive = True
        self.continue_pending = False
        self.id_header = b""  # the client's X-Request-ID as the answer's header line, if valid


def check_head(incoming: Incoming, limits: ServerLimits) -> bool:
    """Refuse a head the server will not serve; return whether it expects ``100 Continue``."""
    if incoming.http_version != "1.1" and incoming.http_version != "1.0":
        raise version_not_supported(incoming.http_version)
    expects_continue = False
    hosts = 0
    for name, value in incoming.headers:
        if name == b"host":
            hosts += 1
        elif name == b"x-request-id":  # here, where every header is looked at already
            incoming.id_header = request_id.header_line(value)
        # llhttp has already refused invalid or duplicate Content-Length, and
        # Content-Length together with Transfer-Encoding, so int() cannot fail here.
        if name == b"content-length" and int(value) > limits.max_body_bytes:
            raise payload_too_large(limits.max_body_bytes)
        if name == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                # llhttp accepts "gzip, chunked"; we decode no codings: refuse (RFC 9112 §6.1).
                raise HTTPError(501, "unsupported_transfer_encoding", "only chunked is supported")
            if incoming.http_version == "1.0":
                # HTTP/1.0 has no chunked coding: the framing is suspect, so answer and
                # close (RFC 9112 §6.1). llhttp would keep the connection alive.
                incoming.keep_alive = False
        if name == b"expect" and value.lower() == b"100-continue":
            # An HTTP/1.0 client cannot understand 1xx (RFC 9110 §10.1.1: ignore it).
            expects_continue = incoming.http_version != "1.0"
    if hosts > 1 or (hosts == 0 and incoming.http_version != "1.0"):
        # RFC 9112 §3.2 requires 400 here, as h11 does: with two Hosts a proxy in front of
        # us and we could each route the request to a different place.
        raise HTTPError(400, "bad_request", "exactly one Host header is required")
    return expects_continue


def version_not_supported(version: str) -> HTTPError:
    """HTTP/2.0, 0.9, 3.0, 1.2...: answered 505 rather than served as if it were 1.1
    (RFC 9110 §15.6.6), so a client that meant another protocol learns it at once."""
    return HTTPError(505, "http_version_not_supported", f"HTTP/{version} is not supported; use HTTP/1.1")


def target(url: bytes) -> tuple[bytes, str, bytes]:
    """The raw path, the decoded path and the query of a request target (origin-form, or
    absolute-form from a proxy)."""
    raw_path, _, query = url.partition(b"?")
    if not raw_path.startswith(b"/"):
        try:
            parsed = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            # llhttp lets "http://" or "http://a:99999/" through; they name no resource.
            raise HTTPError(400, "bad_request", "malformed request target") from None
        raw_path, query = parsed.path or b"/", parsed.query or b""
    path = raw_path.decode("latin-1")
    return raw_path, unquote(path) if "%" in path else path, query
