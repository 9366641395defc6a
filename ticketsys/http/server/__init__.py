"""The embedded HTTP/1.1 server: an asyncio Protocol on uvloop, httptools for parsing.

Its parts, each its own module:

- ``protocol``: the asyncio Protocol of one connection: parsing, the queue of requests
  answered in order, writing.
- ``connection``: the connection's phases and the one keep-alive-or-close decision (sans-IO).
- ``incoming``: the request being assembled, and the checks on its head (sans-IO).
- ``cycle``: one request and its answer, direct (``Request`` in, ``Response`` out) or ASGI.
- ``flow``: pausing reading under a pipelining flood, waiting for a writable socket.
- ``timer``: the connection's one deadline (keep-alive, request, lingering).
- ``wire``: the bytes of a response head.
- ``state``: what the server and its connections share; ``limits``: every limit with its
  reason; ``eager``: starting a connection's worker.
- ``lifespan`` and ``runner``: the app's start-up and shutdown around listening, signals,
  graceful shutdown (``Server``).

It imports only ``http.models`` and ``http.errors`` of the toolkit: it runs any ASGI app, and
takes the direct path with any app that offers a handler (``models.DirectDispatch``).
"""

from ticketsys.http.server.lifespan import LifespanError
from ticketsys.http.server.limits import ServerLimits
from ticketsys.http.server.runner import Server

__all__ = ["LifespanError", "Server", "ServerLimits"]
