"""Cross-origin resource sharing: which pages on other origins a browser lets read our answers.

How the flow works. Before a cross-origin request that is not "simple" (a JSON body, an
``Idempotency-Key`` or ``Authorization`` header: every purchase), the browser sends a
preflight, ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``. For a listed
origin and a path we serve, it is answered here, 204, before routing (the routes know nothing
of OPTIONS): the path's methods, the headers a page may send, how long to cache that. The
actual request then goes through the app as usual, and its answer gets
``Access-Control-Allow-Origin`` so the page may read it. An origin not listed gets no CORS
headers at all: the server still answers (CORS protects the reader, not the server), and the
browser withholds that answer from the page.

``Vary: Origin`` goes on every answer of an app with CORS on, not only on listed origins':
the answer depends on the ``Origin``, so a shared cache must not hand one origin's answer to
another. ``with_cors`` wraps ``App.handle`` once, at construction, and only when there are
origins: an app without CORS runs exactly the code it ran before.
"""

from __future__ import annotations

from collections.abc import Iterable

from ticketsys.http.models import Handler, Headers, Request, Response
from ticketsys.http.routing import Router

ANY_ORIGIN = "*"

# What a page may send besides the CORS-safelisted headers; what it may read besides the
# safelisted ones (Retry-After on a 503, the 401's challenge, a 405's Allow).
ALLOW_HEADERS = ("Content-Type", "Idempotency-Key", "Authorization", "X-Request-ID")
EXPOSE_HEADERS = ("Retry-After", "WWW-Authenticate", "Allow", "X-Request-ID")
# Ten minutes: browsers cap it anyway (Chromium at two hours); short enough that a changed
# CORS_ORIGINS reaches pages soon.
MAX_AGE = 600

_VARY = (b"vary", b"Origin")
_EXPOSE = (b"access-control-expose-headers", ", ".join(EXPOSE_HEADERS).encode("ascii"))
_ALLOW_HEADERS = (b"access-control-allow-headers", ", ".join(ALLOW_HEADERS).encode("ascii"))
_MAX_AGE = (b"access-control-max-age", b"%d" % MAX_AGE)


class CorsPolicy:
    """The origins allowed (``scheme://host[:port]`` as browsers send them, or ``*``). The
    headers an answer gets are rendered once per origin, at construction."""

    __slots__ = ("_answer", "any", "origins")

    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origin.lower().encode("ascii") for origin in origins)
        self.any = ANY_ORIGIN.encode() in self.origins
        values = {b"*"} if self.any else self.origins
        self._answer: dict[bytes | None, Headers] = {
            value: ((b"access-control-allow-origin", value), _EXPOSE, _VARY) for value in values
        }
        self._answer[None] = (_VARY,)

    def allow_origin(self, origin: bytes | None) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for a request from ``origin``, or None."""
        if origin is None:
            return None
        if self.any:
            return b"*"
        origin = origin.lower()  # browsers send it lower-cased; the comparison need not care
        return origin if origin in self.origins else None

    def preflight(self, allowed: bytes, methods: Iterable[str]) -> Response:
        allow_methods = (b"access-control-allow-methods", ", ".join(methods).encode("ascii"))
        headers = ((b"access-control-allow-origin", allowed), allow_methods, _ALLOW_HEADERS, _MAX_AGE, _VARY)
        return Response(204, b"", headers=headers)

    def decorate(self, response: Response, allowed: bytes | None) -> Response:
        """``response`` with the headers of an actual answer (``allowed``: as from
        ``allow_origin``; None: only ``Vary``)."""
        extra = self._answer[allowed]
        return Response(response.status, response.body, response.content_type, response.headers + extra)

    def __repr__(self) -> str:
        return f"<CorsPolicy origins={sorted(o.decode() for o in self.origins)}>"


def is_preflight(request: Request) -> bool:
    return request.method == "OPTIONS" and request.header(b"access-control-request-method") is not None


def with_cors(handle: Handler, router: Router, policy: CorsPolicy) -> Handler:
    """``handle`` answering preflights and adding CORS headers to its answers."""

    async def handle_cors(request: Request) -> Response:
        allowed = policy.allow_origin(request.header(b"origin"))
        if allowed is not None and is_preflight(request):
            methods = router.allowed(request.path)
            if methods:
                return policy.preflight(allowed, methods)
        return policy.decorate(await handle(request), allowed)

    return handle_cors
