"""Building responses: JSON bodies, encoded with orjson."""

from __future__ import annotations

from typing import Any

import orjson

from ticketsys.http.models import JSON, Headers, Response


def json_response(payload: Any, status: int = 200, headers: Headers = ()) -> Response:
    return Response(status, orjson.dumps(payload), JSON, headers)
