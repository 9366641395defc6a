"""Limits of the embedded server. Each carries the reason for its value."""

from __future__ import annotations

from dataclasses import dataclass

from ticketsys.http.models import MAX_BODY_BYTES


@dataclass(frozen=True, slots=True)
class ServerLimits:
    # Request line plus all header lines, an unfinished line included (protocol.data_received).
    # nginx answers 400/414 past 8 KiB a line and 32 KiB in all (large_client_header_buffers
    # 4 8k); h11 stops at 16 KiB. Our clients send ~200 bytes.
    max_header_bytes: int = 16 * 1024
    # Apache's LimitRequestFields default. A flood of tiny headers costs CPU per header.
    max_headers: int = 100
    # See models.MAX_BODY_BYTES.
    max_body_bytes: int = MAX_BODY_BYTES
    # From the first byte of a request until its last must take less than this, or 408 and
    # close: a client that trickles a byte a second (slowloris) cannot hold a slot forever.
    # Apache's RequestReadTimeout gives headers 20 s; we are an API behind fast clients.
    request_timeout: float = 10.0
    # An idle keep-alive connection is closed after this. uvicorn's default is 5 s; the
    # remote client's idle expiry (apps/ticket.py) is kept below it so the client never
    # reuses a connection the server is about to close.
    keepalive_timeout: float = 5.0
    # Requests already parsed but waiting behind the one in flight; past this we stop reading
    # the socket until the queue drains (flow control against pipelining floods).
    max_pipelined: int = 32
    # After an error answered before the request was read whole (413, 431, ...), how long the
    # half-closed connection reads and discards what the client is still sending, so that
    # closing does not reset the connection under the answer (RFC 9112 §9.6). nginx lingers
    # up to 30 s (lingering_time); our clients are near and fast, and each lingering
    # connection holds a descriptor: a 2 MiB body over loopback takes milliseconds.
    lingering_time: float = 2.0
    # Time to finish in-flight requests at shutdown before connections are cut.
    shutdown_grace: float = 10.0
