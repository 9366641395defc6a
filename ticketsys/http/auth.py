"""Bearer-token checks for internal endpoints."""

from __future__ import annotations

import hmac

from ticketsys.http.errors import HTTPError
from ticketsys.http.models import Request

_CHALLENGE = ((b"www-authenticate", b'Bearer realm="ticketsys"'),)


def require_bearer(request: Request, token: bytes) -> None:
    """Raise 401 unless the request carries ``Authorization: Bearer <token>``.

    The comparison takes the same time whatever the offered token (``hmac.compare_digest``),
    so response timing does not reveal how much of a guess was right.
    """
    offered = request.header(b"authorization") or b""
    scheme, _, credentials = offered.partition(b" ")
    if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(), token):
        raise HTTPError(401, "unauthorized", "a valid bearer token is required", headers=_CHALLENGE)
