"""HTTP/1.1 clients for service-to-service calls: one interface, two implementations.

``HttpPool`` (pool.py) is ours: pipelined keep-alive connections on httptools, with a queue
of waiting requests and a pure assignment (assign.py). ``HttpxClient`` (httpx_client.py)
wraps httpx's pool behind the same interface, for comparison. Both raise only the
``ClientError`` family (interface.py), so callers translate failures in one place and never
import an HTTP library. ``Replicas`` (replicas.py) spreads requests over several clients and
fails over.
"""

from __future__ import annotations

from ticketsys.http.client.httpx_client import HttpxClient
from ticketsys.http.client.interface import (
    ClientError,
    ClientOptions,
    ClientResponse,
    ClientTimeout,
    ConnectError,
    Headers,
    HttpClient,
    RemoteProtocolError,
)
from ticketsys.http.client.pool import HttpPool
from ticketsys.http.client.replicas import Replicas

CLIENTS: dict[str, type[HttpPool] | type[HttpxClient]] = {"pool": HttpPool, "httpx": HttpxClient}

__all__ = [
    "CLIENTS",
    "ClientError",
    "ClientOptions",
    "ClientResponse",
    "ClientTimeout",
    "ConnectError",
    "Headers",
    "HttpClient",
    "HttpPool",
    "HttpxClient",
    "RemoteProtocolError",
    "Replicas",
]
