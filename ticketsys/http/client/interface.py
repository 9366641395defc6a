"""What a service needs of an HTTP client, and the only errors a client raises.

Every failure is a ``ClientError``, and its kind says what the caller may do next:

- ``ConnectError``: provably nothing was sent (no connection, or the request never left the
  pool). Safe to send anywhere else, idempotent or not.
- ``ClientTimeout``: no answer in time. The request may have been processed; never repeated
  (waiting twice would break the promise of a prompt answer).
- ``RemoteProtocolError``: the connection broke or the peer spoke nonsense after the request
  was written. It may have been processed; repeat it only if it is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ClientError(Exception):
    """Base of the client's failures."""


class ConnectError(ClientError):
    """Nothing was sent: no connection could be made, or the client is closed."""


class ClientTimeout(ClientError):
    """No answer in time. The request may have been processed."""


class RemoteProtocolError(ClientError):
    """The connection broke or the peer spoke nonsense. The request may have been processed."""


@dataclass(slots=True)  # not frozen: a frozen dataclass is made 3x slower, one per call
class ClientResponse:
    status: int
    body: bytes


Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    base_url: str
    # A request must be on the wire within this of its start (waiting for a connection and
    # connecting included), and answered within ``read_timeout`` of being written.
    connect_timeout: float = 0.25
    read_timeout: float = 0.5
    max_connections: int = 100
    # Requests written on one connection before the first is answered (HTTP/1.1 pipelining;
    # 1 turns it off). 8: a quarter less CPU per purchase than 1 under load, 16 little more
    # for twice the requests one broken connection takes with it (benchmarks/README.md, "The
    # pool"). Below the embedded server's max_pipelined (32), past which it stops reading.
    max_pipeline: int = 8
    # Idle connections older than this are not reused: keep it below the server's keep-alive
    # timeout, or the server may close one under a request (httpx #2487).
    keepalive_expiry: float = 2.0
    headers: Headers = ()  # sent with every request (e.g. authorization)


class HttpClient(Protocol):
    """What a service needs of an HTTP client: JSON bodies in, status and bytes out."""

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Headers = (),
        *,
        idempotent: bool = False,
        lines: bytes = b"",
        gathered: bool = False,
    ) -> ClientResponse:
        """Send one request and read its whole response. Raises ``ClientError`` only.
        ``idempotent``: the request may be repeated if its reply was lost. ``lines``: header
        lines rendered already, sent as they are (the caller vouches for them: a request id's
        line, validated when it arrived). ``gathered``: the caller has gathered the tick's
        work into it already (a batch): written now, not at the tick's end with the others."""
        ...

    async def aclose(self) -> None:
        """Close every connection, busy ones included (their requests fail); the client is
        unusable afterwards."""
        ...
