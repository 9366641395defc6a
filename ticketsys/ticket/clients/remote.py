"""The VacancyClient over keep-alive HTTP.

One HTTP client (one pool of connections) opened at start-up and closed at shutdown. Its
failures are translated to ``VacancyUnavailable`` here and only here.

Retries: every reserve and release carries an idempotency key (the caller's, or a fresh one),
so it is idempotent: Vacancy answers a repeated key with its first result, and a reserve whose
reply was lost takes stock once when repeated. The HTTP client (``http.client.Replicas``)
decides what may be repeated and where; timeouts are never repeated: the buyer's own retry
(with its key) is safe, and waiting twice would break the promise of a prompt 503.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import orjson

from ticketsys.domain.errors import InvalidQuantity, VacancyUnavailable
from ticketsys.domain.models import CALL_KEY_PREFIX, Reservation
from ticketsys.http.client import ClientError, ClientTimeout, HttpClient


class RemoteVacancyClient:
    def __init__(self, connect: Callable[[], HttpClient], url: str) -> None:
        """``connect`` makes the HTTP client; it is called in ``open()``, inside the loop."""
        self._connect = connect
        self.url = url
        self._http: HttpClient | None = None

    async def open(self) -> None:
        self._http = self._connect()

    async def close(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def available(self) -> int:
        payload = await self._call("GET", "/api/v1/available")
        try:
            return int(payload["available"])
        except (KeyError, TypeError, ValueError):
            raise VacancyUnavailable(f"vacancy answered an unexpected body: {payload!r}") from None

    async def reserve(self, qty: int, key: str | None = None) -> Reservation:
        return _reservation(await self._call("POST", "/api/v1/reserve", {"qty": qty}, key or _fresh_key()))

    async def release(self, qty: int, key: str | None = None) -> Reservation:
        return _reservation(await self._call("POST", "/api/v1/release", {"qty": qty}, key or _fresh_key()))

    async def cancel(self, qty: int, key: str) -> Reservation:
        return _reservation(await self._call("POST", "/api/v1/cancel", {"qty": qty}, key))

    async def ready(self) -> bool:
        try:
            await self._call("GET", "/healthz")
        except VacancyUnavailable:
            return False
        return True

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = None
    ) -> dict[str, Any]:
        if self._http is None:
            raise VacancyUnavailable("vacancy client is not open")
        content = None if body is None else orjson.dumps(body)
        headers = (("idempotency-key", key),) if key is not None else ()
        idempotent = method == "GET" or key is not None
        try:
            response = await self._http.request(method, path, content, headers, idempotent=idempotent)
        except ClientTimeout as exc:
            raise VacancyUnavailable(f"vacancy did not answer in time: {exc}") from exc
        except ClientError as exc:
            raise VacancyUnavailable(f"vacancy unreachable: {exc}") from exc
        try:
            payload = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise VacancyUnavailable(f"vacancy answered {response.status} with a non-JSON body") from None
        if response.status == 200 and isinstance(payload, dict):
            return payload
        message = payload.get("message", "") if isinstance(payload, dict) else ""
        if response.status == 422 and isinstance(payload, dict) and payload.get("error") == "invalid_field":
            raise InvalidQuantity(message or "vacancy refused the quantity")
        raise VacancyUnavailable(f"vacancy answered {response.status}: {message}")

    def __repr__(self) -> str:
        state = "open" if self._http is not None else "closed"
        return f"<RemoteVacancyClient {self.url} {state}>"


def _fresh_key() -> str:
    return CALL_KEY_PREFIX + os.urandom(12).hex()


def _reservation(payload: dict[str, Any]) -> Reservation:
    try:
        return Reservation(bool(payload["success"]), int(payload["remaining"]))
    except (KeyError, TypeError, ValueError):
        raise VacancyUnavailable(f"vacancy answered an unexpected body: {payload!r}") from None
